//! The runtime behind the `ActiveModelBehavior` impl that `#[derive(Audited)]` writes.
//!
//! SeaORM's hooks carry no old values and `update_without_returning` never runs
//! `after_save`, so the hooks do not rely on a before → after hand-over:
//!
//! - **insert**: `after_save` receives the inserted row (with database defaults, from
//!   RETURNING or SeaORM's read-back) and writes the CREATE row.
//! - **update**: `before_save` reads the row by primary key (`FOR UPDATE` on
//!   PostgreSQL and MariaDB), runs the UPDATE itself, diffs the two images and writes
//!   the UPDATE row, then hands SeaORM an unchanged model so its own UPDATE becomes a
//!   no-op read. The audit row is therefore only ever written after a successful
//!   UPDATE, on every path including `update_without_returning`, and nothing is kept
//!   in memory between hooks. On PostgreSQL the UPDATE and its row are one statement
//!   ([`crate::inline`]) where SQL can build the row; on SQLite the read, the
//!   UPDATE and the read of the row as stored are one call. MySQL and MariaDB have no
//!   UPDATE ... RETURNING: there the audit row is an `INSERT ... SELECT` from the
//!   updated row that writes only if the stored row equals the after-image predicted
//!   from the values set, and the row is read back only when it does not (see
//!   [`record_if_as_predicted`]).
//! - **delete**: `before_delete` reads and locks the row and returns it as the
//!   active model, so `after_delete` receives the full before-image and writes the
//!   DELETE row only after the DELETE succeeded. A row that was not found comes back
//!   with only its key set, which tells `after_delete` there is nothing to record. On
//!   PostgreSQL inside a transaction, the locked read and the DELETE row are one
//!   statement before the DELETE: a failed DELETE aborts the transaction, so the row
//!   cannot outlive it. The before-image then comes back with `Set` values, which tells
//!   `after_delete` the row is written.

use std::sync::Arc;

use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityName,
    EntityTrait, FromQueryResult, IdenStatic, IntoActiveModel, Iterable, ModelTrait,
    PrimaryKeyToColumn, QueryFilter, QuerySelect, QueryTrait, Statement, TryIntoModel,
};

use crate::config::{self, AuditConfig};
use crate::context::{self, RequestContext};
use crate::diff::{self, Image, TableInfo};
use crate::error::AuditError;
use crate::inline::{self, Write};
use crate::model::{AuditBehavior, AuditedModel};
use crate::registry;
use crate::sqlscan;
use crate::wrapper::is_wrapper;
use crate::writer::{self, AuditEntry};

type Entity<A> = <A as ActiveModelTrait>::Entity;
type Model<A> = <Entity<A> as EntityTrait>::Model;
type Column<A> = <Entity<A> as EntityTrait>::Column;

/// Action words written by the hooks.
pub(crate) const CREATE: &str = "CREATE";
pub(crate) const UPDATE: &str = "UPDATE";
pub(crate) const DELETE: &str = "DELETE";

/// What one audited write needs to know, computed once per hook call.
pub(crate) struct Plan {
    pub(crate) cfg: Arc<AuditConfig>,
    pub(crate) table: &'static str,
}

/// `None` when this write must not be audited: a guard or `without_audit` is in
/// scope, auditing is disabled, or the table or action is skipped. Reads only
/// task-local and in-memory state, so an unaudited write costs no query.
pub(crate) fn plan<M: ModelTrait>(action: &str) -> Option<Plan> {
    if context::is_suppressed() {
        return None;
    }
    let cfg = config::current();
    let table = diff::table_name::<M>();
    if !cfg.is_enabled() || cfg.is_table_skipped(table) || cfg.is_action_skipped(action) {
        return None;
    }
    Some(Plan { cfg, table })
}

/// Whether `C` is a transaction. SeaORM's `ConnectionTrait` cannot say, and `C` is not
/// `'static` (no `Any`), so the type's name is the only witness; the integration
/// tests pin the names of SeaORM's own connection and transaction types.
pub fn is_transaction<C: ?Sized>() -> bool {
    let name = std::any::type_name::<C>();
    name.contains("DatabaseTransaction")
        || name.contains("RestrictedTransaction")
        || name.contains("AuditedTransaction")
}

fn check_strict<C: ?Sized>(plan: &Plan, action: &'static str) -> Result<(), DbErr> {
    if plan.cfg.is_strict() && !is_transaction::<C>() {
        return Err(AuditError::NotInTransaction {
            action,
            table: plan.table.to_owned(),
        }
        .into());
    }
    Ok(())
}

