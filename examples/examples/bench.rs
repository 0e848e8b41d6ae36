//! Overhead of auditing against plain SeaORM, measured in one run on SQLite (a WAL file),
//! PostgreSQL and MariaDB, side by side (issue 7).
//!
//! ```text
//! cargo run --release -p sea-orm-audit-examples --example bench -- \
//!     [--backends sqlite,postgres,mysql] [--rows 2000] [--repeats 5] \
//!     [--modes per-row,per-phase,atomic] [--warmup 100] [--pool 1] [--sqlite-dir DIR] \
//!     [--no-memory] [--without-search-indexes]
//! ```
//!
//! Five variants of the same `article` table run against each other:
//!
//! - `plain`: SeaORM with an empty `ActiveModelBehavior`, the baseline of every ratio;
//! - `audited`: `#[derive(Audited)]`, the library as shipped;
//! - `floor`: plain SeaORM plus, in the same transaction, a hand-written `SELECT ... FOR
//!   UPDATE` of the row (update, delete) and one hand-made `audit_log` INSERT: the cheapest
//!   honest ORM-level audit, the issue's "must reach" line;
//! - `trigger`: plain SeaORM on a table whose database row trigger writes the `audit_log`
//!   row, the issue's goal line;
//! - `connection`: the audited entity written through `AuditedTransaction` (or, in atomic
//!   mode, a plain `AuditedConnection`), the library's auditing connection.
//!
//! All audit rows go to the same `audit_log` table (same columns, same indexes), so the
//! variants pay the same index maintenance. The variants run interleaved on the same
//! connection (`--pool 1`). In the per-row and atomic modes they alternate row by row, in
//! an order that rotates with the row. In the per-phase mode each variant's phase is five
//! transactions over fifths of its rows, and the variants take turns transaction by
//! transaction in a rotating order (a connection per variant, to alternate row by row,
//! proved unfair on a 2-core machine; see `run_phase`). Every cell is a median
//! over the repeats; the headline is the ratio audited/plain. Statements are counted per
//! variant with SeaORM's metric callback, heap use with a counting global allocator.
//!
//! `--without-search-indexes` leaves out the migration that adds the admin search's three
//! `audit_log` indexes (object key, repr and actor name), so a run measures what those
//! indexes cost every audited write; the other five read indexes stay.
//!
//! Each repeat verifies the trail it produced (one CREATE, UPDATE and DELETE row per
//! article and variant, and the exact diff of one update), so a fast but wrong run exits
//! non-zero. Server URLs come from `AUDIT_TEST_POSTGRES_URL` and `AUDIT_TEST_MYSQL_URL`,
//! as in the test suite; each run creates a fresh schema/database/file and drops it.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Schema, Statement, TransactionTrait,
};
use sea_orm_audit::entity::audit_log;
use sea_orm_audit::{AuditedConnection, RequestContext};
use serde_json::{Value as Json, json};
use support::with_database;

type BoxError = Box<dyn Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

// === the workload ===

/// One article, independent of the entity it was read from.
#[derive(Clone, Debug)]
struct Row {
    id: i64,
    title: String,
    body: String,
    views: i32,
    published: bool,
    updated_at: DateTime<Utc>,
}

const LOREM: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor \
incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation \
ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis";

impl Row {
    fn new(i: usize) -> Self {
        let base = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        Row {
            id: 0,
            title: format!("Article {i}"),
            body: format!("{LOREM} {i:06}"),
            views: 0,
            published: i.is_multiple_of(2),
            updated_at: base + chrono::Duration::seconds(i as i64),
        }
    }

    /// The update of the issue: two fields changed.
    fn edited_title(&self) -> String {
        format!("{} (edited)", self.title)
    }

    /// The exact `changes` every variant must record for this row's update.
    fn expected_update_diff(&self) -> Json {
        json!({
            "title": {"old": self.title, "new": self.edited_title()},
            "views": {"old": self.views, "new": self.views + 1},
        })
    }
}

