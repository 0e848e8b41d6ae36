//! Writes audit rows through the caller's connection.
//!
//! The writer never opens a connection of its own: it runs on the `db` the caller
//! passed, so inside a `DatabaseTransaction` the audit rows commit or roll back with
//! the change they describe. Hooks and the (later) auditing connection wrapper both
//! go through [`write_entries`], so what a row contains is decided in one place.

use std::fmt::Write as _;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};
use serde_json::Value as Json;

use crate::context::RequestContext;
use crate::error::AuditError;

/// The audit table's name.
const AUDIT_LOG: &str = "audit_log";

/// Name of the migration that creates `audit_log`, quoted in the missing-table error.
pub const AUDIT_LOG_MIGRATION: &str = "m20261127_000001_create_audit_log";

/// Rows per multi-row INSERT: 16 parameters a row stays far below SQLite's 32,766.
const ROWS_PER_STATEMENT: usize = 1000;

/// One audit row before the request context is attached.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct AuditEntry {
    /// The action word (CREATE, UPDATE, ...).
    pub action: String,
    /// The entity's table, if the entry concerns an object.
    pub table_name: Option<String>,
    /// The object's primary key as text.
    pub object_pk: Option<String>,
    /// The object's bounded repr.
    pub object_repr: Option<String>,
    /// The field diff.
    pub changes: Option<Json>,
    /// Why, when the caller said.
    pub reason: Option<String>,
    /// The Rust module responsible.
    pub module: Option<String>,
    /// Entry metadata, merged over the context's metadata.
    pub metadata: Option<Json>,
}

impl AuditEntry {
    /// An entry for `action` on nothing in particular.
    pub fn new(action: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            ..Self::default()
        }
    }
}

/// Inserts `entries` into `audit_log` on `db`, each stamped with `ctx` and the current
/// UTC time, in as few statements as the bind-parameter limits allow.
pub async fn write_entries<C: ConnectionTrait>(
    db: &C,
    entries: &[AuditEntry],
    ctx: Option<&RequestContext>,
) -> Result<(), AuditError> {
    let now = Utc::now();
    let rows: Vec<Stamped<'_>> = entries
        .iter()
        .map(|entry| Stamped {
            entry,
            ctx,
            at: now,
        })
        .collect();
    write_stamped(db, &rows).await
}

/// One row to write, with the context and time it was recorded under.
#[derive(Clone, Copy)]
pub(crate) struct Stamped<'a> {
    pub(crate) entry: &'a AuditEntry,
    pub(crate) ctx: Option<&'a RequestContext>,
    pub(crate) at: DateTime<Utc>,
}

/// The columns every audit row binds, in order; `changes` and `metadata` are JSON.
const COLUMNS: [&str; 15] = [
    "action",
    "table_name",
    "object_pk",
    "object_repr",
    "changes",
    "actor_id",
    "actor_name",
    "ip_address",
    "user_agent",
    "session_hash",
    "request_id",
    "reason",
    "module",
    "metadata",
    "created_at",
];

/// Parameters [`insert_select`] binds: every column but the three built in SQL.
pub(crate) const BOUND_PER_ROW: usize = COLUMNS.len() - 3;

/// Positions of the JSON columns in [`COLUMNS`].
const JSON_COLUMNS: [usize; 2] = [4, 13];

/// `INSERT INTO audit_log (...) VALUES (...), ...` for `rows` rows. JSON is bound as
/// text (serialized once, never cloned as a tree); PostgreSQL casts it to `jsonb`.
fn insert_sql(backend: DbBackend, rows: usize) -> String {
    let mut sql = insert_into(backend, 200 + rows * COLUMNS.len() * 8);
    sql.push_str(" VALUES ");
    let mut n = 0;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for i in 0..COLUMNS.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            if backend == DbBackend::Postgres {
                n += 1;
                let cast = if JSON_COLUMNS.contains(&i) {
                    "::jsonb"
                } else {
                    ""
                };
                let _ = write!(sql, "${n}{cast}");
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql
}

/// `INSERT INTO audit_log (<COLUMNS>)`, quoted for `backend`, in a string with room for
/// `capacity` bytes.
fn insert_into(backend: DbBackend, capacity: usize) -> String {
    let q = if backend == DbBackend::MySql {
        '`'
    } else {
        '"'
    };
    let mut sql = String::with_capacity(capacity);
    let _ = write!(sql, "INSERT INTO {q}{AUDIT_LOG}{q} (");
    for (i, c) in COLUMNS.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(sql, "{sep}{q}{c}{q}");
    }
    sql.push(')');
    sql
}

