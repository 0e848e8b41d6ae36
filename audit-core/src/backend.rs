//! The SQL that differs between SQLite, PostgreSQL and MySQL/MariaDB, in one place:
//! day bucketing for summaries, placeholders for hand-written statements, and the
//! per-key lock that serialises brute-force bookkeeping.

use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use sha2::{Digest, Sha256};

use crate::error::AuditError;

/// Table of pre-created lock rows used on MySQL/MariaDB (see [`lock_keys`]).
pub(crate) const LOCK_TABLE: &str = "audit_lock";
/// Number of rows in [`LOCK_TABLE`]; keys are hashed onto them.
pub(crate) const LOCK_SLOTS: i64 = 256;
/// The migration that creates [`LOCK_TABLE`].
pub(crate) const LOCK_MIGRATION: &str = "m20261127_000005_create_audit_lock";

/// A short name of `backend`, for keying what is built per backend.
pub(crate) fn name(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "postgres",
        DbBackend::MySql => "mysql",
        DbBackend::Sqlite => "sqlite",
        _ => "other",
    }
}

/// Clamps a timestamp used as a query bound to what the backend's driver binds
/// correctly. sqlx binds `DateTime<Utc>` to MySQL/MariaDB as a TIMESTAMP, whose range
/// is 1970-01-01 00:00:01 to 2038-01-19 03:14:07 UTC (outside it the comparison silently
/// matches nothing, and a year outside 0 to 65535 cannot even be encoded: the connection
/// waited forever); PostgreSQL and SQLite get years 1 to 9999. Clamping a bound to the
/// range of storable values changes no answer.
pub(crate) fn clamp_ts(
    backend: DbBackend,
    t: chrono::DateTime<chrono::Utc>,
) -> chrono::DateTime<chrono::Utc> {
    let (min, max) = match backend {
        DbBackend::MySql => (1, 2_147_483_647),
        _ => (-62_135_596_800, 253_402_300_799),
    };
    let secs = t.timestamp();
    if secs < min {
        chrono::DateTime::from_timestamp(min, 0).unwrap_or(t)
    } else if secs > max {
        chrono::DateTime::from_timestamp(max, 0).unwrap_or(t)
    } else {
        t
    }
}

/// `YYYY-MM-DD` (UTC) of a `created_at` column, as text.
///
/// SQLite stores `DateTimeUtc` as RFC 3339 text with a `+00:00` offset, so the first
/// ten characters are the UTC date; MySQL's `DATETIME(6)` holds the UTC value as
/// written; PostgreSQL's `timestamptz` is converted explicitly.
pub(crate) fn utc_day(backend: DbBackend, column: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"),
        DbBackend::MySql => format!("DATE_FORMAT({column}, '%Y-%m-%d')"),
        _ => format!("substr({column}, 1, 10)"),
    }
}

/// Builds a statement from SQL written with `?` placeholders, numbering them for
/// PostgreSQL. The SQL must not contain `?` anywhere else.
pub(crate) fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DbBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 16);
        let mut n = 0;
        for ch in sql.chars() {
            if ch == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(ch);
            }
        }
        out
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// A stable 63-bit hash of a lock name, the same in every process.
pub(crate) fn key_hash(name: &str) -> i64 {
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(bytes) >> 1) as i64
}

