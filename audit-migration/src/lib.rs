//! SeaORM migrations for the four sea-orm-audit tables, `audit_log`, `login_attempt`,
//! `data_export` and `system_event`, plus `audit_lock` (the MySQL/MariaDB brute-force
//! lock) and the admin search's indexes.
//!
//! Merge [`migrations()`] into your application's own `Migrator`, so that one migration history
//! covers your tables and ours:
//!
//! ```no_run
//! use sea_orm_migration::prelude::*;
//! # mod m20260101_000001_create_post {
//! #     use sea_orm_migration::prelude::*;
//! #     #[derive(DeriveMigrationName)]
//! #     pub struct Migration;
//! #     #[async_trait::async_trait]
//! #     impl MigrationTrait for Migration {
//! #         async fn up(&self, _: &SchemaManager) -> Result<(), DbErr> {
//! #             Ok(())
//! #         }
//! #     }
//! # }
//!
//! pub struct Migrator;
//!
//! #[async_trait::async_trait]
//! impl MigratorTrait for Migrator {
//!     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
//!         let mut migrations = sea_orm_audit_migration::migrations();
//!         migrations.push(Box::new(m20260101_000001_create_post::Migration));
//!         migrations
//!     }
//! }
//! # async fn run(db: &sea_orm_migration::sea_orm::DatabaseConnection) -> Result<(), DbErr> {
//! Migrator::up(db, None).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Or run the standalone [`Migrator`], which keeps its history in its own table,
//! [`MIGRATION_TABLE`]:
//!
//! ```no_run
//! use sea_orm_audit_migration::Migrator;
//! use sea_orm_migration::MigratorTrait;
//! # async fn run(
//! #     db: &sea_orm_migration::sea_orm::DatabaseConnection,
//! # ) -> Result<(), sea_orm_migration::DbErr> {
//!
//! Migrator::up(db, None).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Pick one way per database and keep it: each records what it applied in a different table, so
//! switching later makes the other try to create tables that already exist.
//!
//! # Leaving out the search indexes
//!
//! [`ADD_AUDIT_LOG_SEARCH_INDEXES`] adds three `audit_log` indexes that only the admin viewer's
//! search box uses (exact primary key, and prefixes of the object's repr and of the actor's
//! name). Every audited write maintains them, which costs up to about 7 per cent of an
//! audited write's time (SQLite with a transaction per write; 1 to 5 per cent elsewhere, as
//! measured in the README's Performance section). An application that does not mount the
//! viewer, or can live with those three searches reading the whole log, can leave the
//! migration out of its list:
//!
//! ```no_run
//! use sea_orm_audit_migration::ADD_AUDIT_LOG_SEARCH_INDEXES;
//! use sea_orm_migration::prelude::*;
//!
//! pub struct Migrator;
//!
//! #[async_trait::async_trait]
//! impl MigratorTrait for Migrator {
//!     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
//!         let mut migrations = sea_orm_audit_migration::migrations();
//!         migrations.retain(|m| m.name() != ADD_AUDIT_LOG_SEARCH_INDEXES);
//!         migrations
//!     }
//! }
//! ```
//!
//! Everything else, the viewer's search included, works the same without them. Decide before
//! the first run: sea-orm-migration refuses to run when the database lists an applied
//! migration that the list lacks. To drop them from a database that already has them, keep
//! the list as it is and add a migration of your own that drops
//! `idx_audit_log_object_pk_created_at`, `idx_audit_log_object_repr` and
//! `idx_audit_log_actor_name`.
//!
//! # Details
//!
//! - The tables have no foreign keys, so the audit migrations can sit anywhere in your list.
//! - Timestamps are `timestamp with time zone` on PostgreSQL, RFC 3339 text on SQLite and
//!   `DATETIME(6)` on MySQL/MariaDB, matching how SeaORM reads and writes `DateTimeUtc`.
//! - JSON columns are `jsonb` on PostgreSQL, `json` on MySQL/MariaDB and text on SQLite.
//! - On MySQL/MariaDB the tables are created with `DEFAULT CHARSET=utf8mb4`, whatever the
//!   database default, so any text your application stores can also be audited.
//! - This crate enables no database driver: your own `sea-orm` features decide which backends
//!   are compiled in.

