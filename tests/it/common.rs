//! Helpers shared by the integration tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryOrder, Statement,
};
use sea_orm_audit::entity::audit_log;
use serde_json::Value;

pub use sea_orm_audit_tests::fixtures::article::titled as art;

/// A clone of `db` that counts every statement it runs, and the count.
pub fn counting(db: &DatabaseConnection) -> (DatabaseConnection, Arc<AtomicUsize>) {
    let statements = Arc::new(AtomicUsize::new(0));
    let mut counted = db.clone();
    let counter = Arc::clone(&statements);
    counted.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    (counted, statements)
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

/// The server's id of the session `db` runs on (PostgreSQL or MySQL): call it on a
/// transaction, which holds one session.
pub async fn session_id<C: ConnectionTrait>(db: &C) -> Result<i64, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT pg_backend_pid()::bigint AS id",
        _ => "SELECT CAST(CONNECTION_ID() AS SIGNED) AS id",
    };
    let row = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await?
        .ok_or_else(|| DbErr::Custom("no session id".into()))?;
    row.try_get("", "id")
}

/// How many sessions wait for a lock that session `holder` holds (PostgreSQL or MySQL).
async fn waiting_on<C: ConnectionTrait>(db: &C, holder: i64) -> Result<i64, DbErr> {
    let backend = db.get_database_backend();
    let stmt = match backend {
        DbBackend::Postgres => Statement::from_sql_and_values(
            backend,
            "SELECT count(*)::bigint AS n FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND $1 = ANY(pg_blocking_pids(pid))",
            [(holder as i32).into()],
        ),
        _ => Statement::from_sql_and_values(
            backend,
            "SELECT CAST(COUNT(*) AS SIGNED) AS n \
             FROM information_schema.INNODB_LOCK_WAITS w \
             JOIN information_schema.INNODB_TRX waiting ON waiting.trx_id = w.requesting_trx_id \
             JOIN information_schema.INNODB_TRX holding ON holding.trx_id = w.blocking_trx_id \
             WHERE waiting.trx_state = 'LOCK WAIT' AND holding.trx_mysql_thread_id = ?",
            [holder.into()],
        ),
    };
    let row = db
        .query_one_raw(stmt)
        .await?
        .ok_or_else(|| DbErr::Custom("no count".into()))?;
    row.try_get("", "n")
}

/// Waits until some session waits for a lock that session `holder` holds, polling a
/// bounded number of times; an error if `gave_up` says the waiter finished first or it
/// never waits. MariaDB refreshes INNODB_TRX only when it was last read more than
/// 0.1 s earlier, so it is polled slower.
pub async fn until_waiting_on<C: ConnectionTrait>(
    db: &C,
    holder: i64,
    gave_up: impl Fn() -> bool,
) -> Result<(), DbErr> {
    let mysql = db.get_database_backend() == DbBackend::MySql;
    let pause = std::time::Duration::from_millis(if mysql { 250 } else { 50 });
    for _ in 0..150 {
        if waiting_on(db, holder).await? > 0 {
            return Ok(());
        }
        if gave_up() {
            return Err(DbErr::Custom(
                "the waiter finished without waiting for the lock".into(),
            ));
        }
        tokio::time::sleep(pause).await;
    }
    Err(DbErr::Custom("no session ever waited for the lock".into()))
}
