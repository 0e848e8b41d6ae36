//! Audit configuration: installed once at start-up, overridable per task.
//!
//! The model is `tracing`'s dispatcher: [`AuditConfig::install`] sets the global
//! configuration exactly once (a second call is an error, so two parts of an
//! application cannot silently fight over it), and [`AuditConfig::scope`] overrides it
//! for one future, which is how tests run side by side with different settings.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, LazyLock, OnceLock};

use tokio::task::futures::TaskLocalFuture;

use crate::error::ConfigError;
use crate::model::AuditMeta;

static GLOBAL: OnceLock<Arc<AuditConfig>> = OnceLock::new();
static DEFAULT: LazyLock<Arc<AuditConfig>> = LazyLock::new(|| Arc::new(AuditConfig::new()));

tokio::task_local! {
    static OVERRIDE: Arc<AuditConfig>;
}

/// Column names masked out of the box, matched case-insensitively either exactly or
/// as a `_name` suffix (so `access_token` and `user_password` are masked too).
pub const DEFAULT_SECRET_NAMES: &[&str] = &[
    "password",
    "password_hash",
    "password_digest",
    "passwd",
    "secret",
    "secret_key",
    "token",
    "api_key",
    "apikey",
    "private_key",
    "session_key",
    "session_data",
    "otp_secret",
];

/// What happens to one column in the audit record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldRule {
    Record,
    Exclude,
    Mask,
}