/// Takes exclusive locks on `names` until the end of the current transaction, so that
/// concurrent callers with an overlapping name run one after the other.
///
/// `db` must be a transaction (a savepoint inside the caller's transaction is fine:
/// the locks then last until the caller's commit, which is what keeps a counted row
/// visible to the next caller).
///
/// - PostgreSQL: `pg_advisory_xact_lock`, released at transaction end by the server.
/// - MySQL/MariaDB: `SELECT … FOR UPDATE` on pre-created rows of `audit_lock`. Named
///   locks (`GET_LOCK`) are not used because they belong to the pooled session, not to
///   the transaction: one left behind by a cancelled future would leak to the next user
///   of the connection.
/// - SQLite: a write that touches no row, which takes the database write lock (SQLite
///   has one writer at a time) before anything is read.
pub(crate) async fn lock_keys<C: ConnectionTrait>(
    db: &C,
    names: &[String],
) -> Result<(), AuditError> {
    if names.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let mut keys: Vec<i64> = names.iter().map(|n| key_hash(n)).collect();
    match backend {
        DbBackend::Postgres => {
            // Sorted, so two callers locking the same pair never wait on each other in
            // opposite orders.
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                db.execute_raw(statement(
                    backend,
                    "SELECT pg_advisory_xact_lock(?)",
                    vec![key.into()],
                ))
                .await?;
            }
        }
        DbBackend::MySql => {
            let mut slots: Vec<i64> = keys.iter().map(|k| k % LOCK_SLOTS).collect();
            slots.sort_unstable();
            slots.dedup();
            let marks = vec!["?"; slots.len()].join(", ");
            let sql = format!(
                "SELECT slot FROM {LOCK_TABLE} WHERE slot IN ({marks}) ORDER BY slot FOR UPDATE"
            );
            let want = slots.len();
            let rows = db
                .query_all_raw(statement(
                    backend,
                    &sql,
                    slots.into_iter().map(Value::from).collect(),
                ))
                .await
                .map_err(missing_lock_table)?;
            if rows.len() != want {
                return Err(AuditError::MissingTable {
                    table: LOCK_TABLE,
                    migration: LOCK_MIGRATION,
                });
            }
        }
        _ => {
            db.execute_unprepared("UPDATE login_attempt SET status = status WHERE id = -1")
                .await?;
        }
    }
    Ok(())
}

/// Makes `select` a current read where the backend needs it: on MySQL/MariaDB a plain
/// SELECT inside a REPEATABLE READ transaction reads an old snapshot and would miss
/// rows committed by the caller that held the lock before us.
pub(crate) fn current_read<E: sea_orm::EntityTrait>(
    backend: DbBackend,
    select: sea_orm::Select<E>,
) -> sea_orm::Select<E> {
    use sea_orm::QuerySelect;
    if backend == DbBackend::MySql {
        select.lock_shared()
    } else {
        select
    }
}

fn missing_lock_table(err: sea_orm::DbErr) -> AuditError {
    let msg = err.to_string();
    if msg.contains(LOCK_TABLE) && msg.contains("doesn't exist") {
        AuditError::MissingTable {
            table: LOCK_TABLE,
            migration: LOCK_MIGRATION,
        }
    } else {
        AuditError::Db(err)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn postgres_placeholders_are_numbered() {
        let s = statement(
            DbBackend::Postgres,
            "a = ? AND b = ?",
            vec![1i64.into(), 2i64.into()],
        );
        assert_eq!(s.sql, "a = $1 AND b = $2");
        let s = statement(DbBackend::MySql, "a = ?", vec![1i64.into()]);
        assert_eq!(s.sql, "a = ?");
    }

    #[test]
    fn bounds_are_clamped_per_backend() {
        use chrono::{DateTime, Datelike, Utc};
        let (lo, hi) = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
        assert_eq!(clamp_ts(DbBackend::MySql, lo).year(), 1970);
        assert_eq!(clamp_ts(DbBackend::MySql, hi).year(), 2038);
        assert_eq!(clamp_ts(DbBackend::Postgres, lo).year(), 1);
        assert_eq!(clamp_ts(DbBackend::Sqlite, hi).year(), 9999);
        let now = Utc::now();
        assert_eq!(clamp_ts(DbBackend::MySql, now), now);
    }

    #[test]
    fn key_hash_is_stable_and_positive() {
        // The first 8 bytes of SHA-256, big-endian, shifted right once; computed outside
        // Rust (Python's hashlib). Pinned because processes of different builds must
        // agree on a lock key: a change here splits one lock into two.
        assert_eq!(key_hash("login:user:ada"), 3_467_864_401_762_202_768); // 6040a899…
        assert_eq!(key_hash("x"), 1_637_211_439_935_739_938); // 2d711642…
        // Digests with the top bit set: the shift keeps them positive.
        assert_eq!(key_hash("login:user:bob"), 6_514_903_978_234_244_776); // b4d32d4d…
        assert_eq!(key_hash(""), 8_203_414_616_412_130_826); // e3b0c442…
    }
}
