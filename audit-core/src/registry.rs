//! The tables the auditing connection knows how to audit.
//!
//! The connection only sees SQL, so for each audited table it needs a type-erased
//! helper that knows the entity: how to select its rows, how to turn result rows into
//! [`Image`]s and how to find rows again by primary key. Entities are registered with
//! [`register`]; the derived hooks also register their entity the first time they run
//! through an auditing connection.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, LazyLock, RwLock};

use sea_orm::sea_query::{Alias, Query};
use sea_orm::{
    ColumnTrait, ColumnType, Condition, DbBackend, DbErr, EntityTrait, FromQueryResult, IdenStatic,
    Iterable, PrimaryKeyToColumn, PrimaryKeyTrait, QueryFilter, QueryResult, QuerySelect,
    QueryTrait, Statement, Value,
};

use crate::backend;
use crate::diff::{Image, TableInfo};
use crate::inline::{Shape, Write, quote};
use crate::memo::Memo;
use crate::model::AuditedModel;
use crate::sqlscan::Scan;

/// Keys per `IN (...)` list: far below every backend's bind-parameter limit.
const KEYS_PER_SELECT: usize = 5000;

pub(crate) trait TableAuditor: Send + Sync + 'static {
    fn info(&self) -> TableInfo;
    /// `SELECT <all columns> FROM <table>`, ready for a WHERE clause.
    fn select_prefix(&self, backend: DbBackend) -> Arc<String>;
    /// The column list SeaORM itself uses in RETURNING.
    fn returning_list(&self, backend: DbBackend) -> Arc<String>;
    /// The images in `rows`, whose columns are named `<prefix><column>`.
    fn images(&self, rows: &[QueryResult], prefix: &str) -> Result<Vec<Image>, DbErr>;
    /// PostgreSQL: `sql`, an UPDATE of this table, as one statement that also locks and
    /// returns each row's before-image; see [`update_returning_old_new`].
    fn update_returning_old_new(&self, sql: &str, scan: &Scan) -> String;
    /// What the one-statement path needs to know of this entity; see [`crate::inline`].
    fn shape(&self) -> Arc<Shape>;
    /// PostgreSQL: the write `sql` as the head of a one-statement audited write,
    /// `WITH ... "__audit_rows" AS (<the write> RETURNING ...)`, and the final SELECT's
    /// column list.
    fn one_statement(&self, sql: &str, scan: &Scan, write: Write, query: bool) -> (String, String);
    fn key_columns(&self) -> Vec<&'static str>;
    /// Whether the key is one auto-incremented integer column.
    fn auto_increment_key(&self) -> bool;
    /// SELECTs of the rows with these keys (in chunks).
    fn select_by_keys(&self, backend: DbBackend, keys: &[Vec<Value>]) -> Vec<Statement>;
    /// The statement of SeaORM's `find_by_id(key).one(db)`.
    fn find_one_by_key(&self, backend: DbBackend, key: &[Value]) -> Statement;
    /// Whether `stmt` is SeaORM's DELETE of one row by primary key
    /// (`ActiveModel::delete`, `delete_by_id`), which deletes at most one row.
    fn is_delete_by_key(&self, stmt: &Statement, scan: &Scan) -> bool;
    /// A DELETE of this table that deletes nothing (`WHERE 1 = 0`), for an
    /// `ExecResult` of zero rows.
    fn delete_nothing(&self, backend: DbBackend) -> Statement;
}

struct EntityAuditor<E>(PhantomData<fn() -> E>);

type Model<E> = <E as EntityTrait>::Model;

