//! Bulk paths: audited vs plain `update_many` and `delete_many` of 10,000 rows, on
//! SQLite (file, WAL), PostgreSQL and MariaDB, in one run.
//!
//! `cargo run --release -p sea-orm-audit-examples --example bench_bulk -- [rows] [repeats]
//! [--without-search-indexes]` (the last leaves out the admin search's three indexes).
//!
//! Plain is SeaORM on a plain `DatabaseConnection`; audited is the same statement
//! through `AuditedTransaction`, which writes one `audit_log` row per affected object.
//! Each repeat runs both variants in alternating order in a fresh transaction, verifies
//! the audit rows it wrote and prints the median ratio audited/plain per statement,
//! then where the audited time went: statement time by kind (SeaORM's metric
//! callback, with BEGIN and COMMIT timed around the calls) and the rest, spent in Rust
//! building images, diffs and audit rows.
//!
//! A last column measures what no client-side audit can beat: the database alone
//! writing the audit row the library writes for each article (the update's two-field
//! diff, the delete's full image; `INSERT INTO audit_log ... SELECT ... FROM
//! bulk_article`, JSON built in SQL, rolled back), plus the plain statement, over the
//! plain statement. It is the cost of the rows and of `audit_log`'s indexes, with no
//! round trip and no Rust.

mod support;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Schema,
    TransactionTrait,
};
use sea_orm_audit::entity::audit_log;
use sea_orm_audit::{AuditedConnection, without_audit};
use support::with_database;

