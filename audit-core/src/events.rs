//! Manual audit entries: custom actions, VIEW, and the action vocabulary.
//!
//! The derive records CREATE, UPDATE and DELETE by itself. Everything else an
//! application wants in the trail (a VIEW of a record, an approval, an IMPORT) is
//! written with [`log_event`] or [`log_view`], on the caller's `db`, so inside a
//! transaction the entry commits or rolls back with the work it describes.

use std::sync::Arc;

use chrono::Utc;
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::Value as Json;

use crate::config;
use crate::context::{self, RequestContext};
use crate::diff;
use crate::entity::audit_log;
use crate::error::AuditError;
use crate::model::AuditedModel;
use crate::text;
use crate::writer;

/// An object was created (written by the derive).
pub const ACTION_CREATE: &str = "CREATE";
/// An object was updated (written by the derive).
pub const ACTION_UPDATE: &str = "UPDATE";
/// An object was deleted (written by the derive).
pub const ACTION_DELETE: &str = "DELETE";
/// An object was looked at ([`log_view`]).
pub const ACTION_VIEW: &str = "VIEW";
/// A successful sign-in ([`record_login`](crate::record_login)).
pub const ACTION_LOGIN: &str = "LOGIN";
/// A sign-out ([`record_login`](crate::record_login)).
pub const ACTION_LOGOUT: &str = "LOGOUT";
/// A failed or blocked sign-in ([`record_login`](crate::record_login)).
pub const ACTION_LOGIN_FAILED: &str = "LOGIN_FAILED";
/// Data left the system ([`log_export`](crate::log_export)).
pub const ACTION_EXPORT: &str = "EXPORT";
/// Data entered the system in bulk (for applications to write with [`log_event`]).
pub const ACTION_IMPORT: &str = "IMPORT";
/// An object was restored to an earlier state ([`restore`](crate::restore)).
pub const ACTION_RESTORE: &str = "RESTORE";

/// Longest action word, in characters (the `audit_log.action` column is 32 wide).
pub const MAX_ACTION_CHARS: usize = 32;
/// Longest reason kept, in characters; longer ones are cut and marked with `…`.
pub const MAX_REASON_CHARS: usize = 4000;
/// Longest table name accepted by [`AuditEvent::object_key`].
pub const MAX_TABLE_CHARS: usize = 128;
/// Longest primary-key text accepted by [`AuditEvent::object_key`].
pub const MAX_PK_CHARS: usize = 255;
/// Longest module name kept, in characters.
pub const MAX_MODULE_CHARS: usize = 255;

/// Validates and normalises an action word.
///
/// The word is trimmed and upper-cased (so `"view"` and `"VIEW"` are one action for
/// skip lists and summaries). It must then be 1 to [`MAX_ACTION_CHARS`] characters
/// with no whitespace or control characters.
///
/// ```
/// use sea_orm_audit::normalize_action;
///
/// assert_eq!(normalize_action(" approve ").unwrap(), "APPROVE");
/// assert!(normalize_action("").is_err());
/// assert!(normalize_action("two words").is_err());
/// assert!(normalize_action(&"X".repeat(33)).is_err());
/// ```
pub fn normalize_action(action: &str) -> Result<String, AuditError> {
    let word = action.trim().to_uppercase();
    let invalid = |reason: &str| AuditError::InvalidInput {
        field: "action",
        reason: reason.to_owned(),
    };
    if word.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if word.chars().count() > MAX_ACTION_CHARS {
        return Err(invalid("longer than 32 characters"));
    }
    if word.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid("contains whitespace or control characters"));
    }
    Ok(word)
}

/// A manual audit entry, built with setters and written by [`log_event`].
///
/// ```
/// # use sea_orm_audit::doc_fixtures::{setup, post};
/// use sea_orm_audit::{AuditEvent, log_event};
/// use serde_json::json;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let db = setup().await?;
/// let event = AuditEvent::new("approve")?
///     .object_key("invoice", "2024-0042")
///     .reason("signed off by finance")
///     .metadata(json!({"amount": "120.00"}));
/// let id = log_event(&db, event).await?;
/// assert!(id.is_some());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct AuditEvent {
    action: String,
    table_name: Option<String>,
    object_pk: Option<String>,
    object_repr: Option<String>,
    changes: Option<Json>,
    reason: Option<String>,
    metadata: Option<Json>,
    module: Option<String>,
    context: Option<RequestContext>,
}