/// Defines an article entity on `$table` and the plain SeaORM operations on it.
macro_rules! article_entity {
    ($table:literal $(, derive($derive:path))? $(, #[$attr:meta])*) => {
        use sea_orm::ActiveValue::{NotSet, Set};
        use sea_orm::entity::prelude::*;
        use sea_orm::IntoActiveModel;

        use crate::Row;

        #[derive(Clone, Debug, PartialEq, DeriveEntityModel $(, $derive)?)]
        #[sea_orm(table_name = $table)]
        $(#[$attr])*
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i64,
            pub title: String,
            #[sea_orm(column_type = "Text")]
            pub body: String,
            pub views: i32,
            pub published: bool,
            pub updated_at: DateTimeUtc,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        pub const TABLE: &str = $table;

        pub fn row(m: Model) -> Row {
            Row {
                id: m.id,
                title: m.title,
                body: m.body,
                views: m.views,
                published: m.published,
                updated_at: m.updated_at,
            }
        }

        pub fn model(r: &Row) -> Model {
            Model {
                id: r.id,
                title: r.title.clone(),
                body: r.body.clone(),
                views: r.views,
                published: r.published,
                updated_at: r.updated_at,
            }
        }

        pub fn new_active(r: &Row) -> ActiveModel {
            ActiveModel {
                id: NotSet,
                title: Set(r.title.clone()),
                body: Set(r.body.clone()),
                views: Set(r.views),
                published: Set(r.published),
                updated_at: Set(r.updated_at),
            }
        }

        /// What an application does: take the row it loaded, change two fields.
        pub fn edited_active(r: &Row) -> ActiveModel {
            let mut am = model(r).into_active_model();
            am.title = Set(r.edited_title());
            am.views = Set(r.views + 1);
            am
        }

        pub async fn insert<C: ConnectionTrait>(db: &C, r: &Row) -> Result<Row, DbErr> {
            new_active(r).insert(db).await.map(row)
        }

        pub async fn update<C: ConnectionTrait>(db: &C, r: &Row) -> Result<Row, DbErr> {
            edited_active(r).update(db).await.map(row)
        }

        pub async fn delete<C: ConnectionTrait>(db: &C, r: &Row) -> Result<Row, DbErr> {
            let res = model(r).into_active_model().delete(db).await?;
            crate::deleted_one(res.rows_affected, TABLE)?;
            Ok(r.clone())
        }
    };
}

mod plain_article {
    article_entity!("plain_article");
    impl ActiveModelBehavior for ActiveModel {}
}

mod audited_article {
    use sea_orm::TransactionTrait;
    use sea_orm_audit::{AtomicWrite, Audited};

    article_entity!("audited_article", derive(Audited), #[audited(repr = "title")]);

    pub async fn insert_atomic<C: TransactionTrait + Sync>(db: &C, r: &Row) -> Result<Row, DbErr> {
        new_active(r).insert_atomic(db).await.map(row)
    }

    pub async fn update_atomic<C: TransactionTrait + Sync>(db: &C, r: &Row) -> Result<Row, DbErr> {
        edited_active(r).update_atomic(db).await.map(row)
    }

    pub async fn delete_atomic<C: TransactionTrait + Sync>(db: &C, r: &Row) -> Result<Row, DbErr> {
        let res = model(r).into_active_model().delete_atomic(db).await?;
        crate::deleted_one(res.rows_affected, TABLE)?;
        Ok(r.clone())
    }
}

/// The same audited entity written through the auditing connection: an
/// `AuditedTransaction` per row or per phase (its audit rows written together at
/// commit), and a plain `AuditedConnection` in atomic mode.
mod wrapped_article {
    use sea_orm_audit::Audited;

    article_entity!("wrapped_article", derive(Audited), #[audited(repr = "title")]);
}

/// The hand-written ORM-level floor: plain SeaORM, plus one SELECT of the row and one
/// INSERT of a hand-made audit row, in the caller's transaction.
mod floor_article {
    use sea_orm::QuerySelect;
    use sea_orm_audit::RequestContext;
    use sea_orm_audit::entity::audit_log;
    use serde_json::{Map, Value as Json, json};

    article_entity!("floor_article");
    impl ActiveModelBehavior for ActiveModel {}

    fn image(r: &Row, key: &str) -> Json {
        json!({
            "id": {key: r.id},
            "title": {key: r.title},
            "body": {key: r.body},
            "views": {key: r.views},
            "published": {key: r.published},
            "updated_at": {key: r.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)},
        })
    }

    fn diff(old: &Row, new: &Row) -> Json {
        let mut out = Map::new();
        let mut field = |name: &str, a: Json, b: Json| {
            if a != b {
                out.insert(name.into(), json!({"old": a, "new": b}));
            }
        };
        field("title", json!(old.title), json!(new.title));
        field("body", json!(old.body), json!(new.body));
        field("views", json!(old.views), json!(new.views));
        field("published", json!(old.published), json!(new.published));
        field(
            "updated_at",
            json!(old.updated_at.to_rfc3339()),
            json!(new.updated_at.to_rfc3339()),
        );
        Json::Object(out)
    }

    async fn audit<C: ConnectionTrait>(
        db: &C,
        action: &str,
        r: &Row,
        changes: Json,
    ) -> Result<(), DbErr> {
        let ctx = RequestContext::current();
        let ctx = ctx.as_deref();
        let text = |f: fn(&RequestContext) -> Option<&str>| Set(ctx.and_then(f).map(str::to_owned));
        let am = audit_log::ActiveModel {
            action: Set(action.to_owned()),
            table_name: Set(Some(TABLE.to_owned())),
            object_pk: Set(Some(r.id.to_string())),
            object_repr: Set(Some(r.title.chars().take(200).collect())),
            changes: Set(Some(changes)),
            actor_id: text(RequestContext::actor_id),
            actor_name: text(RequestContext::actor_name),
            ip_address: Set(ctx
                .and_then(RequestContext::ip_address)
                .map(|ip| ip.to_string())),
            user_agent: text(RequestContext::user_agent_str),
            request_id: text(RequestContext::request_id_str),
            module: Set(Some(module_path!().to_owned())),
            created_at: Set(chrono::Utc::now()),
            ..Default::default()
        };
        audit_log::Entity::insert(am)
            .exec_without_returning(db)
            .await?;
        Ok(())
    }

    async fn before_image<C: ConnectionTrait>(db: &C, r: &Row) -> Result<Row, DbErr> {
        Entity::find_by_id(r.id)
            .lock_exclusive()
            .one(db)
            .await?
            .map(row)
            .ok_or_else(|| DbErr::RecordNotFound(format!("{TABLE} {}", r.id)))
    }

    pub async fn audited_insert<C: ConnectionTrait>(db: &C, r: &Row) -> Result<Row, DbErr> {
        let new = insert(db, r).await?;
        audit(db, "CREATE", &new, image(&new, "new")).await?;
        Ok(new)
    }

    pub async fn audited_update<C: ConnectionTrait>(db: &C, r: &Row) -> Result<Row, DbErr> {
        let old = before_image(db, r).await?;
        let new = update(db, r).await?;
        audit(db, "UPDATE", &new, diff(&old, &new)).await?;
        Ok(new)
    }

    pub async fn audited_delete<C: ConnectionTrait>(db: &C, r: &Row) -> Result<Row, DbErr> {
        let old = before_image(db, r).await?;
        delete(db, r).await?;
        audit(db, "DELETE", &old, image(&old, "old")).await?;
        Ok(old)
    }
}

/// Plain SeaORM on a table whose database trigger writes the audit row.
mod trigger_article {
    article_entity!("trigger_article");
    impl ActiveModelBehavior for ActiveModel {}
}

fn deleted_one(rows: u64, table: &str) -> Result<(), DbErr> {
    if rows == 1 {
        Ok(())
    } else {
        Err(DbErr::Custom(format!(
            "{table}: deleted {rows} rows, not 1"
        )))
    }
}

/// Row triggers equivalent to what the library records: the full image on insert and
/// delete, old and new of the changed columns on update.
fn trigger_ddl(backend: DbBackend) -> Vec<String> {
    const COLS: [&str; 5] = ["title", "body", "views", "published", "updated_at"];
    const INTO: &str = "INSERT INTO audit_log (action, table_name, object_pk, object_repr, changes, module, created_at)";
    match backend {
        DbBackend::Postgres => {
            let image = |rec: &str, key: &str| {
                let mut parts = vec![format!("'id', jsonb_build_object('{key}', {rec}.id)")];
                parts.extend(
                    COLS.iter()
                        .map(|c| format!("'{c}', jsonb_build_object('{key}', {rec}.{c})")),
                );
                format!("jsonb_build_object({})", parts.join(", "))
            };
            let diff = COLS
                .iter()
                .map(|c| {
                    format!(
                        "'{c}', CASE WHEN OLD.{c} IS DISTINCT FROM NEW.{c} THEN jsonb_build_object('old', OLD.{c}, 'new', NEW.{c}) END"
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                format!(
                    "CREATE FUNCTION trigger_article_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {INTO} VALUES ('CREATE', TG_TABLE_NAME, NEW.id::text, left(NEW.title, 200), {new}, 'trigger', now());
    RETURN NEW;
  ELSIF TG_OP = 'UPDATE' THEN
    {INTO} VALUES ('UPDATE', TG_TABLE_NAME, NEW.id::text, left(NEW.title, 200), jsonb_strip_nulls(jsonb_build_object({diff})), 'trigger', now());
    RETURN NEW;
  ELSE
    {INTO} VALUES ('DELETE', TG_TABLE_NAME, OLD.id::text, left(OLD.title, 200), {old}, 'trigger', now());
    RETURN OLD;
  END IF;
END $$",
                    new = image("NEW", "new"),
                    old = image("OLD", "old"),
                ),
                "CREATE TRIGGER trigger_article_audit AFTER INSERT OR UPDATE OR DELETE ON trigger_article \
                 FOR EACH ROW EXECUTE FUNCTION trigger_article_audit()"
                    .into(),
            ]
        }
        DbBackend::MySql => {
            let image = |rec: &str, key: &str| {
                let mut parts = vec![format!("'id', JSON_OBJECT('{key}', {rec}.id)")];
                parts.extend(COLS.iter().map(|c| {
                    let v = if *c == "published" {
                        format!("{rec}.{c} IS TRUE")
                    } else {
                        format!("{rec}.{c}")
                    };
                    format!("'{c}', JSON_OBJECT('{key}', {v})")
                }));
                format!("JSON_OBJECT({})", parts.join(", "))
            };
            let diff = COLS
                .iter()
                .map(|c| {
                    format!(
                        "IF(OLD.{c} <=> NEW.{c}, NULL, CONCAT('\"{c}\":', JSON_OBJECT('old', OLD.{c}, 'new', NEW.{c})))"
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                format!(
                    "CREATE TRIGGER trigger_article_ai AFTER INSERT ON trigger_article FOR EACH ROW \
                     {INTO} VALUES ('CREATE', 'trigger_article', NEW.id, LEFT(NEW.title, 200), {}, 'trigger', UTC_TIMESTAMP(6))",
                    image("NEW", "new")
                ),
                format!(
                    "CREATE TRIGGER trigger_article_au AFTER UPDATE ON trigger_article FOR EACH ROW \
                     {INTO} VALUES ('UPDATE', 'trigger_article', NEW.id, LEFT(NEW.title, 200), \
                     CONCAT('{{', CONCAT_WS(',', {diff}), '}}'), 'trigger', UTC_TIMESTAMP(6))"
                ),
                format!(
                    "CREATE TRIGGER trigger_article_ad AFTER DELETE ON trigger_article FOR EACH ROW \
                     {INTO} VALUES ('DELETE', 'trigger_article', OLD.id, LEFT(OLD.title, 200), {}, 'trigger', UTC_TIMESTAMP(6))",
                    image("OLD", "old")
                ),
            ]
        }
        DbBackend::Sqlite => {
            let image = |rec: &str, key: &str| {
                let mut parts = vec![format!("'id', json_object('{key}', {rec}.id)")];
                parts.extend(COLS.iter().map(|c| {
                    let v = if *c == "published" {
                        format!("json(CASE WHEN {rec}.{c} THEN 'true' ELSE 'false' END)")
                    } else {
                        format!("{rec}.{c}")
                    };
                    format!("'{c}', json_object('{key}', {v})")
                }));
                format!("json_object({})", parts.join(", "))
            };
            // json_patch drops the members whose value is null: the unchanged columns.
            let diff = COLS
                .iter()
                .map(|c| {
                    format!(
                        "'{c}', CASE WHEN OLD.{c} IS NOT NEW.{c} THEN json_object('old', OLD.{c}, 'new', NEW.{c}) END"
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let now = "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')";
            vec![
                format!(
                    "CREATE TRIGGER trigger_article_ai AFTER INSERT ON trigger_article BEGIN \
                     {INTO} VALUES ('CREATE', 'trigger_article', NEW.id, substr(NEW.title, 1, 200), {}, 'trigger', {now}); END",
                    image("NEW", "new")
                ),
                format!(
                    "CREATE TRIGGER trigger_article_au AFTER UPDATE ON trigger_article BEGIN \
                     {INTO} VALUES ('UPDATE', 'trigger_article', NEW.id, substr(NEW.title, 1, 200), \
                     json_patch('{{}}', json_object({diff})), 'trigger', {now}); END"
                ),
                format!(
                    "CREATE TRIGGER trigger_article_ad AFTER DELETE ON trigger_article BEGIN \
                     {INTO} VALUES ('DELETE', 'trigger_article', OLD.id, substr(OLD.title, 1, 200), {}, 'trigger', {now}); END",
                    image("OLD", "old")
                ),
            ]
        }
        _ => Vec::new(),
    }
}

// === variants, modes and phases ===

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Variant {
    Plain,
    Audited,
    Floor,
    Trigger,
    Wrapped,
}

/// Number of variants.
const NV: usize = 5;

/// Transactions per variant and phase in the per-phase mode (see [`run_phase`]).
const SLICES: usize = 5;

const VARIANTS: [Variant; NV] = [
    Variant::Plain,
    Variant::Audited,
    Variant::Floor,
    Variant::Trigger,
    Variant::Wrapped,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Audited => "audited",
            Variant::Floor => "floor",
            Variant::Trigger => "trigger",
            Variant::Wrapped => "connection",
        }
    }

    fn table(self) -> &'static str {
        match self {
            Variant::Plain => plain_article::TABLE,
            Variant::Audited => audited_article::TABLE,
            Variant::Floor => floor_article::TABLE,
            Variant::Trigger => trigger_article::TABLE,
            Variant::Wrapped => wrapped_article::TABLE,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Whether this variant writes audit rows (and so must be verified).
    fn audits(self) -> bool {
        self != Variant::Plain
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    /// One transaction per row: the web-request case.
    PerRow,
    /// Batch jobs: a transaction around many writes ([`SLICES`] per variant and phase).
    PerPhase,
    /// `*_atomic` on a plain connection vs plain autocommit.
    Atomic,
}

const MODES: [Mode; 3] = [Mode::PerRow, Mode::PerPhase, Mode::Atomic];

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::PerRow => "per-row",
            Mode::PerPhase => "per-phase",
            Mode::Atomic => "atomic",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Mode::PerRow => "transaction per row",
            Mode::PerPhase => "transaction per phase",
            Mode::Atomic => "atomic call vs autocommit",
        }
    }
}

/// What one phase does to each of its rows. Bulk phases (`update_many`/`delete_many`
/// of 10,000 rows, issue 3) and read phases (history, summaries and list pages on a
/// 10,000- and a 1,000,000-row log, issue 4) become new variants here and new entries
/// in [`PHASES`] once those paths exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Insert,
    Update,
    Delete,
}

struct Phase {
    name: &'static str,
    op: Op,
}

/// The measured phases, in the order they run (each works on the rows the previous
/// one left). The "all three phases" ratio sums these.
const PHASES: [Phase; 3] = [
    Phase {
        name: "insert",
        op: Op::Insert,
    },
    Phase {
        name: "update",
        op: Op::Update,
    },
    Phase {
        name: "delete",
        op: Op::Delete,
    },
];

/// Issue 7's reference ratios (audited/plain, all three phases) measured on this kind of
/// machine: (hand-written ORM-level floor, database row trigger).
fn reference(backend: DbBackend, mode: Mode) -> Option<(f64, f64)> {
    match (backend, mode) {
        (DbBackend::Sqlite, Mode::PerRow) => Some((1.61, 1.38)),
        (DbBackend::Sqlite, Mode::PerPhase) => Some((3.76, 1.68)),
        (DbBackend::Postgres, Mode::PerRow) => Some((1.50, 1.53)),
        (DbBackend::Postgres, Mode::PerPhase) => Some((2.76, 2.29)),
        (DbBackend::MySql, Mode::PerRow) => Some((1.46, 1.37)),
        (DbBackend::MySql, Mode::PerPhase) => Some((2.12, 1.64)),
        _ => None,
    }
}

async fn run_op<C: ConnectionTrait>(db: &C, v: Variant, op: Op, r: &Row) -> Result<Row, DbErr> {
    match (v, op) {
        (Variant::Plain, Op::Insert) => plain_article::insert(db, r).await,
        (Variant::Plain, Op::Update) => plain_article::update(db, r).await,
        (Variant::Plain, Op::Delete) => plain_article::delete(db, r).await,
        (Variant::Audited, Op::Insert) => audited_article::insert(db, r).await,
        (Variant::Audited, Op::Update) => audited_article::update(db, r).await,
        (Variant::Audited, Op::Delete) => audited_article::delete(db, r).await,
        (Variant::Floor, Op::Insert) => floor_article::audited_insert(db, r).await,
        (Variant::Floor, Op::Update) => floor_article::audited_update(db, r).await,
        (Variant::Floor, Op::Delete) => floor_article::audited_delete(db, r).await,
        (Variant::Trigger, Op::Insert) => trigger_article::insert(db, r).await,
        (Variant::Trigger, Op::Update) => trigger_article::update(db, r).await,
        (Variant::Trigger, Op::Delete) => trigger_article::delete(db, r).await,
        (Variant::Wrapped, Op::Insert) => wrapped_article::insert(db, r).await,
        (Variant::Wrapped, Op::Update) => wrapped_article::update(db, r).await,
        (Variant::Wrapped, Op::Delete) => wrapped_article::delete(db, r).await,
    }
}

/// The auditing connection of the database being measured: made once when it is
/// opened and cloned, as an application keeps one (it learns once per connection
/// whether the server has DELETE ... RETURNING).
static WRAPPED: std::sync::Mutex<Option<AuditedConnection>> = std::sync::Mutex::new(None);

fn wrapped(db: &DatabaseConnection) -> AuditedConnection {
    let mut one = WRAPPED.lock().unwrap_or_else(|e| e.into_inner());
    match &*one {
        Some(conn) if conn.inner().get_database_backend() == db.get_database_backend() => {
            conn.clone()
        }
        _ => {
            let conn = AuditedConnection::new(db.clone());
            *one = Some(conn.clone());
            conn
        }
    }
}

/// One row in a transaction of its own, with BEGIN and COMMIT timed and counted.
async fn run_op_in_txn(db: &DatabaseConnection, v: Variant, op: Op, r: &Row) -> Result<Row, DbErr> {
    let mut out = run_ops_in_txn(db, v, op, std::slice::from_ref(r)).await?;
    Ok(out.remove(0))
}

/// `rows` in one transaction, with BEGIN and COMMIT timed and counted.
async fn run_ops_in_txn(
    db: &DatabaseConnection,
    v: Variant,
    op: Op,
    rows: &[Row],
) -> Result<Vec<Row>, DbErr> {
    async fn each<C: ConnectionTrait>(
        txn: &C,
        v: Variant,
        op: Op,
        rows: &[Row],
    ) -> Result<Vec<Row>, DbErr> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(run_op(txn, v, op, r).await?);
        }
        Ok(out)
    }
    let t = Instant::now();
    if v == Variant::Wrapped {
        let txn = wrapped(db).begin().await?;
        record(v, Kind::Begin, t.elapsed());
        let out = each(&txn, v, op, rows).await?;
        let t = Instant::now();
        txn.commit().await?;
        record(v, Kind::Commit, t.elapsed());
        return Ok(out);
    }
    let txn = db.begin().await?;
    record(v, Kind::Begin, t.elapsed());
    let out = each(&txn, v, op, rows).await?;
    let t = Instant::now();
    txn.commit().await?;
    record(v, Kind::Commit, t.elapsed());
    Ok(out)
}

/// One row in atomic mode: the library's one-call path for `audited`, a hand-written
/// transaction for `floor`, autocommit for `plain` and `trigger` (a trigger is atomic
/// with its statement for free).
async fn run_op_atomic(db: &DatabaseConnection, v: Variant, op: Op, r: &Row) -> Result<Row, DbErr> {
    match v {
        Variant::Plain | Variant::Trigger => run_op(db, v, op, r).await,
        Variant::Floor => run_op_in_txn(db, v, op, r).await,
        Variant::Wrapped => {
            // Each audited statement runs in a transaction the connection begins itself.
            record(v, Kind::Begin, Duration::ZERO);
            record(v, Kind::Commit, Duration::ZERO);
            run_op(&wrapped(db), v, op, r).await
        }
        Variant::Audited => {
            // BEGIN and COMMIT happen inside the library: counted, not timed.
            record(v, Kind::Begin, Duration::ZERO);
            record(v, Kind::Commit, Duration::ZERO);
            match op {
                Op::Insert => audited_article::insert_atomic(db, r).await,
                Op::Update => audited_article::update_atomic(db, r).await,
                Op::Delete => audited_article::delete_atomic(db, r).await,
            }
        }
    }
}

/// The rows each variant currently holds (as an application would after loading them).
type Rows = [Vec<Row>; NV];

/// Runs one phase for `variants` and returns each variant's wall time.
///
/// In the per-row and atomic modes the variants alternate row by row, in an order that
/// rotates with the row. A per-phase transaction cannot alternate with the others on
/// one connection, and giving each variant a connection of its own is not fair on a
/// 2-core machine: in a side experiment the same statements on two connections, each
/// in a long transaction, cost up to twice as much on one as on the other, and which
/// one was slow changed during a run (where the scheduler put each server thread
/// against the client's). So every variant runs on the same connection, and the phase
/// runs as [`SLICES`] transactions per variant over equal slices of the rows; the
/// variants take turns slice by slice, in an order that rotates with the slice, so the
/// machine's noise reaches all of them.
async fn run_phase(
    db: &DatabaseConnection,
    mode: Mode,
    op: Op,
    variants: &[Variant],
    rows: &mut Rows,
    n: usize,
    rotation: usize,
) -> Result<[Duration; NV]> {
    let mut times = [Duration::ZERO; NV];
    let k = variants.len();
    let input = |rows: &Rows, v: Variant, i: usize| match op {
        Op::Insert => Row::new(i),
        Op::Update | Op::Delete => rows[v.index()][i].clone(),
    };
    let mut out: Rows = Default::default();
    match mode {
        Mode::PerRow | Mode::Atomic => {
            for i in 0..n {
                for j in 0..k {
                    let v = variants[(i + j + rotation) % k];
                    let r = input(rows, v, i);
                    let _cur = Current::set(v);
                    let t = Instant::now();
                    let done = if mode == Mode::PerRow {
                        run_op_in_txn(db, v, op, &r).await?
                    } else {
                        run_op_atomic(db, v, op, &r).await?
                    };
                    times[v.index()] += t.elapsed();
                    out[v.index()].push(done);
                }
            }
        }
        Mode::PerPhase => {
            for slice in 0..SLICES {
                let (lo, hi) = (slice * n / SLICES, (slice + 1) * n / SLICES);
                for j in 0..k {
                    let v = variants[(j + slice + rotation) % k];
                    let inputs: Vec<Row> = (lo..hi).map(|i| input(rows, v, i)).collect();
                    let _cur = Current::set(v);
                    let t = Instant::now();
                    let done = run_ops_in_txn(db, v, op, &inputs).await?;
                    times[v.index()] += t.elapsed();
                    out[v.index()].extend(done);
                }
            }
        }
    }
    for v in variants {
        rows[v.index()] = std::mem::take(&mut out[v.index()]);
    }
    Ok(times)
}

// === statement counting (SeaORM's metric callback) ===

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Begin,
    SelectForUpdate,
    Insert,
    Update,
    Select,
    Delete,
    AuditInsert,
    Commit,
    Other,
}

const KINDS: [Kind; 9] = [
    Kind::Begin,
    Kind::SelectForUpdate,
    Kind::Insert,
    Kind::Update,
    Kind::Select,
    Kind::Delete,
    Kind::AuditInsert,
    Kind::Commit,
    Kind::Other,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Begin => "BEGIN",
            Kind::SelectForUpdate => "SELECT..FOR UPDATE",
            Kind::Insert => "INSERT",
            Kind::Update => "UPDATE",
            Kind::Select => "SELECT",
            Kind::Delete => "DELETE",
            Kind::AuditInsert => "INSERT audit_log",
            Kind::Commit => "COMMIT",
            Kind::Other => "other",
        }
    }

    fn of(sql: &str) -> Kind {
        let sql = sql.trim_start();
        let word = sql.split_whitespace().next().unwrap_or("");
        if word.eq_ignore_ascii_case("SELECT") {
            if sql.contains("FOR UPDATE") {
                Kind::SelectForUpdate
            } else {
                Kind::Select
            }
        } else if word.eq_ignore_ascii_case("INSERT") {
            if sql.contains("audit_log") {
                Kind::AuditInsert
            } else {
                Kind::Insert
            }
        } else if word.eq_ignore_ascii_case("UPDATE") {
            Kind::Update
        } else if word.eq_ignore_ascii_case("DELETE") {
            Kind::Delete
        } else {
            Kind::Other
        }
    }
}

/// The variant whose statements are being counted, plus one; 0 while setting up.
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static COUNTS: [[AtomicU64; KINDS.len()]; NV] =
    [const { [const { AtomicU64::new(0) }; KINDS.len()] }; NV];
static NANOS: [[AtomicU64; KINDS.len()]; NV] =
    [const { [const { AtomicU64::new(0) }; KINDS.len()] }; NV];

/// Marks the statements of this scope as `v`'s.
struct Current;

impl Current {
    fn set(v: Variant) -> Current {
        CURRENT.store(v.index() + 1, Ordering::Relaxed);
        Current
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        CURRENT.store(0, Ordering::Relaxed);
    }
}

fn record(v: Variant, kind: Kind, elapsed: Duration) {
    COUNTS[v.index()][kind as usize].fetch_add(1, Ordering::Relaxed);
    NANOS[v.index()][kind as usize].fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
}

fn on_statement(info: &sea_orm::metric::Info<'_>) {
    let cur = CURRENT.load(Ordering::Relaxed);
    if cur == 0 {
        return;
    }
    let kind = Kind::of(&info.statement.sql);
    COUNTS[cur - 1][kind as usize].fetch_add(1, Ordering::Relaxed);
    NANOS[cur - 1][kind as usize].fetch_add(info.elapsed.as_nanos() as u64, Ordering::Relaxed);
}

/// Statement counts and summed statement time of one variant, by kind.
#[derive(Clone, Debug, Default)]
struct Profile {
    counts: [u64; KINDS.len()],
    nanos: [u64; KINDS.len()],
    ops: u64,
    wall_nanos: u64,
}

fn take_profile(v: Variant) -> Profile {
    let mut p = Profile::default();
    for k in 0..KINDS.len() {
        p.counts[k] = COUNTS[v.index()][k].swap(0, Ordering::Relaxed);
        p.nanos[k] = NANOS[v.index()][k].swap(0, Ordering::Relaxed);
    }
    p
}

impl Profile {
    fn add(&mut self, other: &Profile) {
        for k in 0..KINDS.len() {
            self.counts[k] += other.counts[k];
            self.nanos[k] += other.nanos[k];
        }
        self.ops += other.ops;
        self.wall_nanos += other.wall_nanos;
    }

    fn per_op(&self, k: usize) -> f64 {
        self.counts[k] as f64 / self.ops.max(1) as f64
    }

    fn statements_per_op(&self) -> f64 {
        (0..KINDS.len())
            .filter(|&k| KINDS[k] != Kind::Begin && KINDS[k] != Kind::Commit)
            .map(|k| self.per_op(k))
            .sum()
    }

    /// "SELECT..FOR UPDATE 1, UPDATE 1, INSERT audit_log 1 (+BEGIN/COMMIT)".
    fn breakdown(&self) -> String {
        let mut parts = Vec::new();
        for (k, kind) in KINDS.iter().enumerate() {
            if matches!(kind, Kind::Begin | Kind::Commit) {
                continue;
            }
            let per = self.per_op(k);
            if per > 0.0 {
                parts.push(format!("{} {}", kind.name(), fmt_count(per)));
            }
        }
        let tx = self.per_op(Kind::Begin as usize) + self.per_op(Kind::Commit as usize);
        let mut s = parts.join(", ");
        if tx >= 0.5 {
            let _ = write!(s, " + BEGIN/COMMIT");
        }
        s
    }
}

fn fmt_count(x: f64) -> String {
    if (x - x.round()).abs() < 0.005 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.2}")
    }
}