async fn write<C: ConnectionTrait>(db: &C, entries: &[AuditEntry]) -> Result<(), DbErr> {
    let ctx = RequestContext::current();
    writer::write_entries(db, entries, ctx.as_deref())
        .await
        .map_err(DbErr::from)
}

/// The primary-key values of `am`, in key order; `None` if a key column is not set.
fn key_values<A: ActiveModelTrait>(am: &A) -> Option<Vec<sea_orm::Value>> {
    <Entity<A> as EntityTrait>::PrimaryKey::iter()
        .map(|key| match am.get(key.into_column()) {
            ActiveValue::Set(v) | ActiveValue::Unchanged(v) => Some(v),
            ActiveValue::NotSet => None,
        })
        .collect()
}

/// The SELECT of the row with primary key `key` (from [`key_values`]), which binds the
/// key values in key order.
fn find_by_key<A: ActiveModelTrait>(key: Vec<sea_orm::Value>) -> sea_orm::Select<Entity<A>> {
    <Entity<A> as EntityTrait>::PrimaryKey::iter()
        .zip(key)
        .fold(Entity::<A>::find(), |select, (k, v)| {
            select.filter(k.into_column().eq(v))
        })
}

fn is_key<A: ActiveModelTrait>(col: Column<A>) -> bool {
    <Entity<A> as EntityTrait>::PrimaryKey::from_column(col).is_some()
}

/// Runs the user's `before_save`, then audits an update (see the module docs).
pub async fn before_save<A, C>(am: A, db: &C, insert: bool) -> Result<A, DbErr>
where
    A: ActiveModelTrait + AuditBehavior + Send,
    Model<A>: AuditedModel + IntoActiveModel<A>,
    C: ConnectionTrait,
{
    let am = <A as AuditBehavior>::before_save(am, db, insert).await?;
    if is_wrapper::<C>() {
        registry::register::<Entity<A>>();
        return Ok(am);
    }
    let action = if insert { CREATE } else { UPDATE };
    let Some(plan) = plan::<Model<A>>(action) else {
        return Ok(am);
    };
    check_strict::<C>(&plan, action)?;
    if insert {
        return Ok(am);
    }
    audited_update(am, db, plan).await
}

async fn audited_update<A, C>(am: A, db: &C, plan: Plan) -> Result<A, DbErr>
where
    A: ActiveModelTrait + Send,
    Model<A>: AuditedModel + IntoActiveModel<A>,
    C: ConnectionTrait,
{
    let Some(key) = key_values(&am) else {
        return Ok(am);
    };
    let writes = Column::<A>::iter().any(|c| !is_key::<A>(c) && am.get(c).is_set());
    if !writes && !plan.cfg.records_noop_updates() {
        return Ok(am);
    }
    if writes && db.get_database_backend() == DbBackend::Postgres {
        // The UPDATE and its audit row in one statement, where SQL can build the row.
        if let Some(done) = update_in_one_statement(&am, db, &plan).await? {
            // SeaORM's own UPDATE of an unchanged model is a read-back of the row.
            return done
                .map(IntoActiveModel::into_active_model)
                .ok_or(DbErr::RecordNotUpdated);
        }
        let Some((old, new)) = update_returning_both(&am, db).await? else {
            return Err(DbErr::RecordNotUpdated);
        };
        return record_update(db, plan, old, new).await;
    }
    if writes && db.get_database_backend() == DbBackend::Sqlite && db.support_returning() {
        // The before-image, the UPDATE and the after-image in one call.
        let Some((old, new)) = sqlite_update_both(&am, key, db).await? else {
            return Err(DbErr::RecordNotUpdated);
        };
        return record_update(db, plan, old, new).await;
    }
    let select = find_by_key::<A>(key);
    let Some(old) = select.clone().lock_exclusive().one(db).await? else {
        // Nothing to update: SeaORM's own UPDATE of a single row would report
        // `RecordNotUpdated` (and leaves an update that sets nothing alone). The hook
        // answers so itself rather than let that UPDATE run: a row committed with this
        // key in between would be changed without a before-image or an audit row.
        return if writes {
            Err(DbErr::RecordNotUpdated)
        } else {
            Ok(am)
        };
    };
    let new = if !writes {
        old.clone()
    } else if db.support_returning() {
        Entity::<A>::update(am.clone()).exec(db).await?
    } else {
        // Without RETURNING, read the row back rather than assume the values sent are
        // the values stored: MySQL may round, truncate or convert them on the way in.
        Entity::<A>::update(am.clone())
            .exec_without_returning(db)
            .await?;
        if db.get_database_backend() == DbBackend::MySql
            && let Some(new) = record_if_as_predicted(&am, &old, db, &plan).await?
        {
            return Ok(new.into_active_model());
        }
        select.one(db).await?.ok_or(DbErr::RecordNotUpdated)?
    };
    record_update(db, plan, old, new).await
}

