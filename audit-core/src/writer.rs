//! Writes audit rows through the caller's connection.
//!
//! The writer never opens a connection of its own: it runs on the `db` the caller
//! passed, so inside a `DatabaseTransaction` the audit rows commit or roll back with
//! the change they describe. Hooks and the (later) auditing connection wrapper both
//! go through [`write_entries`], so what a row contains is decided in one place.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Query, SimpleExpr};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Iden, Value};
use serde_json::Value as Json;

use crate::context::RequestContext;
use crate::entity::audit_log;
use crate::error::AuditError;

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

/// Inserts rows that were stamped earlier (buffered by an auditing transaction).
pub(crate) async fn write_stamped<C: ConnectionTrait>(
    db: &C,
    rows: &[Stamped<'_>],
) -> Result<(), AuditError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mysql = db.get_database_backend() == DbBackend::MySql;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut insert = Query::insert();
        insert.into_table(audit_log::Entity).columns([
            audit_log::Column::Action,
            audit_log::Column::TableName,
            audit_log::Column::ObjectPk,
            audit_log::Column::ObjectRepr,
            audit_log::Column::Changes,
            audit_log::Column::ActorId,
            audit_log::Column::ActorName,
            audit_log::Column::IpAddress,
            audit_log::Column::UserAgent,
            audit_log::Column::SessionHash,
            audit_log::Column::RequestId,
            audit_log::Column::Reason,
            audit_log::Column::Module,
            audit_log::Column::Metadata,
            audit_log::Column::CreatedAt,
        ]);
        for Stamped { entry: e, ctx, at } in chunk.iter().copied() {
            // sqlx binds `DateTime<Utc>` to MySQL as a TIMESTAMP, which MariaDB turns into
            // NULL after 2038; the column is DATETIME(6) holding UTC, so bind naive UTC.
            let created_at: SimpleExpr = if mysql {
                Value::ChronoDateTime(Some(at.naive_utc())).into()
            } else {
                Value::ChronoDateTimeUtc(Some(at)).into()
            };
            let ip = ctx
                .and_then(RequestContext::ip_address)
                .map(|ip| ip.to_string());
            let row: [SimpleExpr; 15] = [
                text(Some(&e.action)),
                text(e.table_name.as_deref()),
                text(e.object_pk.as_deref()),
                text(e.object_repr.as_deref()),
                json(e.changes.clone()),
                text(ctx.and_then(RequestContext::actor_id)),
                text(ctx.and_then(RequestContext::actor_name)),
                text(ip.as_deref()),
                text(ctx.and_then(RequestContext::user_agent_str)),
                text(ctx.and_then(RequestContext::session_hash)),
                text(ctx.and_then(RequestContext::request_id_str)),
                text(e.reason.as_deref()),
                text(e.module.as_deref()),
                json(merge_metadata(
                    ctx.and_then(RequestContext::metadata_value),
                    e.metadata.as_ref(),
                )),
                created_at,
            ];
            insert
                .values(row)
                .map_err(|e| AuditError::Db(DbErr::Custom(e.to_string())))?;
        }
        db.execute(&insert)
            .await
            .map_err(|e| classify(e, audit_log::Entity.to_string().as_str()))?;
    }
    Ok(())
}

fn text(s: Option<&str>) -> SimpleExpr {
    Value::String(s.map(str::to_owned)).into()
}

fn json(j: Option<Json>) -> SimpleExpr {
    Value::Json(j.map(Box::new)).into()
}

fn merge_metadata(ctx: Option<&Json>, entry: Option<&Json>) -> Option<Json> {
    match (ctx, entry) {
        (None, None) => None,
        (Some(c), None) => Some(c.clone()),
        (None, Some(e)) => Some(e.clone()),
        (Some(Json::Object(c)), Some(Json::Object(e))) => {
            let mut merged = c.clone();
            merged.extend(e.iter().map(|(k, v)| (k.clone(), v.clone())));
            Some(Json::Object(merged))
        }
        (Some(_), Some(e)) => Some(e.clone()),
    }
}

/// Turns "table does not exist" from any backend into [`AuditError::MissingTable`].
pub(crate) fn classify(err: DbErr, table: &str) -> AuditError {
    let msg = err.to_string();
    let missing = msg.contains(table)
        && (msg.contains("no such table")
            || msg.contains("does not exist")
            || msg.contains("doesn't exist"));
    if missing {
        AuditError::MissingTable {
            table: "audit_log",
            migration: AUDIT_LOG_MIGRATION,
        }
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
        let merged = merge_metadata(Some(&json!({"a": 1, "b": 1})), Some(&json!({"b": 2})));
        assert_eq!(merged, Some(json!({"a": 1, "b": 2})));
        assert_eq!(merge_metadata(None, None), None);
    }

    #[test]
    fn missing_table_is_recognised_on_every_backend() {
        for msg in [
            "error returned from database: no such table: audit_log",
            "error returned from database: relation \"audit_log\" does not exist",
            "error returned from database: 1146 (42S02): Table 'db.audit_log' doesn't exist",
        ] {
            let err = classify(DbErr::Custom(msg.into()), "audit_log");
            assert!(matches!(err, AuditError::MissingTable { .. }), "{msg}");
        }
        let other = classify(DbErr::Custom("deadlock".into()), "audit_log");
        assert!(matches!(other, AuditError::Db(_)));
    }
}