// === heap accounting ===

/// The system allocator, counting live and peak heap bytes.
struct CountingAlloc;

static HEAP_NOW: AtomicUsize = AtomicUsize::new(0);
static HEAP_PEAK: AtomicUsize = AtomicUsize::new(0);

#[allow(unsafe_code)] // a GlobalAlloc impl is unsafe by definition; it only forwards to System
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        HEAP_NOW.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grow(new_size - layout.size());
            } else {
                HEAP_NOW.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

fn grow(bytes: usize) {
    let now = HEAP_NOW.fetch_add(bytes, Ordering::Relaxed) + bytes;
    HEAP_PEAK.fetch_max(now, Ordering::Relaxed);
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Heap use over one variant's run of all phases.
#[derive(Clone, Copy, Debug, Default)]
struct Memory {
    /// Peak live heap bytes of the whole process during the run.
    peak: usize,
    /// Peak minus the live bytes at the start of the run.
    peak_delta: usize,
    /// Live bytes at the end minus at the start (what the run left behind).
    retained: isize,
}

// === databases ===

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";

struct BenchDb {
    db: DatabaseConnection,
    backend: DbBackend,
    admin: Option<DatabaseConnection>,
    name: String,
    file: Option<PathBuf>,
    version: String,
}

/// The same settings for every variant: no statement logging, no ping before each
/// acquire, a fixed pool opened up front.
async fn connect(url: &str, pool: u32, search_path: Option<&str>) -> Result<DatabaseConnection> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(pool)
        .min_connections(pool)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(60))
        .test_before_acquire(false)
        .sqlx_logging(false);
    if let Some(path) = search_path {
        opts.set_schema_search_path(path.to_owned());
    }
    Ok(Database::connect(opts).await?)
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> Result<String> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(backend, sql.to_owned()))
        .await?
        .ok_or("no row")?;
    Ok(row
        .try_get_by_index::<String>(0)
        .or_else(|_| row.try_get_by_index::<i64>(0).map(|v| v.to_string()))?)
}