impl AuditEvent {
    /// An entry for `action`, validated by [`normalize_action`].
    pub fn new(action: &str) -> Result<Self, AuditError> {
        Ok(Self::bare(normalize_action(action)?))
    }

    /// An entry for an action word that is already valid, with nothing else set.
    fn bare(action: String) -> Self {
        Self {
            action,
            table_name: None,
            object_pk: None,
            object_repr: None,
            changes: None,
            reason: None,
            metadata: None,
            module: None,
            context: None,
        }
    }

    /// Ties the entry to an audited model: its table, primary key and repr, and its
    /// module.
    pub fn object<M: AuditedModel>(mut self, model: &M) -> Self {
        let pk = diff::primary_key_text(model);
        self.object_repr = Some(diff::repr(model, &pk));
        self.table_name = Some(diff::table_name::<M>().to_owned());
        self.object_pk = Some(text::bounded(&pk, MAX_PK_CHARS));
        self.module
            .get_or_insert_with(|| M::audit_meta().module.to_owned());
        self
    }

    /// Ties the entry to an object by table name and primary-key text (as
    /// [`primary_key_text`](crate::primary_key_text) renders it). Over-long values
    /// are rejected by [`log_event`] rather than cut, because a cut key would name
    /// another object.
    pub fn object_key(mut self, table: impl Into<String>, pk: impl Into<String>) -> Self {
        self.table_name = Some(table.into());
        self.object_pk = Some(pk.into());
        self
    }

    /// Sets the object's description (cut to [`MAX_REPR_CHARS`](crate::MAX_REPR_CHARS)).
    pub fn repr(mut self, repr: &str) -> Self {
        self.object_repr = text::bounded_opt(repr.to_owned(), diff::MAX_REPR_CHARS);
        self
    }

    /// Sets the `changes` JSON (any shape; the derive's is `{"field": {"old", "new"}}`).
    pub fn changes(mut self, changes: Json) -> Self {
        self.changes = Some(changes);
        self
    }

    /// Says why (cut to [`MAX_REASON_CHARS`]).
    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = text::bounded_opt(reason.to_owned(), MAX_REASON_CHARS);
        self
    }

    /// Attaches metadata, merged over the request context's metadata.
    pub fn metadata(mut self, metadata: Json) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Names the responsible module (default: the object's entity module, if any).
    pub fn module(mut self, module: &str) -> Self {
        self.module = text::bounded_opt(module.to_owned(), MAX_MODULE_CHARS);
        self
    }

    /// Uses this context instead of [`RequestContext::current`].
    pub fn context(mut self, ctx: RequestContext) -> Self {
        self.context = Some(ctx);
        self
    }

    /// The normalised action word.
    pub fn action(&self) -> &str {
        &self.action
    }
}

/// The context to stamp on a manual record: the explicit one, else the task's.
pub(crate) fn resolve_context(explicit: Option<RequestContext>) -> Option<Arc<RequestContext>> {
    explicit.map(Arc::new).or_else(RequestContext::current)
}

/// Whether manual entries of `action` are switched off by configuration or scope.
pub(crate) fn is_skipped(action: &str) -> bool {
    is_skipped_for(action, None)
}

/// [`is_skipped`], also honouring the skipped tables for an entry about `table`.
pub(crate) fn is_skipped_for(action: &str, table: Option<&str>) -> bool {
    if context::is_suppressed() {
        return true;
    }
    let cfg = config::current();
    !cfg.is_enabled()
        || cfg.is_action_skipped(action)
        || table.is_some_and(|t| cfg.is_table_skipped(t))
}

/// Turns "table does not exist" into [`AuditError::MissingTable`] naming the migration
/// that creates `table`.
pub(crate) fn classify(err: sea_orm::DbErr, table: &'static str) -> AuditError {
    let migration = match table {
        "login_attempt" => "m20261127_000002_create_login_attempt",
        "data_export" => "m20261127_000003_create_data_export",
        "system_event" => "m20261127_000004_create_system_event",
        _ => return writer::classify(err),
    };
    writer::missing_table(err, table, migration)
}