#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![deny(unreachable_pub)]

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

mod m20261127_000001_create_audit_log;
mod m20261127_000002_create_login_attempt;
mod m20261127_000003_create_data_export;
mod m20261127_000004_create_system_event;
mod m20261127_000005_create_audit_lock;
mod m20261127_000006_add_audit_log_search_indexes;

/// Name of the migration that creates `audit_log`, as recorded in the migration table.
///
/// The runtime names it when `audit_log` is missing, so renaming it breaks that hint and makes
/// already-migrated databases run the migration again.
pub const CREATE_AUDIT_LOG: &str = "m20261127_000001_create_audit_log";

/// Name of the migration that creates `login_attempt`.
pub const CREATE_LOGIN_ATTEMPT: &str = "m20261127_000002_create_login_attempt";

/// Name of the migration that creates `data_export`.
pub const CREATE_DATA_EXPORT: &str = "m20261127_000003_create_data_export";

/// Name of the migration that creates `system_event`.
pub const CREATE_SYSTEM_EVENT: &str = "m20261127_000004_create_system_event";

/// Name of the migration that creates `audit_lock`, the lock rows brute-force protection
/// uses on MySQL/MariaDB.
pub const CREATE_AUDIT_LOCK: &str = "m20261127_000005_create_audit_lock";
/// Name of the migration that adds the `audit_log` indexes used by prefix and primary-key search.
pub const ADD_AUDIT_LOG_SEARCH_INDEXES: &str = "m20261127_000006_add_audit_log_search_indexes";

/// Table in which the standalone [`Migrator`] records the migrations it applied.
///
/// It is not `seaql_migrations` because an application's own `Migrator` refuses to run when that
/// table lists a migration it does not know ("Migration file of version ... is missing").
pub const MIGRATION_TABLE: &str = "seaql_migrations_audit";

/// Runs only the audit migrations, for applications that do not merge [`migrations()`] into their
/// own `Migrator`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        migrations()
    }

    fn migration_table_name() -> DynIden {
        MIGRATION_TABLE.into_iden()
    }
}

/// The audit migrations, oldest first, to append to an application's own
/// `MigratorTrait::migrations`.
///
/// sea-orm-migration applies pending migrations in list order, not name order.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(m20261127_000001_create_audit_log::Migration),
        Box::new(m20261127_000002_create_login_attempt::Migration),
        Box::new(m20261127_000003_create_data_export::Migration),
        Box::new(m20261127_000004_create_system_event::Migration),
        Box::new(m20261127_000005_create_audit_lock::Migration),
        Box::new(m20261127_000006_add_audit_log_search_indexes::Migration),
    ]
}

// The helpers below are part of every migration above: changing them changes what an
// already-published migration creates, so add new helpers instead.

/// A non-null column for a SeaORM `DateTimeUtc`.
///
/// sea-query's timestamp-with-time-zone is `timestamp` on MySQL/MariaDB: whole seconds, a range
/// that ends in 2038, and values shifted by the session time zone. `DATETIME(6)` keeps
/// microseconds and stores the UTC value sqlx writes unchanged.
fn timestamp_utc(backend: DbBackend, col: impl IntoIden) -> ColumnDef {
    let mut def = timestamp_utc_null(backend, col);
    def.not_null();
    def
}

/// A nullable column for a SeaORM `Option<DateTimeUtc>`; see [`timestamp_utc`].
fn timestamp_utc_null(backend: DbBackend, col: impl IntoIden) -> ColumnDef {
    let mut def = ColumnDef::new(col);
    if backend == DbBackend::MySql {
        def.custom("DATETIME(6)");
    } else {
        def.timestamp_with_time_zone();
    }
    def.null();
    def
}