/// Whether a value set by an update is stored exactly as sent when MySQL or MariaDB
/// compare it equal to what was sent, so that a row compared equal reads back as this
/// very value. Floats, decimals, date-times with a fixed or local offset (UTC ones are
/// predicted), sub-microsecond times and other types are not: they are read back instead.
fn stored_as_sent(v: &sea_orm::Value) -> bool {
    use chrono::Timelike;
    use sea_orm::Value as V;
    let micro = |t: &chrono::NaiveTime| t.nanosecond().is_multiple_of(1000);
    match v {
        V::Bool(_)
        | V::TinyInt(_)
        | V::SmallInt(_)
        | V::Int(_)
        | V::BigInt(_)
        | V::TinyUnsigned(_)
        | V::SmallUnsigned(_)
        | V::Unsigned(_)
        | V::BigUnsigned(_)
        | V::String(_)
        | V::Char(_)
        | V::Bytes(_)
        | V::Json(_)
        | V::ChronoDate(_) => true,
        V::ChronoTime(t) => t.as_ref().is_none_or(micro),
        V::ChronoDateTime(t) => t.as_ref().is_none_or(|t| micro(&t.time())),
        V::ChronoDateTimeUtc(t) => t.as_ref().is_none_or(|t| micro(&t.time())),
        _ => false,
    }
}

/// MySQL/MariaDB, which have no UPDATE ... RETURNING: after the UPDATE, writes its
/// audit row without reading the row back, when that is provably the same.
///
/// The after-image is predicted from the locked before-image and the values set. The
/// audit INSERT selects from the updated row itself, under a WHERE that compares every
/// column with the prediction (text and JSON byte for byte, so neither a collation nor
/// trailing spaces can call different values equal), so the row is written only if
/// the stored row is the predicted one. Anything the database did of its own (a
/// trigger, `ON UPDATE CURRENT_TIMESTAMP`, rounding, truncation) makes the INSERT
/// write nothing, and the caller reads the row back and records what is stored.
/// `Some(after-image)` when the row was written this way; `None` to read back.
async fn record_if_as_predicted<A, C>(
    am: &A,
    old: &Model<A>,
    db: &C,
    plan: &Plan,
) -> Result<Option<Model<A>>, DbErr>
where
    A: ActiveModelTrait + Send,
    Model<A>: AuditedModel,
    C: ConnectionTrait,
{
    let mut new = old.clone();
    for col in Column::<A>::iter() {
        if let ActiveValue::Set(v) = am.get(col)
            && (!stored_as_sent(&v) || new.try_set(col, v).is_err())
        {
            return Ok(None);
        }
    }
    let info = TableInfo::of::<Model<A>>();
    // No change to record (a no-op update recorded by configuration): read back, so
    // that a change the database made is not missed.
    let Some(entry) = info.update_entry(&Image::of(old), &Image::of(&new), &plan.cfg) else {
        return Ok(None);
    };
    let values: Vec<sea_orm::Value> = Column::<A>::iter().map(|c| new.get(c)).collect();
    let from_where = registry::cached::<Entity<A>>("as_predicted", &mysql_kinds(&values), || {
        as_predicted_sql::<A>(&values)
    });
    let ctx = RequestContext::current();
    let written = writer::write_entry_if(db, &entry, ctx.as_deref(), &from_where, values)
        .await
        .map_err(DbErr::from)?;
    Ok(written.then_some(new))
}

/// Whether each value is NULL (`n`), compared as bytes (`b`) or as itself (`v`); the
/// text of [`as_predicted_sql`] depends on nothing else.
fn mysql_kinds(values: &[sea_orm::Value]) -> String {
    values
        .iter()
        .map(|v| {
            if !v.is_some() {
                'n'
            } else if as_bytes(v) {
                'b'
            } else {
                'v'
            }
        })
        .collect()
}