/// Inserts one `audit_log` row and returns its id: one statement on every backend.
pub(crate) async fn insert_entry<C: ConnectionTrait>(
    db: &C,
    ev: AuditEvent,
    ctx: Option<&RequestContext>,
) -> Result<i64, AuditError> {
    if let Some(t) = &ev.table_name
        && (t.is_empty() || t.chars().count() > MAX_TABLE_CHARS)
    {
        return Err(AuditError::InvalidInput {
            field: "table_name",
            reason: format!("must be 1 to {MAX_TABLE_CHARS} characters"),
        });
    }
    if let Some(pk) = &ev.object_pk
        && pk.chars().count() > MAX_PK_CHARS
    {
        return Err(AuditError::InvalidInput {
            field: "object_pk",
            reason: format!("longer than {MAX_PK_CHARS} characters"),
        });
    }
    let row = audit_log::ActiveModel {
        id: NotSet,
        action: Set(ev.action),
        table_name: Set(ev.table_name),
        object_pk: Set(ev.object_pk),
        object_repr: Set(ev.object_repr),
        changes: Set(ev.changes),
        actor_id: Set(ctx.and_then(|c| c.actor_id().map(str::to_owned))),
        actor_name: Set(ctx.and_then(|c| c.actor_name().map(str::to_owned))),
        ip_address: Set(ctx.and_then(|c| c.ip_address().map(|ip| ip.to_string()))),
        user_agent: Set(ctx.and_then(|c| c.user_agent_str().map(str::to_owned))),
        session_hash: Set(ctx.and_then(|c| c.session_hash().map(str::to_owned))),
        request_id: Set(ctx.and_then(|c| c.request_id_str().map(str::to_owned))),
        reason: Set(ev.reason),
        module: Set(ev.module),
        metadata: Set(writer::merge_metadata(
            ctx.and_then(RequestContext::metadata_value),
            ev.metadata,
        )),
        created_at: Set(Utc::now()),
    };
    let res = audit_log::Entity::insert(row)
        .exec(db)
        .await
        .map_err(writer::classify)?;
    Ok(res.last_insert_id)
}

/// Writes a manual entry on `db` and returns its id, or `None` when the action (or the
/// object's table) is skipped by configuration, or auditing is disabled or suppressed
/// for this task.
///
/// Actor, IP, user agent, session and request id come from the event's explicit
/// context or else from [`RequestContext::current`]; without either they are null.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::setup;
/// use sea_orm_audit::{AuditConfig, AuditEvent, RequestContext, log_event};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm_audit::AuditError> {
/// # let db = setup().await?;
/// let ctx = RequestContext::new().actor("7", "Grace");
/// let id = ctx.scope(log_event(&db, AuditEvent::new("IMPORT")?.reason("nightly feed"))).await?;
/// assert!(id.is_some());
///
/// let skipped = AuditConfig::new().skip_action("IMPORT")
///     .scope(log_event(&db, AuditEvent::new("import")?)).await?;
/// assert_eq!(skipped, None);
/// # Ok(()) }
/// ```
pub async fn log_event<C: ConnectionTrait>(
    db: &C,
    mut event: AuditEvent,
) -> Result<Option<i64>, AuditError> {
    if is_skipped_for(&event.action, event.table_name.as_deref()) {
        return Ok(None);
    }
    let ctx = resolve_context(event.context.take());
    insert_entry(db, event, ctx.as_deref()).await.map(Some)
}

/// Records that the current actor looked at `model`: one INSERT, nothing read.
///
/// Cheap enough for every detail handler; switch it off with
/// `AuditConfig::skip_action("VIEW")` (or for one table with `skip_table`), in which
/// case it writes nothing and returns `None`.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::{setup, post};
/// use sea_orm::{ActiveModelTrait, ActiveValue::Set};
/// use sea_orm_audit::log_view;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let db = setup().await?;
/// let post = post::ActiveModel { title: Set("Hi".into()), ..Default::default() }.insert(&db).await?;
/// let id = log_view(&db, &post).await?;
/// assert!(id.is_some());
/// # Ok(()) }
/// ```
pub async fn log_view<C, M>(db: &C, model: &M) -> Result<Option<i64>, AuditError>
where
    C: ConnectionTrait,
    M: AuditedModel,
{
    if is_skipped_for(ACTION_VIEW, Some(diff::table_name::<M>())) {
        return Ok(None);
    }
    let event = AuditEvent::bare(ACTION_VIEW.to_owned()).object(model);
    let ctx = RequestContext::current();
    insert_entry(db, event, ctx.as_deref()).await.map(Some)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_normalised_and_bounded() {
        assert_eq!(normalize_action("view").unwrap(), "VIEW");
        assert_eq!(normalize_action("über").unwrap(), "ÜBER");
        assert!(normalize_action("   ").is_err());
        assert!(normalize_action("a\u{0}b").is_err());
        assert!(normalize_action("a\nb").is_err());
        assert!(normalize_action(&"é".repeat(32)).is_ok());
        assert!(normalize_action(&"é".repeat(33)).is_err());
    }
}