mod article {
    use sea_orm::entity::prelude::*;
    use sea_orm_audit::Audited;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
    #[sea_orm(table_name = "bulk_article")]
    #[audited(repr = "title")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub title: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub views: i32,
        pub published: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Statement time by kind while a measured variant runs; `None` outside of one.
static STATEMENTS: Mutex<Option<BTreeMap<String, (u32, Duration)>>> = Mutex::new(None);

fn on_statement(info: &sea_orm::metric::Info<'_>) {
    let mut guard = STATEMENTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(map) = guard.as_mut() {
        let sql = info.statement.sql.trim_start();
        let word = sql.split_whitespace().next().unwrap_or("?").to_uppercase();
        let kind = if sql.contains("audit_log") {
            format!("{word} audit_log")
        } else if sql.contains("FOR UPDATE") {
            format!("{word}..FOR UPDATE")
        } else if sql.contains(" RETURNING ") {
            format!("{word}..RETURNING")
        } else {
            word
        };
        let e = map.entry(kind).or_default();
        e.0 += 1;
        e.1 += info.elapsed;
    }
}

/// One measured run: its wall time and, by statement kind, count and time.
struct Sample {
    wall: Duration,
    statements: BTreeMap<String, (u32, Duration)>,
}

async fn seed(db: &DatabaseConnection, n: usize) -> Result<()> {
    without_audit(async {
        article::Entity::delete_many().exec(db).await?;
        let rows: Vec<usize> = (0..n).collect();
        for chunk in rows.chunks(1000) {
            article::Entity::insert_many(chunk.iter().map(|i| article::ActiveModel {
                title: Set(format!("article {i}")),
                body: Set("lorem ipsum ".repeat(19)),
                views: Set(0),
                published: Set(false),
                ..Default::default()
            }))
            .exec(db)
            .await?;
        }
        Ok::<_, DbErr>(())
    })
    .await?;
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    UpdateMany,
    DeleteMany,
}

/// The bulk statement under test; the same for both variants.
async fn statement<C: ConnectionTrait>(db: &C, op: Op) -> Result<u64> {
    Ok(match op {
        Op::UpdateMany => {
            article::Entity::update_many()
                .col_expr(
                    article::Column::Views,
                    Expr::col(article::Column::Views).add(1),
                )
                .col_expr(article::Column::Published, Expr::value(true))
                .exec(db)
                .await?
                .rows_affected
        }
        Op::DeleteMany => article::Entity::delete_many().exec(db).await?.rows_affected,
    })
}

/// The database alone writing, for each article, the audit row the library writes for
/// `op`: the two-field diff of the update, or the full image of the delete.
fn in_database_audit_sql(backend: DbBackend, op: Op) -> String {
    // JSON object builder, text cast, the `published` flag and `true` as JSON, and now.
    let (obj, text, published, truth, now) = match backend {
        DbBackend::Postgres => ("jsonb_build_object", "text", "published", "true", "now()"),
        DbBackend::MySql => (
            "JSON_OBJECT",
            "CHAR",
            "published = 1",
            "TRUE",
            "UTC_TIMESTAMP(6)",
        ),
        _ => (
            "json_object",
            "TEXT",
            "json(CASE published WHEN 0 THEN 'false' ELSE 'true' END)",
            "json('true')",
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        ),
    };
    let (action, changes) = match op {
        Op::UpdateMany => (
            "UPDATE",
            format!(
                "{obj}('views', {obj}('old', views, 'new', views + 1), \
                 'published', {obj}('old', {published}, 'new', {truth}))"
            ),
        ),
        Op::DeleteMany => (
            "DELETE",
            format!(
                "{obj}('id', {obj}('old', id), 'title', {obj}('old', title), \
                 'body', {obj}('old', body), 'views', {obj}('old', views), \
                 'published', {obj}('old', {published}))"
            ),
        ),
    };
    format!(
        "INSERT INTO audit_log (action, table_name, object_pk, object_repr, changes, module, created_at) \
         SELECT '{action}', 'bulk_article', CAST(id AS {text}), title, {changes}, \
         'bench_bulk::article', {now} FROM bulk_article"
    )
}

/// Time of [`in_database_audit_sql`] over `n` seeded articles and an empty `audit_log`,
/// as the audited runs start, in a rolled-back transaction; checks it wrote `n` rows.
async fn in_database(db: &DatabaseConnection, op: Op, n: usize) -> Result<Duration> {
    seed(db, n).await?;
    audit_log::Entity::delete_many().exec(db).await?;
    let sql = in_database_audit_sql(db.get_database_backend(), op);
    let txn = db.begin().await?;
    let t = Instant::now();
    let res = txn.execute_unprepared(&sql).await?;
    let elapsed = t.elapsed();
    txn.rollback().await?;
    if res.rows_affected() != n as u64 {
        return Err(format!("in-database audit wrote {} rows", res.rows_affected()).into());
    }
    Ok(elapsed)
}

/// Adds `d` to the statement kind `kind` of the run being measured.
fn note(kind: &str, d: Duration) {
    let mut guard = STATEMENTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(map) = guard.as_mut() {
        let e = map.entry(kind.to_owned()).or_default();
        e.0 += 1;
        e.1 += d;
    }
}

/// Statement time recorded so far in the run being measured.
fn recorded() -> Duration {
    let guard = STATEMENTS.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .as_ref()
        .map_or(Duration::ZERO, |m| m.values().map(|(_, d)| *d).sum())
}

async fn run(db: &DatabaseConnection, audited: bool, op: Op, n: usize) -> Result<Sample> {
    seed(db, n).await?;
    audit_log::Entity::delete_many().exec(db).await?;
    *STATEMENTS.lock().unwrap_or_else(|e| e.into_inner()) = Some(BTreeMap::new());
    // SeaORM's metric callback does not see BEGIN and COMMIT: they are timed here, and
    // the audit rows an auditing transaction writes at commit are taken out of COMMIT.
    let t = Instant::now();
    let affected = if audited {
        let txn = AuditedConnection::new(db.clone()).begin().await?;
        note("BEGIN", t.elapsed());
        let n = statement(&txn, op).await?;
        let (c, before) = (Instant::now(), recorded());
        txn.commit().await?;
        note("COMMIT", c.elapsed().saturating_sub(recorded() - before));
        n
    } else {
        let txn = db.begin().await?;
        note("BEGIN", t.elapsed());
        let n = statement(&txn, op).await?;
        let c = Instant::now();
        txn.commit().await?;
        note("COMMIT", c.elapsed());
        n
    };
    let elapsed = t.elapsed();
    let statements = STATEMENTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_default();
    if affected != n as u64 {
        return Err(format!("affected {affected} rows, expected {n}").into());
    }
    let rows = audit_log::Entity::find().count(db).await?;
    let want = if audited { n as u64 } else { 0 };
    if rows != want {
        return Err(format!("{rows} audit rows, expected {want}").into());
    }
    if audited {
        let one = audit_log::Entity::find()
            .one(db)
            .await?
            .ok_or("no audit row")?;
        let changes = one.changes.unwrap_or_default();
        let ok = match op {
            Op::UpdateMany => {
                changes
                    == serde_json::json!({"views": {"old": 0, "new": 1}, "published": {"old": false, "new": true}})
            }
            Op::DeleteMany => {
                changes["title"]["old"].is_string()
                    && changes["views"] == serde_json::json!({"old": 0})
            }
        };
        if !ok {
            return Err(format!("unexpected diff {changes}").into());
        }
    }
    Ok(Sample {
        wall: elapsed,
        statements,
    })
}

/// The sample with the median wall time.
fn median(mut v: Vec<Sample>) -> Sample {
    v.sort_by_key(|s| s.wall);
    v.swap_remove(v.len() / 2)
}

/// "SELECT 1× 4.2, ..., outside statements 3.1" (ms) for one sample.
fn breakdown(s: &Sample) -> String {
    let mut parts: Vec<String> = s
        .statements
        .iter()
        .map(|(k, (n, d))| format!("{k} {n}× {:.1}", d.as_secs_f64() * 1e3))
        .collect();
    let in_statements: Duration = s.statements.values().map(|(_, d)| *d).sum();
    parts.push(format!(
        "outside statements {:.1}",
        s.wall.saturating_sub(in_statements).as_secs_f64() * 1e3
    ));
    parts.join(", ")
}

async fn open(
    backend: DbBackend,
) -> Result<(DatabaseConnection, Option<(DatabaseConnection, String)>)> {
    let name = format!("bench_bulk_{}", std::process::id());
    let connect = |url: String| async move {
        let mut o = ConnectOptions::new(url);
        o.sqlx_logging(false)
            .test_before_acquire(false)
            .max_connections(2);
        Database::connect(o).await
    };
    Ok(match backend {
        DbBackend::Sqlite => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            let _ = std::fs::remove_file(&path);
            let db = connect(format!("sqlite://{}?mode=rwc", path.display())).await?;
            db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
            (db, None)
        }
        DbBackend::Postgres => {
            let url = std::env::var("AUDIT_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            let admin = connect(url.clone()).await?;
            admin
                .execute_unprepared(&format!("CREATE SCHEMA \"{name}\""))
                .await?;
            let mut o = ConnectOptions::new(url);
            o.sqlx_logging(false)
                .test_before_acquire(false)
                .max_connections(2)
                .set_schema_search_path(name.clone());
            (
                Database::connect(o).await?,
                Some((admin, format!("DROP SCHEMA \"{name}\" CASCADE"))),
            )
        }
        _ => {
            let url = std::env::var("AUDIT_TEST_MYSQL_URL")
                .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
            let admin = connect(url.clone()).await?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
                .await?;
            (
                connect(with_database(&url, &name)).await?,
                Some((admin, format!("DROP DATABASE `{name}`"))),
            )
        }
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let search_indexes = !support::take_without_search_indexes(&mut args);
    let mut args = args.into_iter();
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let repeats: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    sea_orm_audit::register::<article::Entity>();
    println!(
        "| backend | statement | rows | plain median ms | audited median ms | audited/plain | audited, ms by statement | (plain + database-only audit rows)/plain |"
    );
    println!("|---|---|---:|---:|---:|---:|---|---:|");
    for backend in [DbBackend::Sqlite, DbBackend::Postgres, DbBackend::MySql] {
        let (mut db, cleanup) = open(backend).await?;
        db.set_metric_callback(on_statement);
        support::migrate(&db, search_indexes).await?;
        Schema::new(backend)
            .builder()
            .register(article::Entity)
            .apply(&db)
            .await?;
        for (label, op) in [
            ("update_many", Op::UpdateMany),
            ("delete_many", Op::DeleteMany),
        ] {
            let (mut plain, mut audited, mut alone) = (Vec::new(), Vec::new(), Vec::new());
            for rep in 0..repeats {
                alone.push(in_database(&db, op, n).await?);
                // Alternate which variant goes first, so drift hits both.
                for audited_first in [rep % 2 == 0, rep % 2 != 0] {
                    if audited_first {
                        audited.push(run(&db, true, op, n).await?);
                    } else {
                        plain.push(run(&db, false, op, n).await?);
                    }
                }
            }
            let (p, a) = (median(plain), median(audited));
            alone.sort();
            let alone = alone[alone.len() / 2];
            println!(
                "| {backend:?} | {label} | {n} | {:.1} | {:.1} | **{:.2}** | {} | {:.2} |",
                p.wall.as_secs_f64() * 1e3,
                a.wall.as_secs_f64() * 1e3,
                a.wall.as_secs_f64() / p.wall.as_secs_f64(),
                breakdown(&a),
                (p.wall + alone).as_secs_f64() / p.wall.as_secs_f64()
            );
        }
        if let Some((admin, drop)) = cleanup {
            db.close().await?;
            admin.execute_unprepared(&drop).await?;
        }
    }
    println!("\n{}", support::index_note(search_indexes));
    Ok(())
}