impl<E> TableAuditor for EntityAuditor<E>
where
    E: EntityTrait,
    Model<E>: AuditedModel,
{
    fn info(&self) -> TableInfo {
        TableInfo::of::<Model<E>>()
    }

    fn select_prefix(&self, backend: DbBackend) -> Arc<String> {
        cached::<E>("select_prefix", backend::name(backend), || {
            E::find().build(backend).sql
        })
    }

    fn returning_list(&self, backend: DbBackend) -> Arc<String> {
        returning_list::<E>(backend)
    }

    fn images(&self, rows: &[QueryResult], prefix: &str) -> Result<Vec<Image>, DbErr> {
        rows.iter()
            .map(|row| Model::<E>::from_query_result(row, prefix).map(|m| Image::of(&m)))
            .collect()
    }

    fn update_returning_old_new(&self, sql: &str, scan: &Scan) -> String {
        update_returning_old_new::<E>(sql, scan)
    }

    fn shape(&self) -> Arc<Shape> {
        crate::inline::shape::<E>()
    }

    fn one_statement(&self, sql: &str, scan: &Scan, write: Write, query: bool) -> (String, String) {
        let rows = crate::inline::ROWS;
        let head = if write == Write::Update {
            let parts = update_parts::<E>(sql, scan);
            format!("WITH {}, {rows} AS ({})", parts.0, parts.1)
        } else {
            let end = scan.returning_at.unwrap_or(sql.len());
            format!(
                "WITH {rows} AS ({} RETURNING {})",
                sql[..end].trim_end(),
                returning_list::<E>(DbBackend::Postgres)
            )
        };
        (head, crate::inline::final_list::<E>(query))
    }

    fn key_columns(&self) -> Vec<&'static str> {
        E::PrimaryKey::iter()
            .map(|k| k.into_column().as_str())
            .collect()
    }

    fn auto_increment_key(&self) -> bool {
        let mut keys = E::PrimaryKey::iter();
        let (Some(key), None) = (keys.next(), keys.next()) else {
            return false;
        };
        E::PrimaryKey::auto_increment()
            && matches!(
                key.into_column().def().get_column_type(),
                ColumnType::Integer
                    | ColumnType::BigInteger
                    | ColumnType::SmallInteger
                    | ColumnType::TinyInteger
                    | ColumnType::Unsigned
                    | ColumnType::BigUnsigned
                    | ColumnType::SmallUnsigned
                    | ColumnType::TinyUnsigned
            )
    }

    fn find_one_by_key(&self, backend: DbBackend, key: &[Value]) -> Statement {
        templated::<E>("find_one_by_key", backend, 1, key.to_vec(), || {
            let select = E::PrimaryKey::iter().zip(key).fold(E::find(), |s, (k, v)| {
                s.filter(k.into_column().eq(v.clone()))
            });
            QuerySelect::limit(select, 1).build(backend)
        })
    }

    fn is_delete_by_key(&self, stmt: &Statement, scan: &Scan) -> bool {
        let values = stmt.values.as_ref().map_or(&[][..], |v| v.0.as_slice());
        let keys: Vec<E::Column> = E::PrimaryKey::iter().map(|k| k.into_column()).collect();
        if values.len() != keys.len() || scan.returning_at.is_some() {
            return false;
        }
        // The text does not depend on the values (they are bound), so it is built once.
        let by_key = cached::<E>("delete_by_key", backend::name(stmt.db_backend), || {
            keys.iter()
                .zip(values)
                .fold(E::delete_many(), |d, (k, v)| d.filter(k.eq(v.clone())))
                .build(stmt.db_backend)
                .sql
        });
        *by_key == stmt.sql
    }

    fn delete_nothing(&self, backend: DbBackend) -> Statement {
        E::delete_many()
            .filter(sea_orm::sea_query::ExprTrait::eq(
                sea_orm::sea_query::Expr::val(1),
                0,
            ))
            .build(backend)
    }

    fn select_by_keys(&self, backend: DbBackend, keys: &[Vec<Value>]) -> Vec<Statement> {
        let cols: Vec<E::Column> = E::PrimaryKey::iter().map(|k| k.into_column()).collect();
        keys.chunks(KEYS_PER_SELECT)
            .map(|chunk| {
                let values: Vec<Value> = chunk.iter().flatten().cloned().collect();
                templated::<E>("select_by_keys", backend, chunk.len(), values, || {
                    let cond = if let [col] = cols.as_slice() {
                        Condition::all()
                            .add(col.is_in(chunk.iter().filter_map(|k| k.first().cloned())))
                    } else {
                        chunk.iter().fold(Condition::any(), |any, key| {
                            any.add(
                                cols.iter()
                                    .zip(key)
                                    .fold(Condition::all(), |all, (c, v)| all.add(c.eq(v.clone()))),
                            )
                        })
                    };
                    E::find().filter(cond).build(backend)
                })
            })
            .collect()
    }
}