impl BenchDb {
    async fn open(backend: DbBackend, args: &Args) -> Result<BenchDb> {
        let name = format!("sea_orm_audit_bench_{}", std::process::id());
        let (mut db, admin, file) = match backend {
            DbBackend::Sqlite => {
                let path = args.sqlite_dir.join(format!("{name}.db"));
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                let url = format!("sqlite://{}?mode=rwc", path.display());
                let db = connect(&url, args.pool, None).await?;
                db.execute_unprepared("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000;")
                    .await?;
                (db, None, Some(path))
            }
            _ => {
                let url = if backend == DbBackend::Postgres {
                    std::env::var("AUDIT_TEST_POSTGRES_URL")
                        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into())
                } else {
                    std::env::var("AUDIT_TEST_MYSQL_URL")
                        .unwrap_or_else(|_| DEFAULT_MYSQL_URL.into())
                };
                let admin = connect(&url, 1, None)
                    .await
                    .map_err(|e| format!("{backend:?} unreachable at {url}: {e}"))?;
                if backend == DbBackend::Postgres {
                    admin
                        .execute_unprepared(&format!("CREATE SCHEMA \"{name}\""))
                        .await?;
                    let db = connect(&url, args.pool, Some(&name)).await?;
                    (db, Some(admin), None)
                } else {
                    admin
                        .execute_unprepared(&format!(
                            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                        ))
                        .await?;
                    let url = with_database(&url, &name);
                    let db = connect(&url, args.pool, None).await?;
                    (db, Some(admin), None)
                }
            }
        };
        db.set_metric_callback(on_statement);
        *WRAPPED.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(AuditedConnection::new(db.clone()));
        let version = match backend {
            DbBackend::Sqlite => format!(
                "SQLite {} (journal_mode={}, synchronous={})",
                scalar(&db, "select sqlite_version()").await?,
                scalar(&db, "PRAGMA journal_mode").await?,
                scalar(&db, "PRAGMA synchronous").await?
            ),
            _ => scalar(&db, "select version()").await?,
        };
        Ok(BenchDb {
            db,
            backend,
            admin,
            name,
            file,
            version,
        })
    }

    async fn create_schema(&self, search_indexes: bool) -> Result<()> {
        support::migrate(&self.db, search_indexes).await?;
        Schema::new(self.backend)
            .builder()
            .register(plain_article::Entity)
            .register(audited_article::Entity)
            .register(floor_article::Entity)
            .register(trigger_article::Entity)
            .register(wrapped_article::Entity)
            .apply(&self.db)
            .await?;
        for ddl in trigger_ddl(self.backend) {
            self.db.execute_unprepared(&ddl).await?;
        }
        Ok(())
    }

    async fn close(self) {
        let _ = self.db.close().await;
        if let Some(f) = &self.file {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", f.display()));
            }
        }
        if let Some(admin) = self.admin {
            let drop = match self.backend {
                DbBackend::Postgres => format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name),
                _ => format!("DROP DATABASE IF EXISTS `{}`", self.name),
            };
            let _ = admin.execute_unprepared(&drop).await;
            let _ = admin.close().await;
        }
    }
}