/// [`insert_sql`] of one row and of a full chunk, built once per backend.
fn cached_insert_sql(backend: DbBackend, rows: usize) -> String {
    static CACHE: [[OnceLock<String>; 2]; 3] = [const { [const { OnceLock::new() }; 2] }; 3];
    let slot = match rows {
        1 => 0,
        ROWS_PER_STATEMENT => 1,
        _ => return insert_sql(backend, rows),
    };
    let b = match backend {
        DbBackend::Postgres => 0,
        DbBackend::MySql => 1,
        _ => 2,
    };
    CACHE[b][slot]
        .get_or_init(|| insert_sql(backend, rows))
        .clone()
}

/// Inserts rows that were stamped earlier (buffered by an auditing transaction).
pub(crate) async fn write_stamped<C: ConnectionTrait>(
    db: &C,
    rows: &[Stamped<'_>],
) -> Result<(), AuditError> {
    write_stamped_result(db, rows).await.map(drop)
}

/// [`write_entries`] of at most one statement's worth of rows, answering with that
/// statement's result: its `rows_affected` is the number of rows written.
pub(crate) async fn write_entries_result<C: ConnectionTrait>(
    db: &C,
    entries: &[AuditEntry],
    ctx: Option<&RequestContext>,
) -> Result<Option<sea_orm::ExecResult>, AuditError> {
    debug_assert!(entries.len() <= ROWS_PER_STATEMENT);
    let at = Utc::now();
    let rows: Vec<Stamped<'_>> = entries
        .iter()
        .map(|entry| Stamped { entry, ctx, at })
        .collect();
    write_stamped_result(db, &rows).await
}

/// [`write_stamped`], answering with the last statement's result.
async fn write_stamped_result<C: ConnectionTrait>(
    db: &C,
    rows: &[Stamped<'_>],
) -> Result<Option<sea_orm::ExecResult>, AuditError> {
    let mut last = None;
    if rows.is_empty() {
        return Ok(last);
    }
    let backend = db.get_database_backend();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let stmt = if backend == DbBackend::Postgres && chunk.len() > 1 {
            unnest_statement(chunk)
        } else {
            let mut values = Vec::with_capacity(chunk.len() * COLUMNS.len());
            for row in chunk {
                values.extend(fields(row, backend));
            }
            Statement::from_sql_and_values(backend, cached_insert_sql(backend, chunk.len()), values)
        };
        last = Some(db.execute_raw(stmt).await.map_err(classify)?);
    }
    Ok(last)
}

/// MySQL/MariaDB: inserts `entry` only if `from_where` (`FROM ... WHERE ...`, whose
/// parameters are `params`) selects exactly one row, as
/// `INSERT INTO audit_log (...) SELECT ?, ..., ? FROM ... WHERE ...`. Answers whether the
/// row was written. The condition is checked by the database in the same statement as
/// the write, so nothing can change between the check and the row.
pub(crate) async fn write_entry_if<C: ConnectionTrait>(
    db: &C,
    entry: &AuditEntry,
    ctx: Option<&RequestContext>,
    from_where: &str,
    params: Vec<Value>,
) -> Result<bool, AuditError> {
    let backend = DbBackend::MySql;
    let row = Stamped {
        entry,
        ctx,
        at: Utc::now(),
    };
    let mut sql = insert_into(backend, 256 + from_where.len());
    sql.push_str(" SELECT ?");
    sql.push_str(&", ?".repeat(COLUMNS.len() - 1));
    sql.push(' ');
    sql.push_str(from_where);
    let mut values = Vec::with_capacity(COLUMNS.len() + params.len());
    values.extend(fields(&row, backend));
    values.extend(params);
    let res = db
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .map_err(classify)?;
    Ok(res.rows_affected() == 1)
}

/// The values of one row, in [`COLUMNS`] order.
fn fields(row: &Stamped<'_>, backend: DbBackend) -> [Value; 15] {
    let Stamped { entry: e, ctx, at } = *row;
    // sqlx binds `DateTime<Utc>` to MySQL as a TIMESTAMP, which MariaDB turns into
    // NULL after 2038; the column is DATETIME(6) holding UTC, so bind naive UTC.
    let created_at = if backend == DbBackend::MySql {
        Value::ChronoDateTime(Some(at.naive_utc()))
    } else {
        Value::ChronoDateTimeUtc(Some(at))
    };
    let metadata = merge_metadata(
        ctx.and_then(RequestContext::metadata_value),
        e.metadata.clone(),
    );
    [
        text(Some(&e.action)),
        text(e.table_name.as_deref()),
        text(e.object_pk.as_deref()),
        text(e.object_repr.as_deref()),
        json(e.changes.as_ref()),
        text(ctx.and_then(RequestContext::actor_id)),
        text(ctx.and_then(RequestContext::actor_name)),
        Value::String(
            ctx.and_then(RequestContext::ip_address)
                .map(|ip| ip.to_string()),
        ),
        text(ctx.and_then(RequestContext::user_agent_str)),
        text(ctx.and_then(RequestContext::session_hash)),
        text(ctx.and_then(RequestContext::request_id_str)),
        text(e.reason.as_deref()),
        text(e.module.as_deref()),
        json(metadata.as_ref()),
        created_at,
    ]
}

/// PostgreSQL: `INSERT INTO audit_log (...) SELECT ... FROM <from> s [WHERE ...]`, one
/// audit row per row of `from`. `object_pk`, `object_repr` and `changes` are the SQL
/// expressions in `exprs` (over `s`); every other column is bound from `row`, as
/// parameters numbered after the `params_before` the enclosing statement already has.
/// With `only_changed`, rows whose `changes` is `{}` are not written.
pub(crate) fn insert_select(
    row: &Stamped<'_>,
    exprs: &crate::inline::RowExprs,
    from: &str,
    params_before: usize,
) -> (String, Vec<Value>) {
    let mut sql = insert_into(DbBackend::Postgres, 1024 + exprs.changes.len());
    sql.push_str(" SELECT ");
    let mut values = Vec::with_capacity(BOUND_PER_ROW);
    let mut n = params_before;
    for (i, value) in fields(row, DbBackend::Postgres).into_iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        match i {
            2 => sql.push_str(&exprs.object_pk),
            3 => sql.push_str(&exprs.object_repr),
            4 => sql.push_str("s.\"__audit_changes\""),
            _ => {
                n += 1;
                let cast = if JSON_COLUMNS.contains(&i) {
                    "::jsonb"
                } else if i == COLUMNS.len() - 1 {
                    "::timestamptz"
                } else {
                    "::text"
                };
                let _ = write!(sql, "${n}{cast}");
                values.push(value);
            }
        }
    }
    // With the filter below, `OFFSET 0` keeps PostgreSQL from pulling the subquery up
    // into the INSERT's SELECT, where `changes` would be computed twice: once for the
    // filter and once for the row (seen in EXPLAIN VERBOSE; about 30 us a row here).
    let _ = write!(
        sql,
        " FROM (SELECT r.*, {} AS \"__audit_changes\" FROM {from} r{}) s",
        exprs.changes,
        if exprs.only_changed { " OFFSET 0" } else { "" }
    );
    if exprs.only_changed {
        sql.push_str(" WHERE s.\"__audit_changes\" <> '{}'::jsonb");
    }
    (sql, values)
}