/// Forces utf8mb4 on MySQL/MariaDB, whose default character set may be latin1 or 3-byte utf8:
/// there a user agent or JSON value with an emoji would be rejected, and a rejected audit row
/// fails the caller's write. The index key budget (3072 bytes) is computed for 4 bytes per
/// character.
fn utf8mb4(backend: DbBackend, table: &mut TableCreateStatement) {
    if backend == DbBackend::MySql {
        table.character_set("utf8mb4");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use sea_orm_migration::sea_orm::DbBackend;

    type Statements = (TableCreateStatement, Vec<IndexCreateStatement>);

    fn all(backend: DbBackend) -> Vec<Statements> {
        vec![
            (
                m20261127_000001_create_audit_log::create_table(backend),
                m20261127_000001_create_audit_log::create_indexes(),
            ),
            (
                m20261127_000002_create_login_attempt::create_table(backend),
                m20261127_000002_create_login_attempt::create_indexes(),
            ),
            (
                m20261127_000003_create_data_export::create_table(backend),
                m20261127_000003_create_data_export::create_indexes(),
            ),
            (
                m20261127_000004_create_system_event::create_table(backend),
                m20261127_000004_create_system_event::create_indexes(),
            ),
        ]
    }

    fn render(backend: DbBackend) -> Vec<(String, Vec<String>)> {
        all(backend)
            .iter()
            .map(|(table, indexes)| {
                (
                    backend.build(table).to_string(),
                    indexes
                        .iter()
                        .map(|index| backend.build(index).to_string())
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn names_are_the_published_ones_in_order() {
        let names: Vec<String> = migrations().iter().map(|m| m.name().to_owned()).collect();
        assert_eq!(
            names,
            [
                CREATE_AUDIT_LOG,
                CREATE_LOGIN_ATTEMPT,
                CREATE_DATA_EXPORT,
                CREATE_SYSTEM_EVENT,
                CREATE_AUDIT_LOCK,
                ADD_AUDIT_LOG_SEARCH_INDEXES
            ]
        );
        assert_eq!(CREATE_AUDIT_LOG, "m20261127_000001_create_audit_log");
        assert!(names.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn sqlite_id_is_a_rowid_alias() {
        for (table, _) in render(DbBackend::Sqlite) {
            assert!(
                table.contains(r#""id" integer NOT NULL PRIMARY KEY AUTOINCREMENT"#),
                "{table}"
            );
        }
    }

    #[test]
    fn mysql_timestamps_keep_microseconds() {
        for (table, _) in render(DbBackend::MySql) {
            assert!(table.contains("DATETIME(6)"), "{table}");
            assert!(!table.contains("timestamp"), "{table}");
            assert!(table.ends_with("DEFAULT CHARSET=utf8mb4"), "{table}");
        }
    }

    #[test]
    fn index_names_are_unique_and_prefixed() {
        let tables = ["audit_log", "login_attempt", "data_export", "system_event"];
        let mut names = Vec::new();
        for (table, (_, indexes)) in tables.iter().zip(all(DbBackend::Postgres)) {
            for index in indexes {
                let name = index.get_index_spec().get_name().unwrap_or_default();
                let sql = DbBackend::Postgres.build(&index).to_string();
                assert!(name.starts_with(&format!("idx_{table}_")), "{name}");
                assert!(sql.contains(&format!(r#"ON "{table}""#)), "{sql}");
                // PostgreSQL truncates identifiers at 63 bytes, MySQL rejects them past 64.
                assert!(name.len() <= 63, "{name}");
                names.push(name.to_owned());
            }
        }
        for index in m20261127_000006_add_audit_log_search_indexes::create_indexes() {
            let name = index.get_index_spec().get_name().unwrap_or_default();
            assert!(
                name.starts_with("idx_audit_log_") && name.len() <= 63,
                "{name}"
            );
            names.push(name.to_owned());
        }
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count);
    }

    #[test]
    fn no_foreign_keys() {
        for backend in [DbBackend::MySql, DbBackend::Postgres, DbBackend::Sqlite] {
            for (table, _) in render(backend) {
                assert!(!table.contains("REFERENCES"), "{table}");
            }
        }
    }
}