// === verification ===

async fn table_count(db: &DatabaseConnection, table: &str, extra: &str) -> Result<u64> {
    Ok(scalar(db, &format!("SELECT COUNT(*) FROM {table}{extra}"))
        .await?
        .parse()?)
}

/// What must hold after each phase, so that a phase that silently did nothing fails.
async fn verify_phase(
    db: &DatabaseConnection,
    op: Op,
    variants: &[Variant],
    n: usize,
) -> Result<()> {
    for v in variants {
        let (extra, want) = match op {
            Op::Insert => ("", n as u64),
            Op::Update => (" WHERE views = 1", n as u64),
            Op::Delete => ("", 0),
        };
        let got = table_count(db, v.table(), extra).await?;
        if got != want {
            return Err(format!(
                "{}: {got} rows{extra} after {op:?}, expected {want}",
                v.table()
            )
            .into());
        }
    }
    Ok(())
}

/// One CREATE, UPDATE and DELETE row per article for every auditing variant, none for
/// `plain`, and the exact diff of the first article's update.
async fn verify_trail(
    db: &DatabaseConnection,
    variants: &[Variant],
    n: usize,
    first: &[Option<Row>; NV],
) -> Result<()> {
    for v in variants {
        let rows = audit_log::Entity::find()
            .filter(audit_log::Column::TableName.eq(v.table()))
            .count(db)
            .await?;
        if !v.audits() {
            if rows != 0 {
                return Err(format!("{}: {rows} audit rows, expected none", v.table()).into());
            }
            continue;
        }
        for action in ["CREATE", "UPDATE", "DELETE"] {
            let got = audit_log::Entity::find()
                .filter(audit_log::Column::TableName.eq(v.table()))
                .filter(audit_log::Column::Action.eq(action))
                .count(db)
                .await?;
            if got != n as u64 {
                return Err(format!("{}: {got} {action} rows, expected {n}", v.table()).into());
            }
        }
        let row = first[v.index()].as_ref().ok_or("no first row recorded")?;
        let changes: Option<Option<Json>> = audit_log::Entity::find()
            .select_only()
            .column(audit_log::Column::Changes)
            .filter(audit_log::Column::TableName.eq(v.table()))
            .filter(audit_log::Column::Action.eq("UPDATE"))
            .filter(audit_log::Column::ObjectPk.eq(row.id.to_string()))
            .into_tuple()
            .one(db)
            .await?;
        let got = changes.flatten().ok_or("no UPDATE diff")?;
        let got = match got {
            Json::String(s) => serde_json::from_str(&s)?,
            other => other,
        };
        let want = row.expected_update_diff();
        if got != want {
            return Err(format!("{}: UPDATE diff {got}, expected {want}", v.table()).into());
        }
    }
    Ok(())
}