fn as_bytes(v: &sea_orm::Value) -> bool {
    matches!(
        v,
        sea_orm::Value::String(_) | sea_orm::Value::Char(_) | sea_orm::Value::Json(_)
    )
}

/// `FROM <table> WHERE <key> = ? AND <column> = ? AND ...`, one parameter per column
/// in column order; text and JSON compared as bytes. A value predicted NULL is compared
/// with `<=>`; any other with `=`, so that a value the server turned into NULL on the
/// way in (MariaDB binds a `DateTime<Utc>` as a TIMESTAMP, and one past 2038 arrives
/// as NULL) fails the comparison and is read back, not recorded as sent.
fn as_predicted_sql<A: ActiveModelTrait>(values: &[sea_orm::Value]) -> String {
    let q = |name: &str| inline::quote_in(DbBackend::MySql, name);
    let entity = Entity::<A>::default();
    let table = match entity.schema_name() {
        Some(schema) => format!("{}.{}", q(schema), q(entity.table_name())),
        None => q(entity.table_name()),
    };
    let conds: Vec<String> = Column::<A>::iter()
        .zip(values)
        .map(|(c, v)| {
            let col = q(c.as_str());
            if is_key::<A>(c) {
                format!("{col} = ?")
            } else if !v.is_some() {
                format!("{col} <=> ?")
            } else if as_bytes(v) {
                format!("CAST({col} AS BINARY) = CAST(? AS BINARY)")
            } else {
                format!("{col} = ?")
            }
        })
        .collect();
    format!("FROM {table} WHERE {}", conds.join(" AND "))
}

async fn record_update<A, C>(db: &C, plan: Plan, old: Model<A>, new: Model<A>) -> Result<A, DbErr>
where
    A: ActiveModelTrait + Send,
    Model<A>: AuditedModel + IntoActiveModel<A>,
    C: ConnectionTrait,
{
    let info = TableInfo::of::<Model<A>>();
    if let Some(entry) = info.update_entry(&Image::of(&old), &Image::of(&new), &plan.cfg) {
        write(db, &[entry]).await?;
    }
    // SeaORM's own UPDATE of an unchanged model is a read-back of the row.
    Ok(new.into_active_model())
}

/// SeaORM's single-row UPDATE of `am`, scanned; an error for any other shape, which is
/// refused rather than written without its audit row.
fn single_row_update<A: ActiveModelTrait>(
    am: &A,
    backend: DbBackend,
) -> Result<(Statement, Arc<crate::sqlscan::Scan>), DbErr> {
    let update = Entity::<A>::update(am.clone()).validate()?.build(backend);
    let scan = sqlscan::scan_cached(&update.sql, backend);
    if scan.where_at.is_none() {
        return Err(DbErr::Custom(format!(
            "{}unexpected statement shape",
            crate::error::ERROR_PREFIX
        )));
    }
    Ok((update, scan))
}

/// PostgreSQL: the single-row update of `am` and its audit row as one statement (see
/// [`crate::inline`]). `None` when SQL cannot build this table's row, `Some(None)` when
/// no row matched, else the row as updated.
async fn update_in_one_statement<A, C>(
    am: &A,
    db: &C,
    plan: &Plan,
) -> Result<Option<Option<Model<A>>>, DbErr>
where
    A: ActiveModelTrait + Send,
    Model<A>: AuditedModel + IntoActiveModel<A>,
    C: ConnectionTrait,
{
    let (update, scan) = single_row_update(am, DbBackend::Postgres)?;
    let auditor = registry::auditor_of::<Entity<A>>();
    let Some(stmt) = inline::statement(&auditor, &update, &scan, Write::Update, true, &plan.cfg)
    else {
        return Ok(None);
    };
    let row = db.query_one_raw(stmt).await.map_err(inline::map_err)?;
    row.map(|r| Model::<A>::from_query_result(&r, ""))
        .transpose()
        .map(Some)
}