/// PostgreSQL, several rows: one array parameter per column,
/// `INSERT INTO audit_log (...) SELECT * FROM unnest($1::text[], ..., $15::timestamptz[])`.
/// Fifteen parameters whatever the number of rows, where a VALUES list binds fifteen
/// per row: the server parses one array per column instead of planning a thousand
/// rows of expressions. The arrays are sent as PostgreSQL array literals, which needs
/// no array support from SeaORM.
fn unnest_statement(chunk: &[Stamped<'_>]) -> Statement {
    let mut arrays: Vec<String> = (0..COLUMNS.len())
        .map(|_| String::with_capacity(chunk.len() * 16))
        .collect();
    for (r, row) in chunk.iter().enumerate() {
        for (array, value) in arrays.iter_mut().zip(fields(row, DbBackend::Postgres)) {
            array.push(if r == 0 { '{' } else { ',' });
            let text = match value {
                Value::String(s) => s,
                Value::ChronoDateTimeUtc(t) => {
                    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                }
                _ => None,
            };
            match text {
                None => array.push_str("NULL"),
                Some(t) => {
                    array.push('"');
                    for c in t.chars() {
                        if c == '"' || c == '\\' {
                            array.push('\\');
                        }
                        array.push(c);
                    }
                    array.push('"');
                }
            }
        }
    }
    let mut sql = insert_into(DbBackend::Postgres, 512);
    sql.push_str(" SELECT * FROM unnest(");
    for i in 0..COLUMNS.len() {
        let sep = if i == 0 { "" } else { ", " };
        let ty = if JSON_COLUMNS.contains(&i) {
            "jsonb"
        } else if i == COLUMNS.len() - 1 {
            "timestamptz"
        } else {
            "text"
        };
        let _ = write!(sql, "{sep}${}::{ty}[]", i + 1);
    }
    sql.push(')');
    let values = arrays.into_iter().map(|mut a| {
        a.push('}');
        Value::String(Some(a))
    });
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

fn text(s: Option<&str>) -> Value {
    Value::String(s.map(str::to_owned))
}

fn json(j: Option<&Json>) -> Value {
    // Serializing into bytes is about twice as fast as `Display`, which goes through a
    // `fmt::Formatter` call per token; a `Value` always serializes, so the fallback is
    // never taken.
    Value::String(j.map(|j| serde_json::to_string(j).unwrap_or_else(|_| j.to_string())))
}

/// The row's metadata: the entry's keys merged over the request context's. Manual
/// entries and the writer both use it, so the two agree.
pub(crate) fn merge_metadata(ctx: Option<&Json>, entry: Option<Json>) -> Option<Json> {
    match (ctx, entry) {
        (None, e) => e,
        (Some(c), None) => Some(c.clone()),
        (Some(Json::Object(c)), Some(Json::Object(e))) => {
            let mut merged = c.clone();
            merged.extend(e);
            Some(Json::Object(merged))
        }
        (Some(_), Some(e)) => Some(e),
    }
}

/// Turns "`audit_log` does not exist" from any backend into
/// [`AuditError::MissingTable`] naming the migration that creates it.
pub(crate) fn classify(err: DbErr) -> AuditError {
    missing_table(err, AUDIT_LOG, AUDIT_LOG_MIGRATION)
}

/// Turns "`table` does not exist" from any backend into [`AuditError::MissingTable`]
/// naming `migration`; any other error stays a database error.
pub(crate) fn missing_table(
    err: DbErr,
    table: &'static str,
    migration: &'static str,
) -> AuditError {
    let msg = err.to_string();
    // SQLite `no such table: [schema.]t`, PostgreSQL `relation "[schema.]t" does not
    // exist` (but not `column "c" of relation "t" does not exist`, an older schema),
    // MySQL `Table 'db.t' doesn't exist`; `t` exactly, not a longer name ending in it.
    let named = |after: &str| {
        msg.match_indices(&format!("{table}{after}"))
            .any(|(at, _)| matches!(msg[..at].chars().next_back(), Some(' ' | '"' | '\'' | '.')))
    };
    let sqlite = msg.contains("no such table: ") && {
        let rest = msg.rsplit("no such table: ").next().unwrap_or("");
        let name = rest
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .next()
            .unwrap_or("");
        name.rsplit('.').next() == Some(table)
    };
    let missing = sqlite
        || (named("\" does not exist") && !msg.contains("column \""))
        || named("' doesn't exist");
    if missing {
        AuditError::MissingTable { table, migration }
    } else {
        AuditError::Db(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_merges_entry_over_context() {
        let merged = merge_metadata(Some(&json!({"a": 1, "b": 1})), Some(json!({"b": 2})));
        assert_eq!(merged, Some(json!({"a": 1, "b": 2})));
        assert_eq!(merge_metadata(None, None), None);
    }

    #[test]
    fn missing_table_is_recognised_on_every_backend() {
        for msg in [
            "error returned from database: no such table: audit_log",
            "error returned from database: no such table: main.audit_log",
            "error returned from database: relation \"audit_log\" does not exist",
            "error returned from database: relation \"sat_x.audit_log\" does not exist",
            "error returned from database: 1146 (42S02): Table 'db.audit_log' doesn't exist",
        ] {
            let err = classify(DbErr::Custom(msg.into()));
            assert!(matches!(err, AuditError::MissingTable { .. }), "{msg}");
        }
        for other in [
            "deadlock",
            "error returned from database: column \"session_hash\" of relation \"audit_log\" does not exist",
            "error returned from database: 1054 (42S22): Unknown column 'session_hash' in 'field list'",
            "error returned from database: table audit_log has no column named session_hash",
            "error returned from database: relation \"audit_log_archive\" does not exist",
            "error returned from database: relation \"x_audit_log\" does not exist",
            "error returned from database: no such table: audit_log_archive",
            "error returned from database: no such table: old_audit_log",
            "error returned from database: 1146 (42S02): Table 'db.x_audit_log' doesn't exist",
        ] {
            let err = classify(DbErr::Custom(other.into()));
            assert!(matches!(err, AuditError::Db(_)), "{other}");
        }
    }
}
