//! Helpers shared by the integration tests.

use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QueryOrder};
use sea_orm_audit::entity::audit_log;
use serde_json::Value;

/// Every audit row, oldest first.
pub async fn trail<C: ConnectionTrait>(db: &C) -> Result<Vec<audit_log::Model>, DbErr> {
    audit_log::Entity::find()
        .order_by_asc(audit_log::Column::Id)
        .all(db)
        .await
}

/// The `changes` JSON of a row (an empty object when absent).
pub fn changes(row: &audit_log::Model) -> Value {
    row.changes
        .clone()
        .unwrap_or(Value::Object(Default::default()))
}

/// The keys of a `changes` object, sorted.
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}