/// PostgreSQL: the before-image (locked) and the after-image of a single-row update in
/// one round trip (see [`registry::update_returning_old_new`]). `None` when no row
/// matched.
async fn update_returning_both<A, C>(am: &A, db: &C) -> Result<Option<(Model<A>, Model<A>)>, DbErr>
where
    A: ActiveModelTrait + Send,
    Model<A>: AuditedModel + IntoActiveModel<A>,
    C: ConnectionTrait,
{
    let backend = db.get_database_backend();
    let (update, scan) = single_row_update(am, backend)?;
    let sql = registry::update_returning_old_new::<Entity<A>>(&update.sql, &scan);
    let stmt = Statement {
        sql,
        values: update.values,
        db_backend: backend,
    };
    let Some(row) = db.query_one_raw(stmt).await? else {
        return Ok(None);
    };
    let old = Model::<A>::from_query_result(&row, registry::OLD)?;
    let new = Model::<A>::from_query_result(&row, "")?;
    Ok(Some((old, new)))
}

/// SQLite: the before-image (the row with primary key `key`), the single-row UPDATE of
/// `am` and the after-image, as three statements sent in one call: one hand-off to the
/// driver's worker thread instead of three. Each row is tagged with the statement it
/// came from. Inside a transaction the UPDATE runs on the SELECT's snapshot (a writer
/// that commits in between makes SQLite refuse the UPDATE), so the before-image is the
/// row updated. The after-image is read after the UPDATE rather than taken from its
/// RETURNING, which does not see what an AFTER UPDATE trigger then wrote to the row
/// (SQLite's usual way to keep an `updated_at`). `None` when no row matched.
async fn sqlite_update_both<A, C>(
    am: &A,
    key: Vec<sea_orm::Value>,
    db: &C,
) -> Result<Option<(Model<A>, Model<A>)>, DbErr>
where
    A: ActiveModelTrait + Send,
    Model<A>: AuditedModel + IntoActiveModel<A>,
    C: ConnectionTrait,
{
    const SIDE: &str = crate::wrapper::SIDE;
    let (update, scan) = single_row_update(am, DbBackend::Sqlite)?;
    // The same UPDATE text (the same set of columns) always gives the same call text,
    // and the SELECT by key binds the key values, in key order.
    let sql = registry::cached::<Entity<A>>("sqlite_update_both", &update.sql, || {
        let select = find_by_key::<A>(key.clone()).build(DbBackend::Sqlite).sql;
        let head = scan
            .returning_at
            .map_or(update.sql.as_str(), |at| &update.sql[..at]);
        // SQLite's placeholders are `?`, bound in order: the key, the UPDATE's values,
        // the key again.
        format!(
            "{}; {}; {}",
            select.replacen("SELECT ", &format!("SELECT 0 AS \"{SIDE}\", "), 1),
            head.trim_end(),
            select.replacen("SELECT ", &format!("SELECT 1 AS \"{SIDE}\", "), 1),
        )
    });
    let mut values = key.clone();
    values.extend(update.values.map(|v| v.0).unwrap_or_default());
    values.extend(key);
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql.as_str(),
            values,
        ))
        .await?;
    let (mut old, mut new) = (None, None);
    for row in &rows {
        let model = Model::<A>::from_query_result(row, "")?;
        if row.try_get::<i32>("", SIDE)? == 1 {
            new = Some(model);
        } else {
            old = Some(model);
        }
    }
    match (old, new) {
        (Some(old), Some(new)) => Ok(Some((old, new))),
        // Nothing to update: the caller answers `RecordNotUpdated`.
        (None, None) => Ok(None),
        _ => Err(DbErr::RecordNotUpdated),
    }
}

/// Writes the CREATE row of an insert, then runs the user's `after_save`.
pub async fn after_save<A, C>(model: Model<A>, db: &C, insert: bool) -> Result<Model<A>, DbErr>
where
    A: ActiveModelTrait + AuditBehavior + Send,
    Model<A>: AuditedModel,
    C: ConnectionTrait,
{
    if insert
        && !is_wrapper::<C>()
        && let Some(plan) = plan::<Model<A>>(CREATE)
    {
        let info = TableInfo::of::<Model<A>>();
        let image = Image::of(&model);
        let mut entries = vec![info.snapshot_entry(CREATE, &image, "new", &plan.cfg)];
        entries.extend(info.link_entries(true, &image, &plan.cfg));
        write(db, &entries).await?;
    }
    <A as AuditBehavior>::after_save(model, db, insert).await
}

