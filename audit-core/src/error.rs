//! Errors of the audit runtime.

use sea_orm::DbErr;

/// Prefix of every [`DbErr::Custom`] message produced by this crate, so callers can
/// recognise an audit failure in an error that went through SeaORM's hook boundary.
pub const ERROR_PREFIX: &str = "sea-orm-audit: ";

/// Everything that can go wrong while recording an audit entry.
///
/// SeaORM hooks must return [`DbErr`], so inside `insert`/`update`/`delete` these
/// errors arrive as `DbErr::Custom` whose message starts with [`ERROR_PREFIX`].
/// [`AuditError::audit_message`] recognises such an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// An audit table is missing: the audit migrations have not been run on this database.
    #[error(
        "audit table `{table}` does not exist; run migration `{migration}` from sea-orm-audit-migration (or wrap data migrations in `sea_orm_audit::migration_guard`)"
    )]
    MissingTable {
        /// The table that was not found.
        table: &'static str,
        /// The migration that creates it.
        migration: &'static str,
    },
    /// Strict transactions are on and an audited write was made on a plain connection.
    #[error(
        "audited {action} on `{table}` outside a transaction while strict transactions are on; use a DatabaseTransaction or the `*_atomic` methods"
    )]
    NotInTransaction {
        /// The audited action that was refused.
        action: &'static str,
        /// The entity's table.
        table: String,
    },
    /// The auditing connection refused a write it cannot audit row by row.
    #[error("refused a write to audited table `{table}`: {reason}")]
    Unauditable {
        /// The audited table the statement writes to.
        table: String,
        /// Why it cannot be audited, and what to do instead.
        reason: &'static str,
    },
    /// A value given to the audit API was not acceptable.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// Which input was rejected.
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A record the call refers to does not exist.
    #[error("no `{table}` row with id {id}")]
    NotFound {
        /// The table that was searched.
        table: &'static str,
        /// The id that was not found.
        id: i64,
    },
    /// A system event was already resolved; resolving is not repeated.
    #[error("system event {id} was already resolved at {resolved_at}")]
    AlreadyResolved {
        /// The event.
        id: i64,
        /// When it was resolved.
        resolved_at: chrono::DateTime<chrono::Utc>,
    },
    /// An object's state could not be rebuilt completely from its audit rows
    /// (excluded or masked fields, or history that starts after its creation).
    #[error("cannot rebuild `{table}` {pk}: no recorded value for {missing:?}")]
    IncompleteState {
        /// The entity's table.
        table: String,
        /// The object's primary key as text.
        pk: String,
        /// The columns without a recorded value.
        missing: Vec<String>,
    },
    /// There is no recorded state of the object at the requested time.
    #[error("`{table}` {pk} has no recorded state at that time")]
    NoState {
        /// The entity's table.
        table: String,
        /// The object's primary key as text.
        pk: String,
    },
    /// A background writer could not be started (no tokio runtime) or has stopped.
    #[error("background writer unavailable: {0}")]
    WriterUnavailable(&'static str),
    /// An auditing transaction refused to commit, and rolled back, because a change
    /// made through it may have no audit row: writing its pending rows failed or was
    /// cancelled, or an audited write was cancelled once its statement was sent, or
    /// failed after the database had made the change, or a deadlock or serialization
    /// failure made the database roll the whole transaction back.
    #[error(
        "an audited change in this transaction may have no audit row (recording it failed or was cancelled, or the database rolled the transaction back); the transaction was rolled back"
    )]
    Unrecorded,
    /// The database rejected an audit statement.
    #[error("writing the audit record failed: {0}")]
    Db(#[source] DbErr),
}

impl AuditError {
    /// The message of a `DbErr` that came from this crate (without [`ERROR_PREFIX`]),
    /// or `None` for errors that did not.
    ///
    /// ```
    /// use sea_orm::DbErr;
    /// use sea_orm_audit::AuditError;
    ///
    /// let err: DbErr = AuditError::InvalidInput { field: "action", reason: "empty".into() }.into();
    /// assert_eq!(AuditError::audit_message(&err), Some("invalid action: empty"));
    /// assert!(AuditError::is_audit_error(&err));
    /// assert!(!AuditError::is_audit_error(&DbErr::RecordNotUpdated));
    /// ```
    pub fn audit_message(err: &DbErr) -> Option<&str> {
        match err {
            DbErr::Custom(msg) => msg.strip_prefix(ERROR_PREFIX),
            _ => None,
        }
    }

    /// Whether a `DbErr` came from this crate.
    pub fn is_audit_error(err: &DbErr) -> bool {
        Self::audit_message(err).is_some()
    }
}

impl From<AuditError> for DbErr {
    fn from(err: AuditError) -> Self {
        DbErr::Custom(format!("{ERROR_PREFIX}{err}"))
    }
}

impl From<DbErr> for AuditError {
    fn from(err: DbErr) -> Self {
        AuditError::Db(err)
    }
}

/// Error returned when a global setting is installed a second time.
#[derive(Debug, thiserror::Error)]
#[error("the global audit configuration is already installed")]
#[non_exhaustive]
pub struct ConfigError;