/// The column list SeaORM itself puts in RETURNING for `E`, built once per backend.
pub(crate) fn returning_list<E: EntityTrait>(backend: DbBackend) -> Arc<String> {
    cached::<E>("returning_list", backend::name(backend), || {
        let select = Query::select()
            .exprs(E::Column::iter().map(|c| c.select_as(c.into_returning_expr(backend))))
            .to_owned();
        let sql = backend.build(&select).sql;
        sql.strip_prefix("SELECT ").unwrap_or(&sql).to_owned()
    })
}

/// Prefix of the before-image columns in [`update_returning_old_new`]'s result.
pub(crate) const OLD: &str = "__audit_old_";
/// Prefix of the raw key columns the UPDATE joins the before-images on.
const KEY: &str = "__audit_key_";
/// Name of the CTE holding the before-images.
const CTE: &str = "__audit_old";

/// PostgreSQL: `sql`, an UPDATE of `E` with a top-level WHERE as SeaORM builds it,
/// rewritten as one statement that locks the rows it will change, changes them and
/// returns each row's before-image (columns prefixed [`OLD`]) beside its after-image:
///
/// ```text
/// WITH "__audit_old" AS (SELECT <columns AS __audit_old_*>, <keys AS __audit_key_*>
///                        FROM t WHERE <the statement's WHERE> FOR UPDATE)
/// UPDATE t SET <the statement's SET> FROM "__audit_old" WHERE <keys match>
/// RETURNING "__audit_old".__audit_old_*, <columns as SeaORM returns them>
/// ```
///
/// The WHERE is evaluated once, under the row locks, so the before-images are exactly
/// the rows updated, even under concurrent writers. The statement's text and
/// parameters are kept as they are, so its placeholders keep their numbers. The
/// before-image columns all carry a prefix, so a SET expression that reads a column
/// (`views = views + 1`) still names the updated row. A RETURNING of the statement's
/// own is replaced by the full column lists.
pub(crate) fn update_returning_old_new<E: EntityTrait>(sql: &str, scan: &Scan) -> String {
    let parts = update_parts::<E>(sql, scan);
    format!("WITH {} {}", parts.0, parts.1)
}

/// [`build_update_returning_old_new`], cached.
fn update_parts<E: EntityTrait>(sql: &str, scan: &Scan) -> Arc<(String, String)> {
    // The same UPDATE text (the same set of columns) always gives the same statement,
    // and every audited single-row update asks: build each one once.
    type Parts = Arc<(String, String)>;
    static MEMO: LazyLock<Memo<&'static str, String, Parts>> = LazyLock::new(|| Memo::new(1024));
    let entity = std::any::type_name::<E>();
    if let Some(hit) = MEMO.get(&entity, sql) {
        return hit;
    }
    let built = Arc::new(build_update_returning_old_new::<E>(sql, scan));
    MEMO.insert(entity, sql.to_owned(), Arc::clone(&built));
    built
}