/// Runs the user's `before_delete`, then reads and locks the before-image.
pub async fn before_delete<A, C>(am: A, db: &C) -> Result<A, DbErr>
where
    A: ActiveModelTrait + AuditBehavior + Send,
    Model<A>: AuditedModel + IntoActiveModel<A>,
    C: ConnectionTrait,
{
    let am = <A as AuditBehavior>::before_delete(am, db).await?;
    if is_wrapper::<C>() {
        registry::register::<Entity<A>>();
        return Ok(am);
    }
    let Some(plan) = plan::<Model<A>>(DELETE) else {
        return Ok(am);
    };
    check_strict::<C>(&plan, DELETE)?;
    let Some(key) = key_values(&am) else {
        return Ok(am);
    };
    let select = find_by_key::<A>(key).lock_exclusive();
    let backend = db.get_database_backend();
    let one_statement = (backend == DbBackend::Postgres && is_transaction::<C>())
        .then(|| select.clone().build(backend))
        .and_then(|s| inline::locked_delete_rows::<Entity<A>>(&s, &plan.cfg));
    let old = match one_statement {
        // PostgreSQL in a transaction: the locked before-image and its DELETE row in one
        // statement. The returned model's values are `Set`, which tells after_delete
        // the row is written (see there).
        Some(stmt) => match db.query_one_raw(stmt).await.map_err(inline::map_err)? {
            Some(row) => {
                let old = Model::<A>::from_query_result(&row, "")?;
                let mut written = A::default();
                for col in Column::<A>::iter() {
                    written.set(col, old.get(col));
                }
                return Ok(written);
            }
            None => None,
        },
        None => select.one(db).await?,
    };
    match old {
        Some(old) => Ok(old.into_active_model()),
        None => {
            // Keys as `Set` (never `Unchanged`) mark "no before-image" for after_delete.
            let mut marker = A::default();
            for key in <Entity<A> as EntityTrait>::PrimaryKey::iter() {
                let col = key.into_column();
                if let Some(v) = am.get(col).into_value() {
                    marker.set(col, v);
                }
            }
            Ok(marker)
        }
    }
}

/// Writes the DELETE row from the before-image, then runs the user's `after_delete`.
///
/// `before_delete` hands over the before-image as `Unchanged` values when this row is
/// still to be written; `Set` values mean there is none (only the keys are set) or it
/// is already written (every column is set).
pub async fn after_delete<A, C>(am: A, db: &C) -> Result<A, DbErr>
where
    A: ActiveModelTrait + AuditBehavior + Send + TryIntoModel<Model<A>>,
    Model<A>: AuditedModel,
    C: ConnectionTrait,
{
    let complete = Column::<A>::iter().all(|c| matches!(am.get(c), ActiveValue::Unchanged(_)));
    if complete
        && !is_wrapper::<C>()
        && let Some(plan) = plan::<Model<A>>(DELETE)
    {
        let old = am.clone().try_into_model()?;
        let info = TableInfo::of::<Model<A>>();
        let image = Image::of(&old);
        let mut entries = vec![info.snapshot_entry(DELETE, &image, "old", &plan.cfg)];
        entries.extend(info.link_entries(false, &image, &plan.cfg));
        write(db, &entries).await?;
    }
    <A as AuditBehavior>::after_delete(am, db).await
}

#[cfg(test)]
mod tests {
    use super::stored_as_sent;
    use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
    use sea_orm::Value;

    fn at(nanos: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 28)
            .and_then(|d| d.and_hms_nano_opt(12, 0, 0, nanos))
            .expect("a valid date and time")
    }

    #[test]
    fn exact_values_are_predicted() {
        for v in [
            Value::Int(Some(7)),
            Value::BigUnsigned(None),
            Value::Bool(Some(true)),
            Value::String(Some("Title".into())),
            Value::Json(Some(Box::new(serde_json::json!({"a": 1})))),
            Value::ChronoDate(Some(at(0).date())),
            Value::ChronoDateTime(Some(at(123_000))),
            Value::ChronoDateTimeUtc(Some(Utc.from_utc_datetime(&at(5_000)))),
            Value::ChronoTime(Some(NaiveTime::from_hms_micro_opt(1, 2, 3, 4).unwrap())),
        ] {
            assert!(stored_as_sent(&v), "{v:?} should be predicted");
        }
    }

    #[test]
    fn values_the_database_may_round_are_read_back() {
        for v in [
            Value::Double(Some(0.1)),
            Value::Float(Some(1.5)),
            Value::ChronoDateTime(Some(at(123_456_789))),
            Value::ChronoDateTimeUtc(Some(Utc.from_utc_datetime(&at(1)))),
        ] {
            assert!(!stored_as_sent(&v), "{v:?} should be read back");
        }
    }
}
