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

use sea_orm::sea_query::Query;
use sea_orm::{
    ColumnTrait, ColumnType, Condition, DbBackend, DbErr, EntityTrait, FromQueryResult, IdenStatic,
    Iterable, PrimaryKeyToColumn, PrimaryKeyTrait, QueryFilter, QueryResult, QueryTrait, Statement,
    Value,
};

use crate::diff::{Image, TableInfo};
use crate::model::AuditedModel;

/// Keys per `IN (...)` list: far below every backend's bind-parameter limit.
const KEYS_PER_SELECT: usize = 5000;

pub(crate) trait TableAuditor: Send + Sync + 'static {
    fn info(&self) -> TableInfo;
    /// `SELECT <all columns> FROM <table>`, ready for a WHERE clause.
    fn select_prefix(&self, backend: DbBackend) -> String;
    /// The column list SeaORM itself uses in RETURNING.
    fn returning_list(&self, backend: DbBackend) -> String;
    fn images(&self, rows: &[QueryResult]) -> Result<Vec<Image>, DbErr>;
    fn key_columns(&self) -> Vec<&'static str>;
    /// Whether the key is one auto-incremented integer column.
    fn auto_increment_key(&self) -> bool;
    /// SELECTs of the rows with these keys (in chunks).
    fn select_by_keys(&self, backend: DbBackend, keys: &[Vec<Value>]) -> Vec<Statement>;
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

    fn select_prefix(&self, backend: DbBackend) -> String {
        E::find().build(backend).sql
    }

    fn returning_list(&self, backend: DbBackend) -> String {
        returning_list::<E>(backend)
    }

    fn images(&self, rows: &[QueryResult]) -> Result<Vec<Image>, DbErr> {
        rows.iter()
            .map(|row| Model::<E>::from_query_result(row, "").map(|m| Image::of(&m)))
            .collect()
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

    fn select_by_keys(&self, backend: DbBackend, keys: &[Vec<Value>]) -> Vec<Statement> {
        let cols: Vec<E::Column> = E::PrimaryKey::iter().map(|k| k.into_column()).collect();
        keys.chunks(KEYS_PER_SELECT)
            .map(|chunk| {
                let cond = if let [col] = cols.as_slice() {
                    Condition::all().add(col.is_in(chunk.iter().filter_map(|k| k.first().cloned())))
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
            .collect()
    }
}

/// The column list SeaORM itself puts in RETURNING for `E`.
pub(crate) fn returning_list<E: EntityTrait>(backend: DbBackend) -> String {
    let select = Query::select()
        .exprs(E::Column::iter().map(|c| c.select_as(c.into_returning_expr(backend))))
        .to_owned();
    let sql = backend.build(&select).sql;
    sql.strip_prefix("SELECT ").unwrap_or(&sql).to_owned()
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

/// The registered table names among `names`.
pub(crate) fn registered_among(names: &[String]) -> Option<String> {
    let r = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    names.iter().find(|n| r.contains_key(n.as_str())).cloned()
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