/// The two parts of [`update_returning_old_new`]: the CTE that locks and reads the
/// before-images (`"__audit_old" AS (...)`) and the UPDATE that joins it.
fn build_update_returning_old_new<E: EntityTrait>(sql: &str, scan: &Scan) -> (String, String) {
    let end = scan.returning_at.unwrap_or(sql.len());
    let (head, clause) = match scan.where_at {
        Some(at) if at < end => (&sql[..at], sql[at..end].trim_end()),
        _ => (&sql[..end], ""),
    };
    let head = head.trim_end();
    let keys: Vec<E::Column> = E::PrimaryKey::iter().map(|k| k.into_column()).collect();
    let mut select = Query::select();
    for c in E::Column::iter() {
        select.expr_as(
            c.select_as(c.into_expr()),
            Alias::new(format!("{OLD}{}", c.as_str())),
        );
    }
    for k in &keys {
        select.expr_as(k.into_expr(), Alias::new(format!("{KEY}{}", k.as_str())));
    }
    select.from(E::default().table_ref());
    let select = DbBackend::Postgres.build(&select).sql;
    let table = quote(E::default().table_name());
    let join: Vec<String> = keys
        .iter()
        .map(|k| {
            format!(
                "{table}.{} = {}.{}",
                quote(k.as_str()),
                quote(CTE),
                quote(&format!("{KEY}{}", k.as_str()))
            )
        })
        .collect();
    let old: Vec<String> = E::Column::iter()
        .map(|c| format!("{}.{}", quote(CTE), quote(&format!("{OLD}{}", c.as_str()))))
        .collect();
    let locked = format!("{cte} AS ({select} {clause} FOR UPDATE)", cte = quote(CTE));
    let update = format!(
        "{head} FROM {cte} WHERE {} RETURNING {}, {}",
        join.join(" AND "),
        old.join(", "),
        returning_list::<E>(DbBackend::Postgres),
        cte = quote(CTE),
    );
    (locked, update)
}

/// `build()`, kept per entity `E`, `kind` and statement text `sql`: SQL derived from a
/// statement SeaORM built is the same for the same statement text (the same set of
/// columns), so each is built once. Bounded: past 1024 texts per entity and kind, that
/// cache starts over.
pub(crate) fn cached<E: EntityTrait>(
    kind: &'static str,
    sql: &str,
    build: impl FnOnce() -> String,
) -> Arc<String> {
    static MEMO: LazyLock<Memo<(&'static str, &'static str), String, Arc<String>>> =
        LazyLock::new(|| Memo::new(1024));
    let group = (std::any::type_name::<E>(), kind);
    if let Some(hit) = MEMO.get(&group, sql) {
        return hit;
    }
    let built = Arc::new(build());
    MEMO.insert(group, sql.to_owned(), Arc::clone(&built));
    built
}

/// A statement's text and the parameters bound after the caller's values (LIMIT's).
struct Template {
    sql: String,
    tail: Vec<Value>,
}