/// Settings for the whole audit runtime.
///
/// ```
/// use sea_orm_audit::AuditConfig;
///
/// let config = AuditConfig::new()
///     .skip_table("session")           // never audit this table
///     .skip_action("VIEW")             // drop VIEW entries
///     .exclude_field("body_html")      // any table's `body_html` column
///     .mask_field("customer.ssn")      // only `customer.ssn`
///     .strict_transactions(true);      // refuse audited writes outside a transaction
/// assert!(config.is_table_skipped("session"));
/// // At start-up: config.install()?;  (a second install is an error)
/// ```
#[derive(Clone, Debug)]
pub struct AuditConfig {
    enabled: bool,
    skip_tables: BTreeSet<String>,
    skip_actions: BTreeSet<String>,
    exclude: Vec<String>,
    mask: Vec<String>,
    secret_masking: bool,
    secret_names: Vec<String>,
    record_noop_updates: bool,
    strict_transactions: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl AuditConfig {
    /// The defaults: enabled, nothing skipped, default secret names masked, no rows for
    /// updates that change nothing, strict transactions off.
    ///
    /// Strict transactions are off by default because SeaORM code commonly writes on a
    /// plain `DatabaseConnection`, and refusing those writes would break an application
    /// the moment auditing is added. On a plain connection the change is written first
    /// and its audit row right after, so a failure can leave a change with an error and
    /// no row, but never a row without its change. Turn strict mode on where that gap is
    /// not acceptable.
    pub fn new() -> Self {
        Self {
            enabled: true,
            skip_tables: BTreeSet::new(),
            skip_actions: BTreeSet::new(),
            exclude: Vec::new(),
            mask: Vec::new(),
            secret_masking: true,
            secret_names: DEFAULT_SECRET_NAMES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            record_noop_updates: false,
            strict_transactions: false,
        }
    }

    /// Switches all automatic and manual auditing on or off.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Never audits writes to this table (the Django original's `AUDIT_SKIP_MODELS`).
    pub fn skip_table(mut self, table: impl Into<String>) -> Self {
        self.skip_tables.insert(table.into());
        self
    }

    /// Never records this action (`CREATE`, `UPDATE`, `DELETE`, `VIEW`, ...), the
    /// original's `AUDIT_SKIP_ACTIONS`. Matched case-insensitively.
    pub fn skip_action(mut self, action: impl AsRef<str>) -> Self {
        self.skip_actions
            .insert(action.as_ref().to_ascii_uppercase());
        self
    }

    /// Never records this column: `"column"` for every table or `"table.column"`.
    pub fn exclude_field(mut self, field: impl Into<String>) -> Self {
        self.exclude.push(field.into());
        self
    }

    /// Records that this column changed but never its value: `"column"` or `"table.column"`.
    pub fn mask_field(mut self, field: impl Into<String>) -> Self {
        self.mask.push(field.into());
        self
    }

    /// Adds a name to the secret-name list (see [`DEFAULT_SECRET_NAMES`]).
    pub fn secret_name(mut self, name: impl Into<String>) -> Self {
        self.secret_names.push(name.into().to_ascii_lowercase());
        self
    }

    /// Turns masking by secret name on or off (on by default). Explicit masks still apply.
    pub fn secret_masking(mut self, on: bool) -> Self {
        self.secret_masking = on;
        self
    }

    /// Writes an UPDATE row with empty `changes` when an update changes nothing
    /// (off by default: such rows are noise).
    pub fn record_noop_updates(mut self, on: bool) -> Self {
        self.record_noop_updates = on;
        self
    }

    /// Refuses audited writes made on a plain connection instead of a transaction, so a
    /// change and its audit row always commit together.
    pub fn strict_transactions(mut self, on: bool) -> Self {
        self.strict_transactions = on;
        self
    }

    /// Whether auditing is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Whether writes to `table` are skipped.
    pub fn is_table_skipped(&self, table: &str) -> bool {
        self.skip_tables.contains(table)
    }

    /// Whether `action` is skipped.
    pub fn is_action_skipped(&self, action: &str) -> bool {
        // Stored upper-case; an action that already is (every built-in one) is looked
        // up without allocating, since this runs on every audited write.
        !self.skip_actions.is_empty()
            && (self.skip_actions.contains(action)
                || (action.bytes().any(|b| b.is_ascii_lowercase())
                    && self.skip_actions.contains(&action.to_ascii_uppercase())))
    }

    /// Whether no-op updates write a row.
    pub fn records_noop_updates(&self) -> bool {
        self.record_noop_updates
    }

    /// Whether audited writes outside a transaction are refused.
    pub fn is_strict(&self) -> bool {
        self.strict_transactions
    }

    /// Installs this configuration for the whole process. Only the first call succeeds.
    pub fn install(self) -> Result<(), ConfigError> {
        GLOBAL.set(Arc::new(self)).map_err(|_| ConfigError)
    }

    /// Runs `fut` with this configuration instead of the global one (for this task only).
    pub fn scope<F: Future>(self, fut: F) -> TaskLocalFuture<Arc<AuditConfig>, F> {
        OVERRIDE.scope(Arc::new(self), fut)
    }

    /// The configuration in force for the current task.
    pub fn current() -> Arc<AuditConfig> {
        current()
    }

    pub(crate) fn field_rule(&self, table: &str, column: &str, meta: &AuditMeta) -> FieldRule {
        if meta.exclude.contains(&column) || matches_any(&self.exclude, table, column) {
            return FieldRule::Exclude;
        }
        if meta.mask.contains(&column) || matches_any(&self.mask, table, column) {
            return FieldRule::Mask;
        }
        if self.secret_masking && !meta.unmask.contains(&column) && self.is_secret_name(column) {
            return FieldRule::Mask;
        }
        FieldRule::Record
    }

    fn is_secret_name(&self, column: &str) -> bool {
        // Compared without allocating: this runs for every column of every audited row.
        let column = column.as_bytes();
        self.secret_names.iter().any(|name| {
            let name = name.as_bytes();
            let Some(split) = column.len().checked_sub(name.len()) else {
                return false;
            };
            column[split..].eq_ignore_ascii_case(name) && (split == 0 || column[split - 1] == b'_')
        })
    }
}

fn matches_any(patterns: &[String], table: &str, column: &str) -> bool {
    patterns.iter().any(|p| match p.split_once('.') {
        Some((t, c)) => t == table && c == column,
        None => p == column,
    })
}

pub(crate) fn current() -> Arc<AuditConfig> {
    OVERRIDE
        .try_with(Arc::clone)
        .ok()
        .or_else(|| GLOBAL.get().cloned())
        .unwrap_or_else(|| Arc::clone(&DEFAULT))
}

pub(crate) fn scoped_override() -> Option<Arc<AuditConfig>> {
    OVERRIDE.try_with(Arc::clone).ok()
}

pub(crate) fn scope_arc<F: Future>(
    cfg: Arc<AuditConfig>,
    fut: F,
) -> TaskLocalFuture<Arc<AuditConfig>, F> {
    OVERRIDE.scope(cfg, fut)
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: AuditMeta = AuditMeta::new(&["body"], &["pin"], &["token_count"], "m");

    #[test]
    fn rules_in_order() {
        let c = AuditConfig::new()
            .exclude_field("post.notes")
            .mask_field("ssn");
        assert_eq!(c.field_rule("post", "body", &META), FieldRule::Exclude);
        assert_eq!(c.field_rule("post", "notes", &META), FieldRule::Exclude);
        assert_eq!(c.field_rule("user", "notes", &META), FieldRule::Record);
        assert_eq!(c.field_rule("x", "ssn", &META), FieldRule::Mask);
        assert_eq!(c.field_rule("x", "pin", &META), FieldRule::Mask);
        assert_eq!(c.field_rule("x", "password_hash", &META), FieldRule::Mask);
        assert_eq!(c.field_rule("x", "Access_Token", &META), FieldRule::Mask);
        assert_eq!(c.field_rule("x", "tokenizer", &META), FieldRule::Record);
        assert_eq!(c.field_rule("x", "token_count", &META), FieldRule::Record);
        let off = AuditConfig::new().secret_masking(false);
        assert_eq!(off.field_rule("x", "password", &META), FieldRule::Record);
        let extended = AuditConfig::new().secret_name("pin_code");
        assert_eq!(
            extended.field_rule("x", "card_pin_code", &META),
            FieldRule::Mask
        );
    }

    #[test]
    fn actions_case_insensitive() {
        let c = AuditConfig::new().skip_action("view");
        assert!(c.is_action_skipped("VIEW"));
        assert!(c.is_action_skipped("view"));
        assert!(!c.is_action_skipped("UPDATE"));
    }
}
