//! Helpers shared by the integration tests.

use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QueryOrder};
use sea_orm_audit::entity::audit_log;
use sea_orm_audit_tests::fixtures::article;
use serde_json::Value;

/// A new article titled `title`, every other field empty or zero.
pub fn art(title: &str) -> article::ActiveModel {
    article::ActiveModel {
        title: Set(title.into()),
        body: Set(String::new()),
        body_html: Set(String::new()),
        editor_token: Set(None),
        views: Set(0),
        published: Set(false),
        ..Default::default()
    }
}

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

/// Whether `e` is SQLite refusing a second writer ("database is locked" / busy), which a
/// concurrent test retries.
pub fn sqlite_busy(e: &DbErr) -> bool {
    let msg = e.to_string();
    msg.contains("locked") || msg.contains("busy")
}