/// A statement of `E` whose text depends only on `kind`, the backend and `shape` (a
/// count of keys), with `values` bound first: `build()` makes it once, and later calls
/// bind their own values to the same text. The text is kept only if `build()` bound
/// exactly `values` first, so a value can never land on another's placeholder. Bounded
/// like [`cached`] (see [`Memo`]).
fn templated<E: EntityTrait>(
    kind: &'static str,
    backend: DbBackend,
    shape: usize,
    values: Vec<Value>,
    build: impl FnOnce() -> Statement,
) -> Statement {
    type Group = (&'static str, &'static str);
    static MEMO: LazyLock<Memo<Group, (&'static str, usize), Arc<Template>>> =
        LazyLock::new(|| Memo::new(1024));
    let group = (std::any::type_name::<E>(), kind);
    let at = (backend::name(backend), shape);
    if let Some(t) = MEMO.get(&group, &at) {
        let mut bound = values;
        bound.extend(t.tail.iter().cloned());
        return Statement::from_sql_and_values(backend, t.sql.as_str(), bound);
    }
    let stmt = build();
    let bound = stmt.values.as_ref().map_or(&[][..], |v| v.0.as_slice());
    if let Some(tail) = bound.strip_prefix(values.as_slice()) {
        let template = Template {
            sql: stmt.sql.clone(),
            tail: tail.to_vec(),
        };
        MEMO.insert(group, at, Arc::new(template));
    }
    stmt
}

/// The [`TableAuditor`] of `E`, without registering it.
pub(crate) fn auditor_of<E>() -> impl TableAuditor
where
    E: EntityTrait,
    Model<E>: AuditedModel,
{
    EntityAuditor::<E>(PhantomData)
}

type Registry = HashMap<String, Arc<dyn TableAuditor>>;

static REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(|| RwLock::new(HashMap::new()));

/// Registers an audited entity with the auditing connection, so that its bulk writes
/// (`insert_many`, `update_many`, `delete_many`, ...) are audited row by row.
///
/// Registration is process-wide and idempotent. The derived hooks also register their
/// entity the first time they run through an auditing connection, but a bulk write can
/// come first: register every audited entity at start-up.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::post;
/// sea_orm_audit::register::<post::Entity>();
/// assert!(sea_orm_audit::is_registered("post"));
/// ```
pub fn register<E>()
where
    E: EntityTrait,
    Model<E>: AuditedModel,
{
    let table = E::default().table_name();
    let known = REGISTRY
        .read()
        .map(|r| r.contains_key(table))
        .unwrap_or(false);
    if !known {
        let mut w = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
        w.entry(table.to_owned())
            .or_insert_with(|| Arc::new(EntityAuditor::<E>(PhantomData)));
    }
}

/// Whether a table has a registered audited entity.
pub fn is_registered(table: &str) -> bool {
    lookup(table).is_some()
}

pub(crate) fn lookup(table: &str) -> Option<Arc<dyn TableAuditor>> {
    let r = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    r.get(table).cloned()
}

/// The registered table that `name`, a name found in raw SQL, may refer to: the same
/// name, or one differing only in ASCII case (SQLite's names are case-insensitive,
/// MySQL's are on some systems, and PostgreSQL folds unquoted ones; a quoted
/// PostgreSQL name of another case is taken to mean it too, which at worst refuses a
/// statement that could have run).
pub(crate) fn registered_name(name: &str) -> Option<String> {
    let r = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    if r.contains_key(name) {
        return Some(name.to_owned());
    }
    r.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// The key values of an image, in key-column order.
pub(crate) fn key_of(image: &Image, key_columns: &[&'static str]) -> Vec<Value> {
    key_columns
        .iter()
        .filter_map(|k| {
            image
                .values
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use sea_orm::{DbBackend, EntityTrait, QueryFilter, QuerySelect, QueryTrait, Value};

    use super::{TableAuditor, auditor_of};
    use crate::doc_fixtures::post;

    /// Each call's statement is the one SeaORM would build for its own key, whether it
    /// was built or taken from the kept text.
    #[test]
    fn kept_statements_bind_each_calls_values() {
        let auditor = auditor_of::<post::Entity>();
        for backend in [DbBackend::Sqlite, DbBackend::Postgres, DbBackend::MySql] {
            for id in [7_i64, 8, 9] {
                let expected = post::Entity::find_by_id(id).limit(1).build(backend);
                let got = auditor.find_one_by_key(backend, &[Value::from(id)]);
                assert_eq!((got.sql, got.values), (expected.sql, expected.values));
            }
            for ids in [vec![1_i64, 2, 3], vec![4, 5, 6], vec![10]] {
                let keys: Vec<Vec<Value>> = ids.iter().map(|&i| vec![Value::from(i)]).collect();
                let expected = post::Entity::find()
                    .filter(sea_orm::ColumnTrait::is_in(&post::Column::Id, ids.clone()))
                    .build(backend);
                let got = auditor.select_by_keys(backend, &keys);
                assert_eq!(got.len(), 1);
                assert_eq!(
                    (got[0].sql.clone(), got[0].values.clone()),
                    (expected.sql, expected.values)
                );
            }
        }
    }
}