// === the run ===

#[derive(Clone, Debug)]
struct Args {
    backends: Vec<DbBackend>,
    modes: Vec<Mode>,
    rows: usize,
    repeats: usize,
    warmup: usize,
    pool: u32,
    sqlite_dir: PathBuf,
    memory: bool,
    search_indexes: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        backends: vec![DbBackend::Sqlite, DbBackend::Postgres, DbBackend::MySql],
        modes: MODES.to_vec(),
        rows: 2000,
        repeats: 5,
        warmup: 100,
        pool: 1,
        sqlite_dir: std::env::temp_dir(),
        memory: true,
        search_indexes: true,
    };
    let mut raw: Vec<String> = std::env::args().skip(1).collect();
    args.search_indexes = !support::take_without_search_indexes(&mut raw);
    let mut it = raw.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--backends" => {
                args.backends = value()?
                    .split(',')
                    .map(|b| match b.trim() {
                        "sqlite" => Ok(DbBackend::Sqlite),
                        "postgres" | "postgresql" | "pg" => Ok(DbBackend::Postgres),
                        "mysql" | "mariadb" => Ok(DbBackend::MySql),
                        other => Err(format!("unknown backend {other}")),
                    })
                    .collect::<Result<_, _>>()?
            }
            "--modes" => {
                args.modes = value()?
                    .split(',')
                    .map(|m| {
                        MODES
                            .into_iter()
                            .find(|mode| mode.name() == m.trim())
                            .ok_or_else(|| format!("unknown mode {m}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--rows" => args.rows = value()?.parse()?,
            "--repeats" => args.repeats = value()?.parse()?,
            "--warmup" => args.warmup = value()?.parse()?,
            "--pool" => args.pool = value()?.parse()?,
            "--sqlite-dir" => args.sqlite_dir = value()?.into(),
            "--no-memory" => args.memory = false,
            "--help" | "-h" => {
                println!(
                    "bench [--backends sqlite,postgres,mysql] [--modes per-row,per-phase,atomic] \
                     [--rows 2000] [--repeats 5] [--warmup 100] [--pool 1] [--sqlite-dir DIR] [--no-memory] \
                     [--without-search-indexes]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if args.rows == 0 || args.repeats == 0 || args.pool == 0 {
        return Err("--rows, --repeats and --pool must be positive".into());
    }
    Ok(args)
}

/// Wall times per (mode, phase, variant), one entry per repeat.
type Times = BTreeMap<(Mode, Op, Variant), Vec<Duration>>;
type Profiles = BTreeMap<(Mode, Op, Variant), Profile>;

struct BackendResult {
    backend: DbBackend,
    version: String,
    returning: bool,
    times: Times,
    profiles: Profiles,
    memory: BTreeMap<(Mode, Variant), Memory>,
}

async fn clear_audit_log(db: &DatabaseConnection) -> Result<()> {
    audit_log::Entity::delete_many().exec(db).await?;
    Ok(())
}

/// All phases once for `variants`; returns the first article of each variant (for the
/// diff check) and each phase's times and profiles.
async fn run_round(
    db: &DatabaseConnection,
    mode: Mode,
    variants: &[Variant],
    n: usize,
    rotation: usize,
) -> Result<([Option<Row>; NV], Vec<(Op, [Duration; NV], [Profile; NV])>)> {
    let mut rows: Rows = Default::default();
    let mut first: [Option<Row>; NV] = Default::default();
    let mut out = Vec::new();
    for (p, phase) in PHASES.iter().enumerate() {
        for v in VARIANTS {
            take_profile(v);
        }
        let times = run_phase(db, mode, phase.op, variants, &mut rows, n, rotation + p).await?;
        let profiles = VARIANTS.map(|v| {
            let mut prof = take_profile(v);
            prof.ops = n as u64;
            prof.wall_nanos = times[v.index()].as_nanos() as u64;
            prof
        });
        verify_phase(db, phase.op, variants, n)
            .await
            .map_err(|e| format!("{} {}: {e}", mode.name(), phase.name))?;
        if phase.op == Op::Insert {
            for v in variants {
                first[v.index()] = rows[v.index()].first().cloned();
            }
        }
        out.push((phase.op, times, profiles));
    }
    Ok((first, out))
}

async fn run_backend(bdb: &BenchDb, args: &Args) -> Result<BackendResult> {
    let db = &bdb.db;
    let mut res = BackendResult {
        backend: bdb.backend,
        version: bdb.version.clone(),
        returning: db.support_returning(),
        times: Times::new(),
        profiles: Profiles::new(),
        memory: BTreeMap::new(),
    };
    let name = format!("{:?}", bdb.backend);
    for &mode in &args.modes {
        if args.warmup > 0 {
            let (first, _) = run_round(db, mode, &VARIANTS, args.warmup, 0).await?;
            verify_trail(db, &VARIANTS, args.warmup, &first).await?;
            clear_audit_log(db).await?;
        }
        for rep in 0..args.repeats {
            let started = Instant::now();
            let (first, phases) = run_round(db, mode, &VARIANTS, args.rows, rep).await?;
            verify_trail(db, &VARIANTS, args.rows, &first)
                .await
                .map_err(|e| format!("{name} {} repeat {rep}: {e}", mode.name()))?;
            clear_audit_log(db).await?;
            for (op, times, profiles) in phases {
                for v in VARIANTS {
                    res.times
                        .entry((mode, op, v))
                        .or_default()
                        .push(times[v.index()]);
                    res.profiles
                        .entry((mode, op, v))
                        .or_default()
                        .add(&profiles[v.index()]);
                }
            }
            eprintln!(
                "[{name}] {} repeat {}/{} done in {:.1}s, trail verified",
                mode.name(),
                rep + 1,
                args.repeats,
                started.elapsed().as_secs_f64()
            );
        }
    }
    if args.memory {
        for &mode in &args.modes {
            for v in [Variant::Plain, Variant::Audited, Variant::Wrapped] {
                let before = HEAP_NOW.load(Ordering::Relaxed);
                HEAP_PEAK.store(before, Ordering::Relaxed);
                let (first, _) = run_round(db, mode, &[v], args.rows, 0).await?;
                let peak = HEAP_PEAK.load(Ordering::Relaxed);
                let after = HEAP_NOW.load(Ordering::Relaxed);
                verify_trail(db, &[v], args.rows, &first).await?;
                clear_audit_log(db).await?;
                res.memory.insert(
                    (mode, v),
                    Memory {
                        peak,
                        peak_delta: peak.saturating_sub(before),
                        retained: after as isize - before as isize,
                    },
                );
            }
            eprintln!("[{name}] {} memory pass done", mode.name());
        }
    }
    Ok(res)
}

// === report ===

fn median(xs: &[Duration]) -> Duration {
    let mut v = xs.to_vec();
    v.sort();
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

fn backend_name(b: DbBackend) -> &'static str {
    match b {
        DbBackend::Sqlite => "SQLite",
        DbBackend::Postgres => "PostgreSQL",
        DbBackend::MySql => "MariaDB",
        _ => "other",
    }
}

impl BackendResult {
    fn med(&self, mode: Mode, op: Op, v: Variant) -> Option<Duration> {
        self.times.get(&(mode, op, v)).map(|t| median(t))
    }

    /// Median of `v` over median of plain for one phase.
    fn ratio(&self, mode: Mode, op: Op, v: Variant) -> Option<f64> {
        let a = self.med(mode, op, v)?.as_secs_f64();
        let p = self.med(mode, op, Variant::Plain)?.as_secs_f64();
        Some(a / p)
    }

    /// Sum of `v`'s per-phase medians over the same sum for plain.
    fn ratio_all(&self, mode: Mode, v: Variant) -> Option<f64> {
        let (mut a, mut p) = (0.0, 0.0);
        for phase in &PHASES {
            a += self.med(mode, phase.op, v)?.as_secs_f64();
            p += self.med(mode, phase.op, Variant::Plain)?.as_secs_f64();
        }
        Some(a / p)
    }
}

fn mark(x: f64, floor: f64, trigger: f64) -> String {
    let f = if x <= floor { "F✓" } else { "F✗" };
    let t = if x <= trigger { "T✓" } else { "T✗" };
    format!("{x:.2} {f} {t}")
}

fn report(results: &[BackendResult], args: &Args) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Audited / plain SeaORM, medians of {} repeats, N = {} rows per phase\n",
        args.repeats, args.rows
    );
    let _ = writeln!(
        s,
        "| backend | mode | audited through | insert | update | delete | all three phases | floor (issue) | trigger (issue) | floor (here) | trigger (here) |"
    );
    let _ = writeln!(s, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in results {
        for &mode in &args.modes {
            for (path, v) in [
                ("hooks", Variant::Audited),
                ("AuditedConnection", Variant::Wrapped),
            ] {
                let floor_here = r.ratio_all(mode, Variant::Floor).unwrap_or(f64::NAN);
                let trig_here = r.ratio_all(mode, Variant::Trigger).unwrap_or(f64::NAN);
                let (f, t, refs) = match reference(r.backend, mode) {
                    Some((f, t)) => (f, t, (format!("{f:.2}"), format!("{t:.2}"))),
                    None => (floor_here, trig_here, ("—".into(), "—".into())),
                };
                let cell = |x: Option<f64>| x.map_or("—".into(), |x| mark(x, f, t));
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | **{}** | {} | {} | {:.2} | {:.2} |",
                    backend_name(r.backend),
                    mode.label(),
                    path,
                    cell(r.ratio(mode, Op::Insert, v)),
                    cell(r.ratio(mode, Op::Update, v)),
                    cell(r.ratio(mode, Op::Delete, v)),
                    cell(r.ratio_all(mode, v)),
                    refs.0,
                    refs.1,
                    floor_here,
                    trig_here,
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\nF✓/F✗: at or below / above the floor, T✓/T✗: the trigger figure; against the issue's \
         reference where it has one, else (atomic mode) against the floor and trigger measured here. \
         The targets are defined on the \"all three phases\" column; the per-phase marks are indicative."
    );

    let _ = writeln!(
        s,
        "\n## Every variant measured in the same run (ratio to plain)\n"
    );
    let _ = writeln!(
        s,
        "| backend | mode | variant | insert | update | delete | all three phases |"
    );
    let _ = writeln!(s, "|---|---|---|---:|---:|---:|---:|");
    for r in results {
        for &mode in &args.modes {
            for v in VARIANTS.into_iter().filter(|&v| v != Variant::Plain) {
                let mut line = format!(
                    "| {} | {} | {} ",
                    backend_name(r.backend),
                    mode.label(),
                    v.name()
                );
                for phase in &PHASES {
                    let _ = write!(
                        line,
                        "| {:.2} ",
                        r.ratio(mode, phase.op, v).unwrap_or(f64::NAN)
                    );
                }
                let _ = writeln!(
                    s,
                    "{line}| {:.2} |",
                    r.ratio_all(mode, v).unwrap_or(f64::NAN)
                );
            }
        }
    }

    let _ = writeln!(
        s,
        "\n## Median time per operation, µs (secondary: absolute times move with the machine)\n"
    );
    let names: Vec<&str> = VARIANTS.iter().map(|v| v.name()).collect();
    let _ = writeln!(s, "| backend | mode | phase | {} |", names.join(" | "));
    let _ = writeln!(s, "|---|---|---{}|", "|---:".repeat(NV));
    for r in results {
        for &mode in &args.modes {
            for phase in &PHASES {
                let mut line = format!(
                    "| {} | {} | {} ",
                    backend_name(r.backend),
                    mode.name(),
                    phase.name
                );
                for v in VARIANTS {
                    let us = r
                        .med(mode, phase.op, v)
                        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e6 / args.rows as f64);
                    let _ = write!(line, "| {us:.0} ");
                }
                let _ = writeln!(s, "{line}|");
            }
        }
    }

    let _ = writeln!(
        s,
        "\n## Statements per operation (BEGIN/COMMIT not included in the count)\n"
    );
    let _ = writeln!(
        s,
        "| backend | mode | phase | {} | audited, by statement |",
        names.join(" | ")
    );
    let _ = writeln!(s, "|---|---|---{}|---|", "|---:".repeat(NV));
    for r in results {
        for &mode in &args.modes {
            for phase in &PHASES {
                let mut line = format!(
                    "| {} | {} | {} ",
                    backend_name(r.backend),
                    mode.name(),
                    phase.name
                );
                for v in VARIANTS {
                    let n = r
                        .profiles
                        .get(&(mode, phase.op, v))
                        .map_or(f64::NAN, Profile::statements_per_op);
                    let _ = write!(line, "| {} ", fmt_count(n));
                }
                let bd = r
                    .profiles
                    .get(&(mode, phase.op, Variant::Audited))
                    .map(Profile::breakdown)
                    .unwrap_or_default();
                let _ = writeln!(s, "{line}| {bd} |");
            }
        }
    }

    let _ = writeln!(
        s,
        "\n## Where the time goes: mean µs per operation, by statement (plain in brackets)\n"
    );
    let mut header = "| backend | mode | phase | variant | total ".to_string();
    let mut rule = "|---|---|---|---|---:".to_string();
    for kind in KINDS {
        let _ = write!(header, "| {} ", kind.name());
        rule.push_str("|---:");
    }
    let _ = writeln!(s, "{header}| outside statements |");
    let _ = writeln!(s, "{rule}|---:|");
    for r in results {
        for &mode in &args.modes {
            for (phase, variant) in PHASES
                .iter()
                .flat_map(|p| [Variant::Audited, Variant::Floor, Variant::Wrapped].map(|v| (p, v)))
            {
                let (Some(a), Some(p)) = (
                    r.profiles.get(&(mode, phase.op, variant)),
                    r.profiles.get(&(mode, phase.op, Variant::Plain)),
                ) else {
                    continue;
                };
                let us = |prof: &Profile, nanos: u64| nanos as f64 / 1e3 / prof.ops.max(1) as f64;
                let mut line = format!(
                    "| {} | {} | {} | {} | {:.0} ({:.0}) ",
                    backend_name(r.backend),
                    mode.name(),
                    phase.name,
                    variant.name(),
                    us(a, a.wall_nanos),
                    us(p, p.wall_nanos)
                );
                for (k, kind) in KINDS.iter().enumerate() {
                    if a.counts[k] == 0 && p.counts[k] == 0 {
                        let _ = write!(line, "| ");
                    } else if mode == Mode::Atomic && matches!(kind, Kind::Begin | Kind::Commit) {
                        let _ = write!(line, "| (in call) ");
                    } else {
                        let _ = write!(
                            line,
                            "| {:.0} ({:.0}) ",
                            us(a, a.nanos[k]),
                            us(p, p.nanos[k])
                        );
                    }
                }
                let outside = |prof: &Profile| {
                    us(
                        prof,
                        prof.wall_nanos.saturating_sub(prof.nanos.iter().sum()),
                    )
                };
                let _ = writeln!(s, "{line}| {:.0} ({:.0}) |", outside(a), outside(p));
            }
        }
    }

    if args.memory {
        let _ = writeln!(
            s,
            "\n## Peak heap, audited vs plain (each variant alone, all three phases, N = {})\n",
            args.rows
        );
        let _ = writeln!(
            s,
            "| backend | mode | plain peak | audited peak | ratio | plain peak above start | audited peak above start | audited retained after run |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|");
        for r in results {
            for &mode in &args.modes {
                let (Some(p), Some(a)) = (
                    r.memory.get(&(mode, Variant::Plain)),
                    r.memory.get(&(mode, Variant::Audited)),
                ) else {
                    continue;
                };
                let kib = |b: usize| b as f64 / 1024.0;
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.0} KiB | {:.0} KiB | {:.2} | {:.0} KiB | {:.0} KiB | {:+.1} KiB |",
                    backend_name(r.backend),
                    mode.label(),
                    kib(p.peak),
                    kib(a.peak),
                    a.peak as f64 / p.peak as f64,
                    kib(p.peak_delta),
                    kib(a.peak_delta),
                    a.retained as f64 / 1024.0,
                );
            }
        }
    }

    let _ = writeln!(s, "\n## Servers\n");
    let _ = writeln!(s, "- {}", support::index_note(args.search_indexes));
    for r in results {
        let _ = writeln!(
            s,
            "- {}: {}; RETURNING used by SeaORM: {}",
            backend_name(r.backend),
            r.version,
            if r.returning { "yes" } else { "no" }
        );
    }
    s
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    sea_orm_audit::register::<wrapped_article::Entity>();
    let args = parse_args()?;
    // The audited writes run under a request context, as in a web request; the floor
    // variant records the same fields by hand.
    let ctx = RequestContext::new()
        .actor("42", "Bench User")
        .ip("203.0.113.7")
        .user_agent("sea-orm-audit-bench/1.0")
        .request_id("bench-request");
    let mut results = Vec::new();
    for &backend in &args.backends {
        let bdb = BenchDb::open(backend, &args).await?;
        let outcome = async {
            bdb.create_schema(args.search_indexes).await?;
            run_backend(&bdb, &args).await
        };
        let outcome = ctx.clone().scope(outcome).await;
        bdb.close().await;
        results.push(outcome?);
    }
    print!("{}", report(&results, &args));
    Ok(())
}
