//! An auditing connection: every write SeaORM makes through it on an audited table is
//! recorded, including the bulk paths that run no hooks.
//!
//! SeaORM's hooks run only for `ActiveModel::insert/update/save/delete`;
//! `insert_many`, `update_many`, `delete_many`, `delete_by_id`, `exec_without_returning`
//! and the link/unlink of many-to-many cascades run none. [`AuditedConnection`] (and
//! the [`AuditedTransaction`]s it begins) implement `ConnectionTrait` and see every
//! statement. For INSERT, UPDATE and DELETE on a registered audited table they read
//! the rows' before-images (with `FOR UPDATE` on PostgreSQL and MariaDB), run the
//! statement, read the after-images and write one audit row per affected object, with
//! the same content the hooks would write, in the same transaction. On PostgreSQL
//! the write and the INSERT of its audit rows are usually one statement, with the rows
//! built in SQL (see [`WrapperOptions::one_statement`]). Elsewhere, when the caller
//! asked for rows back or deleted one row by key, a DELETE where the server has
//! `DELETE ... RETURNING` reads its before-images from the DELETE itself, and on
//! SQLite a queried UPDATE and the SELECT of its before-images are one call. On a plain
//! [`AuditedConnection`] each audited write runs in a transaction of its own, so the
//! change and its rows always commit together.
//!
//! Through the wrapper the derived hooks stand aside (they only register their
//! entity), so a change is never recorded twice.
//!
//! Raw SQL that writes to an audited table cannot be audited row by row and is refused
//! with [`AuditError::Unauditable`](crate::AuditError::Unauditable);
//! [`AuditedConnection::execute_unaudited`] runs such a statement anyway and records one
//! statement-level row naming it and the reason.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, IsolationLevel, QueryResult, Statement, StatementBuilder, TransactionError,
    TransactionOptions, TransactionSession, TransactionTrait, Value,
};
use serde_json::json;

use crate::config::{self, AuditConfig};
use crate::context::{self, RequestContext};
use crate::error::AuditError;
use crate::hooks::{CREATE, DELETE, UPDATE};
use crate::inline::Write;
use crate::registry::{self, OLD, TableAuditor, key_of};
use crate::sqlscan::{self, Kind, Scan};
use crate::writer::{self, AuditEntry};

/// The table whose mention makes an auditing transaction write its pending rows first.
const AUDIT_LOG_TABLE: &str = "audit_log";

/// Action word of a statement-level row written by `execute_unaudited`.
pub const STATEMENT: &str = "STATEMENT";

/// Settings of an auditing connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WrapperOptions {
    /// When a single statement affects more rows than this, write one summary row for
    /// the statement instead of one row per object. `None` (the default) always writes
    /// one row per object.
    pub summary_over: Option<usize>,
    /// PostgreSQL: send an audited write and the INSERT of its audit rows as one
    /// statement, with the rows built in SQL (on by default). Tables whose rows SQL
    /// cannot build exactly as Rust does (a recorded float, decimal or array column, a
    /// composite key, a many-to-many junction) and summary rows always take the
    /// other path, which reads images in Rust and, in an [`AuditedTransaction`],
    /// writes the rows together at commit.
    pub one_statement: bool,
}

impl Default for WrapperOptions {
    fn default() -> Self {
        Self {
            summary_over: None,
            one_statement: true,
        }
    }
}

impl WrapperOptions {
    /// Writes one summary row for statements affecting more than `rows` rows.
    pub fn summary_over(mut self, rows: usize) -> Self {
        self.summary_over = Some(rows);
        self
    }

    /// Turns PostgreSQL's one-statement path on (the default) or off; see
    /// [`one_statement`](Self::one_statement).
    pub fn one_statement(mut self, on: bool) -> Self {
        self.one_statement = on;
        self
    }
}

/// A `DatabaseConnection` whose writes to audited tables are audited, bulk paths included.
///
/// ```
/// # use sea_orm_audit::doc_fixtures::{setup, post};
/// use sea_orm::{ActiveValue::Set, EntityTrait, QueryFilter, ColumnTrait};
/// use sea_orm_audit::AuditedConnection;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sea_orm::DbErr> {
/// # let db = setup().await?;
/// sea_orm_audit::register::<post::Entity>();
/// let db = AuditedConnection::new(db);
/// post::Entity::insert_many([
///     post::ActiveModel { title: Set("a".into()), ..Default::default() },
///     post::ActiveModel { title: Set("b".into()), ..Default::default() },
/// ]).exec(&db).await?;
/// post::Entity::delete_many().filter(post::Column::Title.eq("a")).exec(&db).await?;
/// let trail = sea_orm_audit::entity::audit_log::Entity::find().all(&db).await?;
/// assert_eq!(trail.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), ["CREATE", "CREATE", "DELETE"]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct AuditedConnection {
    inner: DatabaseConnection,
    shared: Arc<Shared>,
}

/// What an auditing connection and the transactions begun on it share.
#[derive(Debug)]
struct Shared {
    options: WrapperOptions,
    /// Whether `DELETE ... RETURNING` works on this server: PostgreSQL and SQLite have
    /// it, and on MySQL's protocol only MariaDB does; asked of the server once.
    delete_returning: OnceLock<bool>,
}

/// A transaction begun on an [`AuditedConnection`]; audits like its connection.
#[derive(Debug)]
pub struct AuditedTransaction {
    inner: DatabaseTransaction,
    shared: Arc<Shared>,
    /// Audit rows recorded in this transaction and not yet written. They are written
    /// together at commit (or before anything reads `audit_log` through this
    /// transaction), which saves one round trip per audited write; rolled back, they
    /// go with the changes they describe. PostgreSQL's one-statement path writes its
    /// rows with the statement and leaves none here.
    pending: Mutex<Vec<Pending>>,
    /// MySQL has no RETURNING, so after an audited single-row INSERT or UPDATE both the
    /// audit (for the after-image) and SeaORM (for the model it returns) read the row
    /// back. The audit's read is kept here, and SeaORM's identical read, which comes
    /// next, is answered from it: the row is locked or not yet committed, in this
    /// transaction, so the database would return the same values. Any other
    /// statement discards it.
    read_back: Mutex<Option<ReadBack>>,
    /// Set when a change made through this transaction may have no audit row: writing
    /// the pending rows failed or was cancelled, or an audited flow stopped between its
    /// write and the recording of its rows. Commit then refuses and rolls back, because
    /// on MySQL and SQLite a failed statement does not end the transaction, and a
    /// caller that went on would otherwise commit the change without its rows.
    unrecorded: AtomicBool,
    /// Set, for this transaction and every one nested in it or around it, once MySQL
    /// has rolled the whole transaction back (a deadlock): every later statement is
    /// refused, since MySQL would run it outside any transaction.
    ended: Arc<AtomicBool>,
}

/// Sets a transaction's `unrecorded` flag if dropped before [`Unrecorded::done`] (an
/// error, or the future holding it was cancelled), and, when given `wrote`, only if
/// that says a change was written.
struct Unrecorded<'a> {
    flag: &'a AtomicBool,
    wrote: Option<&'a AtomicBool>,
    armed: bool,
}

impl<'a> Unrecorded<'a> {
    fn new(flag: &'a AtomicBool, wrote: Option<&'a AtomicBool>) -> Self {
        Self {
            flag,
            wrote,
            armed: true,
        }
    }

    fn done(mut self) {
        self.armed = false;
    }
}

impl Drop for Unrecorded<'_> {
    fn drop(&mut self) {
        if self.armed && self.wrote.is_none_or(|w| w.load(Ordering::SeqCst)) {
            self.flag.store(true, Ordering::SeqCst);
        }
    }
}

/// A row read by the audit, and the statement SeaORM will read it back with.
#[derive(Debug)]
struct ReadBack {
    sql: String,
    values: Vec<Value>,
    row: QueryResult,
}

#[derive(Debug)]
struct Pending {
    entry: AuditEntry,
    ctx: Option<Arc<RequestContext>>,
    at: DateTime<Utc>,
}

impl AuditedConnection {
    /// Wraps a connection with the default options.
    pub fn new(inner: DatabaseConnection) -> Self {
        Self::with_options(inner, WrapperOptions::default())
    }

    /// Wraps a connection.
    pub fn with_options(inner: DatabaseConnection, options: WrapperOptions) -> Self {
        Self {
            inner,
            shared: Arc::new(Shared {
                options,
                delete_returning: OnceLock::new(),
            }),
        }
    }

    /// The wrapped connection. Writes made on it directly are audited by hooks only.
    pub fn inner(&self) -> &DatabaseConnection {
        &self.inner
    }

    /// Unwraps the connection.
    pub fn into_inner(self) -> DatabaseConnection {
        self.inner
    }

    /// Runs a statement the auditing connection would refuse (raw SQL writing to an
    /// audited table) and records one statement-level row per audited table it names,
    /// with the SQL, the number of affected rows and `reason`, in one transaction.
    pub async fn execute_unaudited(
        &self,
        stmt: Statement,
        reason: &str,
    ) -> Result<ExecResult, DbErr> {
        let txn = self.inner.begin().await?;
        let res = statement_level(&txn, &Sink::Direct, stmt, reason).await?;
        txn.commit().await?;
        Ok(res)
    }

    async fn before_statement(&self, _sql: &str) -> Result<(), DbErr> {
        Ok(())
    }

    async fn before_nested(&self) -> Result<(), DbErr> {
        Ok(())
    }

    /// A transaction begun here starts a chain of its own.
    fn chain(&self) -> Arc<AtomicBool> {
        Arc::new(AtomicBool::new(false))
    }

    /// Each audited statement runs in a transaction of its own: nothing to remember.
    fn after_error(&self, _e: &DbErr) {}

    async fn run(&self, stmt: Statement, call: Call, origin: Origin) -> Result<Outcome, DbErr> {
        match decide(&stmt, origin)? {
            Decision::Pass => passthrough(&self.inner, stmt, call).await,
            Decision::Audit(plan) => {
                // A single statement is atomic by itself: no transaction needed.
                if let Some(one) = one_statement(&stmt, call, &plan, &self.shared.options) {
                    return run_one(&self.inner, one, call).await;
                }
                let txn = self.inner.begin().await?;
                let out = audit(&txn, &Sink::Direct, stmt, call, *plan, &self.shared).await?;
                txn.commit().await?;
                Ok(out)
            }
        }
    }
}

impl AuditedTransaction {
    /// The wrapped transaction. Statements run on it directly are not audited, and
    /// this auditing transaction does not see them: a row it kept for SeaORM's next
    /// read-back (MySQL, see the field docs) is dropped here for that reason.
    pub fn inner(&self) -> &DatabaseTransaction {
        self.take_read_back();
        &self.inner
    }

    /// [`AuditedConnection::execute_unaudited`] inside this transaction.
    pub async fn execute_unaudited(
        &self,
        stmt: Statement,
        reason: &str,
    ) -> Result<ExecResult, DbErr> {
        self.still_open()?;
        self.take_read_back();
        self.flush().await?;
        // Its row is written at once, through a sink only so that a failure or a
        // cancellation after the statement marks the transaction.
        let wrote = AtomicBool::new(false);
        let sink = self.sink(&wrote);
        let guard = Unrecorded::new(&self.unrecorded, Some(&wrote));
        let res = statement_level(&self.inner, &sink, stmt, reason)
            .await
            .inspect_err(|e| self.after_error(e))?;
        guard.done();
        Ok(res)
    }

    /// Writes the audit rows recorded so far in this transaction. Commit does this by
    /// itself, and so does any statement that names `audit_log` through this
    /// transaction, so that reads see every row; call it only to write them earlier.
    ///
    /// If writing them fails (or this call is cancelled), they are lost to this
    /// transaction, and [`AuditedTransaction::commit`] refuses with
    /// [`AuditError::Unrecorded`] and rolls back.
    pub async fn flush(&self) -> Result<(), DbErr> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if pending.is_empty() {
            return Ok(());
        }
        let guard = Unrecorded::new(&self.unrecorded, None);
        let rows: Vec<writer::Stamped<'_>> = pending
            .iter()
            .map(|p| writer::Stamped {
                entry: &p.entry,
                ctx: p.ctx.as_deref(),
                at: p.at,
            })
            .collect();
        writer::write_stamped(&self.inner, &rows)
            .await
            .map_err(DbErr::from)
            .inspect_err(|e| self.after_error(e))?;
        guard.done();
        Ok(())
    }

    /// A savepoint begun now must not end up holding rows recorded before it.
    async fn before_nested(&self) -> Result<(), DbErr> {
        self.still_open()?;
        self.take_read_back();
        self.flush().await
    }

    /// The sink of this transaction's flows; `wrote` records whether a flow's write
    /// was sent.
    fn sink<'a>(&'a self, wrote: &'a AtomicBool) -> Sink<'a> {
        Sink::Buffer {
            pending: &self.pending,
            read_back: &self.read_back,
            wrote,
        }
    }

    /// A transaction nested in this one shares its `ended` flag.
    fn chain(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.ended)
    }

    /// [`AuditError::Unrecorded`] once MySQL has rolled the transaction back.
    fn still_open(&self) -> Result<(), DbErr> {
        if self.ended.load(Ordering::SeqCst) {
            return Err(AuditError::Unrecorded.into());
        }
        Ok(())
    }

    fn take_read_back(&self) -> Option<ReadBack> {
        self.read_back
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    async fn before_statement(&self, sql: &str) -> Result<(), DbErr> {
        self.still_open()?;
        self.take_read_back();
        let any = !self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if any && sql.contains(AUDIT_LOG_TABLE) {
            self.flush().await?;
        }
        Ok(())
    }

    async fn run(&self, stmt: Statement, call: Call, origin: Origin) -> Result<Outcome, DbErr> {
        if let Some(kept) = self.take_read_back()
            && call == Call::One
            && kept.sql == stmt.sql
            && kept.values == values_of(&stmt)
        {
            return Ok(Outcome::One(Some(kept.row)));
        }
        self.before_statement(&stmt.sql).await?;
        let out = match decide(&stmt, origin)? {
            Decision::Pass => passthrough(&self.inner, stmt, call).await,
            Decision::Audit(plan) => {
                let wrote = AtomicBool::new(false);
                let sink = self.sink(&wrote);
                // An error or a cancellation after the write leaves the change without
                // its rows: the guard marks the transaction.
                let guard = Unrecorded::new(&self.unrecorded, Some(&wrote));
                let out = audit(&self.inner, &sink, stmt, call, *plan, &self.shared).await;
                if out.is_ok() {
                    guard.done();
                }
                out
            }
        };
        out.inspect_err(|e| self.after_error(e))
    }

    /// After a deadlock MySQL has rolled back the whole transaction, savepoints and
    /// all, and runs later statements outside it: the pending rows describe undone
    /// changes and are dropped, and this transaction, the ones around it and the ones
    /// in it refuse every later statement and their commit. (PostgreSQL refuses every
    /// statement after an error until the transaction or savepoint ends, so a commit
    /// there fails by itself.)
    fn after_error(&self, e: &DbErr) {
        if self.get_database_backend() == DbBackend::MySql && ends_the_transaction(e) {
            self.ended.store(true, Ordering::SeqCst);
            self.unrecorded.store(true, Ordering::SeqCst);
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        }
    }
}

// === what to do with a statement ===

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Execute,
    One,
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// Built by SeaORM's typed API (sea-query), so its shape is known.
    Typed,
    /// Raw SQL from the application.
    Raw,
}

enum Outcome {
    Exec(ExecResult),
    One(Option<QueryResult>),
    All(Vec<QueryResult>),
}

// Each flow answers in the shape of the call it was given; these unwrap that shape.
impl Outcome {
    fn mismatch() -> DbErr {
        DbErr::Custom(format!(
            "{}outcome does not match the call",
            crate::error::ERROR_PREFIX
        ))
    }

    fn exec(self) -> Result<ExecResult, DbErr> {
        match self {
            Outcome::Exec(r) => Ok(r),
            _ => Err(Self::mismatch()),
        }
    }

    fn one(self) -> Result<Option<QueryResult>, DbErr> {
        match self {
            Outcome::One(r) => Ok(r),
            Outcome::All(rows) => Ok(rows.into_iter().next()),
            Outcome::Exec(_) => Err(Self::mismatch()),
        }
    }

    fn all(self) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            Outcome::All(r) => Ok(r),
            Outcome::One(r) => Ok(r.into_iter().collect()),
            Outcome::Exec(_) => Err(Self::mismatch()),
        }
    }
}

struct Plan {
    auditor: Arc<dyn TableAuditor>,
    scan: Arc<Scan>,
    cfg: Arc<AuditConfig>,
}

enum Decision {
    Pass,
    Audit(Box<Plan>),
}

fn unauditable(table: String, reason: &'static str) -> DbErr {
    AuditError::Unauditable { table, reason }.into()
}

fn decide(stmt: &Statement, origin: Origin) -> Result<Decision, DbErr> {
    if context::is_suppressed() {
        return Ok(Decision::Pass);
    }
    let cfg = config::current();
    if !cfg.is_enabled() {
        return Ok(Decision::Pass);
    }
    let scan = sqlscan::scan_cached(&stmt.sql, stmt.db_backend);
    let audited = |t: &str| !cfg.is_table_skipped(t) && registry::is_registered(t);
    match (scan.kind, origin) {
        (Kind::Read, _) => Ok(Decision::Pass),
        (Kind::OtherWrite, _) | (_, Origin::Raw) => {
            let table = scan
                .names
                .iter()
                .filter_map(|n| registry::registered_name(n))
                .find(|t| !cfg.is_table_skipped(t));
            match table {
                Some(table) => Err(unauditable(
                    table,
                    "raw SQL writing to an audited table cannot be audited row by row; use SeaORM's typed API or execute_unaudited",
                )),
                None => Ok(Decision::Pass),
            }
        }
        (kind, Origin::Typed) => {
            let Some(table) = scan.table.clone() else {
                return Ok(Decision::Pass);
            };
            let action = match kind {
                Kind::Insert => CREATE,
                Kind::Update => UPDATE,
                _ => DELETE,
            };
            if !audited(&table) || cfg.is_action_skipped(action) {
                return Ok(Decision::Pass);
            }
            let Some(auditor) = registry::lookup(&table) else {
                return Ok(Decision::Pass);
            };
            if scan.conflict_clause {
                return Err(unauditable(
                    table,
                    "upserts (ON CONFLICT / ON DUPLICATE KEY / INSERT IGNORE) on an audited table are not audited; insert and update separately",
                ));
            }
            Ok(Decision::Audit(Box::new(Plan { auditor, scan, cfg })))
        }
    }
}

/// PostgreSQL: the write and the INSERT of its audit rows as one statement, when this
/// table's audit rows can be built in SQL (see [`crate::inline`]); `None` sends the
/// write down the flows below. The audit rows are written at once, not buffered.
fn one_statement(
    stmt: &Statement,
    call: Call,
    plan: &Plan,
    opts: &WrapperOptions,
) -> Option<Statement> {
    // A summary row needs the row count before it is written.
    if stmt.db_backend != DbBackend::Postgres || !opts.one_statement || opts.summary_over.is_some()
    {
        return None;
    }
    let write = match plan.scan.kind {
        Kind::Insert => Write::Insert,
        Kind::Update => Write::Update,
        Kind::Delete => Write::Delete,
        _ => return None,
    };
    let query = call != Call::Execute;
    // A query without RETURNING, or an UPDATE of a key, is refused by the flows below.
    if query && plan.scan.returning_at.is_none() {
        return None;
    }
    let keys = plan.auditor.key_columns();
    if write == Write::Update
        && plan
            .scan
            .set_columns
            .iter()
            .any(|c| keys.contains(&c.as_str()))
    {
        return None;
    }
    crate::inline::statement(
        plan.auditor.as_ref(),
        stmt,
        &plan.scan,
        write,
        query,
        &plan.cfg,
    )
}

/// Runs a [`one_statement`]. An `execute` answers with the final SELECT's row count,
/// which is the number of rows the write changed.
async fn run_one<C: ConnectionTrait>(
    db: &C,
    stmt: Statement,
    call: Call,
) -> Result<Outcome, DbErr> {
    let out = match call {
        Call::Execute => db.execute_raw(stmt).await.map(Outcome::Exec),
        _ => db
            .query_all_raw(stmt)
            .await
            .map(|rows| returned(call, rows)),
    };
    out.map_err(crate::inline::map_err)
}

async fn passthrough<C: ConnectionTrait>(
    db: &C,
    stmt: Statement,
    call: Call,
) -> Result<Outcome, DbErr> {
    Ok(match call {
        Call::Execute => Outcome::Exec(db.execute_raw(stmt).await?),
        Call::One => Outcome::One(db.query_one_raw(stmt).await?),
        Call::All => Outcome::All(db.query_all_raw(stmt).await?),
    })
}

// === the audited flows ===

async fn audit<C: ConnectionTrait>(
    db: &C,
    sink: &Sink<'_>,
    stmt: Statement,
    call: Call,
    plan: Plan,
    shared: &Shared,
) -> Result<Outcome, DbErr> {
    if let Some(one) = one_statement(&stmt, call, &plan, &shared.options) {
        return run_one(db, one, call).await;
    }
    match plan.scan.kind {
        Kind::Insert => insert(db, sink, stmt, call, &plan).await,
        Kind::Update => update(db, sink, stmt, call, &plan, &shared.options).await,
        _ => delete(db, sink, stmt, call, &plan, shared).await,
    }
}

/// Where a flow's audit rows go: straight to the database, or into the pending rows of
/// an auditing transaction.
enum Sink<'a> {
    Direct,
    Buffer {
        pending: &'a Mutex<Vec<Pending>>,
        read_back: &'a Mutex<Option<ReadBack>>,
        /// Set once the flow's write has been made (see `AuditedTransaction::unrecorded`).
        wrote: &'a AtomicBool,
    },
}

impl Sink<'_> {
    /// Runs a flow's write statement. From the moment it is sent the change may exist
    /// (a cancelled call can still run on the server), so the flow's rows must follow;
    /// only an error from the statement itself says it changed nothing, as a failed
    /// statement is undone by the database (a deadlock, which undoes the whole
    /// transaction, is handled by `AuditedTransaction::after_error`). (A direct sink
    /// runs in a transaction of its own, which an error or cancellation rolls back.)
    async fn write<T>(
        &self,
        statement: impl std::future::Future<Output = Result<T, DbErr>>,
    ) -> Result<T, DbErr> {
        let Sink::Buffer { wrote, .. } = self else {
            return statement.await;
        };
        wrote.store(true, Ordering::SeqCst);
        let out = statement.await;
        if out.is_err() {
            wrote.store(false, Ordering::SeqCst);
        }
        out
    }
}

async fn record<C: ConnectionTrait>(
    db: &C,
    sink: &Sink<'_>,
    entries: Vec<AuditEntry>,
) -> Result<(), DbErr> {
    match sink {
        Sink::Direct => write(db, entries).await,
        Sink::Buffer { pending, .. } => {
            let ctx = RequestContext::current();
            let at = Utc::now();
            let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
            p.extend(entries.into_iter().map(|entry| Pending {
                entry,
                ctx: ctx.clone(),
                at,
            }));
            Ok(())
        }
    }
}

async fn write<C: ConnectionTrait>(db: &C, entries: Vec<AuditEntry>) -> Result<(), DbErr> {
    let ctx = RequestContext::current();
    writer::write_entries(db, &entries, ctx.as_deref())
        .await
        .map_err(DbErr::from)
}

fn values_of(stmt: &Statement) -> &[Value] {
    stmt.values.as_ref().map_or(&[], |v| v.0.as_slice())
}

/// `stmt` returning every column as SeaORM reads them, in place of its own RETURNING
/// (which starts at `at`) if it has one.
fn with_returning(stmt: &Statement, at: Option<usize>, auditor: &dyn TableAuditor) -> Statement {
    let head = at.map_or(stmt.sql.as_str(), |at| &stmt.sql[..at]);
    Statement {
        sql: format!(
            "{} RETURNING {}",
            head.trim_end(),
            auditor.returning_list(stmt.db_backend)
        ),
        values: stmt.values.clone(),
        db_backend: stmt.db_backend,
    }
}

/// Whether `e` is MySQL's deadlock error (1213, SQLSTATE 40001), after which it has
/// rolled back the whole transaction. Matched on the `<number> (<state>)` with which
/// the driver starts the server's message, so a value quoted inside another error's
/// message cannot match.
fn ends_the_transaction(e: &DbErr) -> bool {
    let msg = e.to_string();
    msg.split_once("error returned from database: ")
        .is_some_and(|(_, server)| server.starts_with("1213 (40001)"))
}

/// PostgreSQL: an `ExecResult` whose `rows_affected` is `n`, for an `exec()` whose
/// write ran as a query. PostgreSQL reports a SELECT's row count as it reports a
/// write's, and has no `last_insert_id` to give.
async fn rows_affected<C: ConnectionTrait>(db: &C, n: usize) -> Result<ExecResult, DbErr> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT FROM generate_series(1, $1::bigint)",
        [Value::BigInt(Some(n))],
    ))
    .await
}

/// The answer to a query `call` from the rows its statement returned.
fn returned(call: Call, rows: Vec<QueryResult>) -> Outcome {
    match call {
        Call::One => Outcome::One(rows.into_iter().next()),
        _ => Outcome::All(rows),
    }
}

/// Runs `stmt` returning every column, and answers `call` with the rows, which are also
/// the images of the rows the statement wrote.
async fn returning_images<C: ConnectionTrait>(
    db: &C,
    sink: &Sink<'_>,
    stmt: &Statement,
    call: Call,
    plan: &Plan,
) -> Result<(Outcome, Vec<crate::diff::Image>), DbErr> {
    let rows = sink
        .write(db.query_all_raw(with_returning(
            stmt,
            plan.scan.returning_at,
            plan.auditor.as_ref(),
        )))
        .await?;
    let images = plan.auditor.images(&rows, "")?;
    Ok((returned(call, rows), images))
}

/// Whether this server runs `DELETE ... RETURNING` (see [`Shared::delete_returning`]).
async fn delete_returning<C: ConnectionTrait>(db: &C, shared: &Shared) -> Result<bool, DbErr> {
    if let Some(&known) = shared.delete_returning.get() {
        return Ok(known);
    }
    let known = if db.support_returning() {
        true
    } else if db.get_database_backend() == DbBackend::MySql {
        let stmt = Statement::from_string(DbBackend::MySql, "SELECT VERSION()");
        db.query_one_raw(stmt)
            .await?
            .and_then(|row| row.try_get_by_index::<String>(0).ok())
            .is_some_and(|v| v.contains("MariaDB"))
    } else {
        false
    };
    Ok(*shared.delete_returning.get_or_init(|| known))
}

async fn select_images<C: ConnectionTrait>(
    db: &C,
    auditor: &dyn TableAuditor,
    stmts: Vec<Statement>,
) -> Result<Vec<crate::diff::Image>, DbErr> {
    let mut images = Vec::new();
    for s in stmts {
        let rows = db.query_all_raw(s).await?;
        images.extend(auditor.images(&rows, "")?);
    }
    Ok(images)
}

/// The rows with `keys`, read after the statement that wrote them. A single row read
/// inside an auditing transaction on MySQL is also kept for SeaORM's own read-back
/// (see [`AuditedTransaction::read_back`]).
async fn after_images<C: ConnectionTrait>(
    db: &C,
    sink: &Sink<'_>,
    plan: &Plan,
    keys: &[Vec<Value>],
) -> Result<Vec<crate::diff::Image>, DbErr> {
    let backend = db.get_database_backend();
    let auditor = plan.auditor.as_ref();
    let (Sink::Buffer { read_back, .. }, [_], DbBackend::MySql) = (sink, keys, backend) else {
        return select_images(db, auditor, auditor.select_by_keys(backend, keys)).await;
    };
    let mut rows = Vec::new();
    for stmt in auditor.select_by_keys(backend, keys) {
        rows.extend(db.query_all_raw(stmt).await?);
    }
    let images = auditor.images(&rows, "")?;
    if let ([image], Some(row)) = (images.as_slice(), rows.pop()) {
        // SeaORM reads the row back by the key its model holds, as `find_by_id(..).one()`.
        let again = auditor.find_one_by_key(backend, &key_of(image, &auditor.key_columns()));
        *read_back.lock().unwrap_or_else(|e| e.into_inner()) = Some(ReadBack {
            sql: again.sql,
            values: again.values.map(|v| v.0).unwrap_or_default(),
            row,
        });
    }
    Ok(images)
}

/// The rows a statement's WHERE clause selects, locked for update where the backend can.
async fn before_images<C: ConnectionTrait>(
    db: &C,
    stmt: &Statement,
    plan: &Plan,
) -> Result<Vec<crate::diff::Image>, DbErr> {
    select_images(db, plan.auditor.as_ref(), vec![select_before(stmt, plan)]).await
}

/// The SELECT of [`before_images`].
fn select_before(stmt: &Statement, plan: &Plan) -> Statement {
    let backend = stmt.db_backend;
    let (clause, range) = sqlscan::where_clause(&stmt.sql, &plan.scan, backend);
    let lock = if backend == DbBackend::Sqlite {
        ""
    } else {
        " FOR UPDATE"
    };
    let sql = format!(
        "{} {}{}",
        plan.auditor.select_prefix(backend),
        clause.trim_end(),
        lock
    );
    let values = values_of(stmt)
        .get(range)
        .map(<[Value]>::to_vec)
        .unwrap_or_default();
    Statement::from_sql_and_values(backend, sql, values)
}

/// Column telling the two statements of [`sqlite_update_both`] apart.
pub(crate) const SIDE: &str = "__audit_side";

/// SQLite: the before-images and a queried UPDATE (with its after-images from
/// RETURNING) as two statements in one call, so one hand-off to the driver's worker
/// thread instead of two. Each row is tagged with the statement it came from. The
/// UPDATE runs right after the SELECT in the same transaction: a writer that commits
/// in between makes SQLite refuse the UPDATE (its snapshot is stale), so the
/// before-images are of the rows updated. Answers `call` with the UPDATE's rows.
async fn sqlite_update_both<C: ConnectionTrait>(
    db: &C,
    sink: &Sink<'_>,
    stmt: &Statement,
    call: Call,
    plan: &Plan,
) -> Result<(Outcome, Vec<crate::diff::Image>, Vec<crate::diff::Image>), DbErr> {
    let select = select_before(stmt, plan);
    let head = plan
        .scan
        .returning_at
        .map_or(stmt.sql.as_str(), |at| &stmt.sql[..at]);
    let sql = format!(
        "{}; {} RETURNING 1 AS \"{SIDE}\", {}",
        select
            .sql
            .replacen("SELECT ", &format!("SELECT 0 AS \"{SIDE}\", "), 1),
        head.trim_end(),
        plan.auditor.returning_list(DbBackend::Sqlite)
    );
    let mut values = values_of(&select).to_vec();
    values.extend_from_slice(values_of(stmt));
    let rows = sink
        .write(db.query_all_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql,
            values,
        )))
        .await?;
    let (new, old): (Vec<QueryResult>, Vec<QueryResult>) = rows
        .into_iter()
        .partition(|r| r.try_get::<i32>("", SIDE).unwrap_or(0) == 1);
    let old_images = plan.auditor.images(&old, "")?;
    let new_images = plan.auditor.images(&new, "")?;
    Ok((returned(call, new), old_images, new_images))
}

async fn insert<C: ConnectionTrait>(
    db: &C,
    sink: &Sink<'_>,
    stmt: Statement,
    call: Call,
    plan: &Plan,
) -> Result<Outcome, DbErr> {
    let info = plan.auditor.info();
    let snapshot = |images: Vec<crate::diff::Image>| -> Vec<AuditEntry> {
        let mut entries: Vec<AuditEntry> = images
            .iter()
            .map(|i| info.snapshot_entry(CREATE, i, "new", &plan.cfg))
            .collect();
        for i in &images {
            entries.extend(info.link_entries(true, i, &plan.cfg));
        }
        entries
    };
    if let (Call::One | Call::All, Some(at)) = (call, plan.scan.returning_at) {
        let rows = sink
            .write(db.query_all_raw(with_returning(&stmt, Some(at), plan.auditor.as_ref())))
            .await?;
        record(db, sink, snapshot(plan.auditor.images(&rows, "")?)).await?;
        return Ok(returned(call, rows));
    }
    let backend = stmt.db_backend;
    let table = info.table.to_owned();
    let key_columns = plan.auditor.key_columns();
    let auto_increment = plan.auditor.auto_increment_key();
    let keys = insert_keys(
        &plan.scan,
        values_of(&stmt),
        &key_columns,
        backend == DbBackend::MySql && auto_increment,
    );
    if call != Call::Execute {
        return Err(unauditable(
            table,
            "an INSERT queried without RETURNING cannot be audited",
        ));
    }
    let generated = match keys {
        InsertKeys::Mixed => {
            return Err(unauditable(
                table,
                "an INSERT without RETURNING that sets the keys of some rows and lets the database generate the others cannot be audited; use exec_with_returning() or insert them separately",
            ));
        }
        InsertKeys::Generated if backend == DbBackend::Postgres || !auto_increment => {
            return Err(unauditable(
                table,
                "an INSERT without RETURNING whose keys the database generates cannot be audited on this backend; use exec() or exec_with_returning()",
            ));
        }
        InsertKeys::Generated => true,
        InsertKeys::Explicit(_) => false,
    };
    // MySQL: the step between generated keys, asked of this session (it is a session
    // variable) before the INSERT, for every multi-row insert.
    let step = if generated && backend == DbBackend::MySql && plan.scan.insert_rows.len() != 1 {
        key_step(db).await?
    } else {
        1
    };
    let res = sink.write(db.execute_raw(stmt)).await?;
    let keys = match keys {
        InsertKeys::Explicit(keys) => keys,
        _ => {
            let n = res.rows_affected();
            let id = res.last_insert_id();
            // MySQL reports the first id of a multi-row insert, SQLite the last (its
            // keys are consecutive).
            let first = if backend == DbBackend::MySql {
                id
            } else {
                (id + 1).saturating_sub(n)
            };
            (0..n)
                .map(|i| vec![Value::BigUnsigned(Some(first + i * step))])
                .collect()
        }
    };
    let images = after_images(db, sink, plan, &keys).await?;
    // Every row written found again, and only rows written (a trigger may skip some
    // rows, with RAISE(IGNORE) on SQLite, which the row count shows). Keys worked out
    // wrongly would record other rows, or none: refuse.
    if u64::try_from(images.len()) != Ok(res.rows_affected()) {
        return Err(unauditable(
            table,
            "the rows this INSERT wrote could not all be found again by key, so the change is undone with its transaction (an auditing transaction can no longer commit); use exec_with_returning()",
        ));
    }
    record(db, sink, snapshot(images)).await?;
    Ok(Outcome::Exec(res))
}

/// Where the primary keys of the rows an INSERT writes come from.
#[derive(Debug, PartialEq)]
enum InsertKeys {
    /// Every row binds every key column to a value: these.
    Explicit(Vec<Vec<Value>>),
    /// No row sets its key: the database generates them all.
    Generated,
    /// Some rows set their keys and others leave them to the database (SeaORM binds a
    /// NULL for a key a model leaves unset when another model of the batch sets it).
    Mixed,
}

/// The keys of the rows an INSERT writes. A key is left to the database when its
/// column is not listed, when its item is not a parameter (`DEFAULT`), when it is bound
/// to NULL, and when `zero_generates` (MySQL, an auto-increment key) and it is bound to
/// 0, which generates a key unless `NO_AUTO_VALUE_ON_ZERO` is set (and then the
/// reported insert id is 0, the key stored, so the row is still found).
fn insert_keys(
    scan: &Scan,
    values: &[Value],
    key_columns: &[&'static str],
    zero_generates: bool,
) -> InsertKeys {
    let Some(positions) = key_columns
        .iter()
        .map(|k| scan.insert_columns.iter().position(|c| c == k))
        .collect::<Option<Vec<usize>>>()
    else {
        return InsertKeys::Generated;
    };
    if scan.insert_rows.is_empty() {
        return InsertKeys::Generated;
    }
    let given = |v: &Value| {
        v.is_some()
            && !(zero_generates
                && matches!(
                    v,
                    Value::TinyInt(Some(0))
                        | Value::SmallInt(Some(0))
                        | Value::Int(Some(0))
                        | Value::BigInt(Some(0))
                        | Value::TinyUnsigned(Some(0))
                        | Value::SmallUnsigned(Some(0))
                        | Value::Unsigned(Some(0))
                        | Value::BigUnsigned(Some(0))
                ))
    };
    let rows: Vec<Option<Vec<Value>>> = scan
        .insert_rows
        .iter()
        .map(|row| {
            positions
                .iter()
                .map(|&p| {
                    row.get(p)
                        .copied()
                        .flatten()
                        .and_then(|i| values.get(i))
                        .filter(|v| given(v))
                        .cloned()
                })
                .collect::<Option<Vec<Value>>>()
        })
        .collect();
    if rows.iter().all(Option::is_some) {
        InsertKeys::Explicit(rows.into_iter().flatten().collect())
    } else if rows.iter().all(Option::is_none) {
        InsertKeys::Generated
    } else {
        InsertKeys::Mixed
    }
}

/// MySQL's `@@auto_increment_increment` in this session: the step between the keys a
/// multi-row INSERT generates.
async fn key_step<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    let stmt = Statement::from_string(DbBackend::MySql, "SELECT @@auto_increment_increment");
    Ok(db
        .query_one_raw(stmt)
        .await?
        .and_then(|row| row.try_get_by_index::<u64>(0).ok())
        .filter(|&s| s > 0)
        .unwrap_or(1))
}

async fn update<C: ConnectionTrait>(
    db: &C,
    sink: &Sink<'_>,
    stmt: Statement,
    call: Call,
    plan: &Plan,
    opts: &WrapperOptions,
) -> Result<Outcome, DbErr> {
    let info = plan.auditor.info();
    let key_columns = plan.auditor.key_columns();
    if plan
        .scan
        .set_columns
        .iter()
        .any(|c| key_columns.contains(&c.as_str()))
    {
        return Err(unauditable(
            info.table.to_owned(),
            "an UPDATE that changes primary keys cannot be audited; delete and insert instead",
        ));
    }
    let backend = stmt.db_backend;
    // An `execute` must answer with the database's own `ExecResult`, which SeaORM
    // offers no way to build from returned rows; only queries take the SQLite and
    // MySQL paths below that return rows.
    let query = call != Call::Execute;
    if backend == DbBackend::Postgres {
        // One statement: locked before-images, the UPDATE of exactly the rows locked,
        // and the after-images. Under READ COMMITTED a separate UPDATE would take a new
        // snapshot and could also change a row committed after the lock, which would
        // then have no before-image and no audit row; an `exec()` therefore takes this
        // path too, and answers with the row count (see `rows_affected`).
        let sql = plan.auditor.update_returning_old_new(&stmt.sql, &plan.scan);
        let rows = sink
            .write(db.query_all_raw(Statement {
                sql,
                values: stmt.values.clone(),
                db_backend: backend,
            }))
            .await?;
        let old = plan.auditor.images(&rows, OLD)?;
        let new = plan.auditor.images(&rows, "")?;
        let entries = match summary_entry(opts, &stmt, plan, UPDATE, old.len()) {
            Some(summary) => vec![summary],
            None => old
                .iter()
                .zip(&new)
                .filter_map(|(o, n)| info.update_entry(o, n, &plan.cfg))
                .collect(),
        };
        record(db, sink, entries).await?;
        if !query {
            return rows_affected(db, rows.len()).await.map(Outcome::Exec);
        }
        return Ok(returned(call, rows));
    }
    if query
        && backend == DbBackend::Sqlite
        && db.support_returning()
        && opts.summary_over.is_none()
    {
        let (out, old, new) = sqlite_update_both(db, sink, &stmt, call, plan).await?;
        record(db, sink, update_entries(&info, &old, &new, plan)).await?;
        return Ok(out);
    }
    let old = before_images(db, &stmt, plan).await?;
    if old.is_empty() {
        return passthrough(db, stmt, call).await;
    }
    if let Some(summary) = summary_entry(opts, &stmt, plan, UPDATE, old.len()) {
        let out = sink.write(passthrough(db, stmt, call)).await?;
        record(db, sink, vec![summary]).await?;
        return Ok(out);
    }
    let (out, new) = if query && db.support_returning() {
        // The after-images come back from the UPDATE itself.
        returning_images(db, sink, &stmt, call, plan).await?
    } else {
        let out = sink.write(passthrough(db, stmt, call)).await?;
        let keys: Vec<Vec<Value>> = old.iter().map(|i| key_of(i, &key_columns)).collect();
        (out, after_images(db, sink, plan, &keys).await?)
    };
    record(db, sink, update_entries(&info, &old, &new, plan)).await?;
    Ok(out)
}

/// The UPDATE rows between before- and after-images, paired by primary key.
fn update_entries(
    info: &crate::diff::TableInfo,
    old: &[crate::diff::Image],
    new: &[crate::diff::Image],
    plan: &Plan,
) -> Vec<AuditEntry> {
    let new_by_key: HashMap<&str, &crate::diff::Image> =
        new.iter().map(|i| (i.pk.as_str(), i)).collect();
    old.iter()
        .filter_map(|o| {
            new_by_key
                .get(o.pk.as_str())
                .and_then(|n| info.update_entry(o, n, &plan.cfg))
        })
        .collect()
}

async fn delete<C: ConnectionTrait>(
    db: &C,
    sink: &Sink<'_>,
    stmt: Statement,
    call: Call,
    plan: &Plan,
    shared: &Shared,
) -> Result<Outcome, DbErr> {
    let info = plan.auditor.info();
    let opts = &shared.options;
    // A single-row DELETE by key through exec() (`ActiveModel::delete`, `delete_by_id`)
    // where the server has DELETE ... RETURNING: the before-image comes back from the
    // DELETE, and the `ExecResult` is the database's own for the INSERT of its audit
    // row, one row per deleted row, so `rows_affected` is the number deleted. (Its
    // `last_insert_id`, meaningless for a DELETE, is the audit row's.) The row is
    // written at once, not buffered: one statement fewer than a separate read.
    if call == Call::Execute
        && opts.summary_over.is_none()
        && !info.is_junction()
        && plan.auditor.is_delete_by_key(&stmt, &plan.scan)
        && delete_returning(db, shared).await?
    {
        let (_, old) = returning_images(db, sink, &stmt, Call::All, plan).await?;
        let entries: Vec<AuditEntry> = old
            .iter()
            .map(|i| info.snapshot_entry(DELETE, i, "old", &plan.cfg))
            .collect();
        let ctx = RequestContext::current();
        let written = writer::write_entries_result(db, &entries, ctx.as_deref())
            .await
            .map_err(DbErr::from)?;
        let res = match written {
            Some(res) => res,
            // Nothing was deleted: answer with a statement that changes nothing.
            None => {
                db.execute_raw(plan.auditor.delete_nothing(stmt.db_backend))
                    .await?
            }
        };
        return Ok(Outcome::Exec(res));
    }
    // As for UPDATE, only a query can take the one-statement path, except on
    // PostgreSQL, where a separate DELETE would see rows committed after the locked
    // read (READ COMMITTED) and delete them without a before-image.
    let postgres = stmt.db_backend == DbBackend::Postgres;
    let (out, old, summary) =
        if (call != Call::Execute || postgres) && delete_returning(db, shared).await? {
            // The before-images come back from the DELETE itself: one statement, and
            // exactly the rows it deleted.
            let shape = if call == Call::Execute {
                Call::All
            } else {
                call
            };
            let (out, old) = returning_images(db, sink, &stmt, shape, plan).await?;
            let summary = summary_entry(opts, &stmt, plan, DELETE, old.len());
            let out = if call == Call::Execute {
                Outcome::Exec(rows_affected(db, old.len()).await?)
            } else {
                out
            };
            (out, old, summary)
        } else {
            let old = before_images(db, &stmt, plan).await?;
            let summary = summary_entry(opts, &stmt, plan, DELETE, old.len());
            let out = sink.write(passthrough(db, stmt, call)).await?;
            (out, old, summary)
        };
    if old.is_empty() {
        return Ok(out);
    }
    let entries = match summary {
        Some(s) => vec![s],
        None => {
            let mut entries: Vec<AuditEntry> = old
                .iter()
                .map(|i| info.snapshot_entry(DELETE, i, "old", &plan.cfg))
                .collect();
            for i in &old {
                entries.extend(info.link_entries(false, i, &plan.cfg));
            }
            entries
        }
    };
    record(db, sink, entries).await?;
    Ok(out)
}

fn summary_entry(
    opts: &WrapperOptions,
    stmt: &Statement,
    plan: &Plan,
    action: &str,
    rows: usize,
) -> Option<AuditEntry> {
    let limit = opts.summary_over?;
    if rows <= limit {
        return None;
    }
    let info = plan.auditor.info();
    Some(AuditEntry {
        action: action.to_owned(),
        table_name: Some(info.table.to_owned()),
        object_repr: Some(format!("{rows} rows of {}", info.table)),
        changes: Some(json!({ "statement": { "sql": stmt.sql, "rows": rows } })),
        module: Some(info.meta.module.to_owned()),
        ..AuditEntry::default()
    })
}

async fn statement_level<C: ConnectionTrait>(
    db: &C,
    sink: &Sink<'_>,
    stmt: Statement,
    reason: &str,
) -> Result<ExecResult, DbErr> {
    let scan = sqlscan::scan(&stmt.sql, stmt.db_backend);
    // The same matching as the refusal that pointed here.
    let mut tables: Vec<String> = scan
        .names
        .iter()
        .filter_map(|n| registry::registered_name(n))
        .collect();
    tables.sort();
    tables.dedup();
    let sql = stmt.sql.clone();
    let res = sink.write(db.execute_raw(stmt)).await?;
    if context::is_suppressed() || !config::current().is_enabled() {
        return Ok(res);
    }
    let entries = tables
        .into_iter()
        .map(|t| AuditEntry {
            action: STATEMENT.to_owned(),
            table_name: Some(t),
            changes: Some(json!({ "statement": { "sql": sql, "rows": res.rows_affected() } })),
            reason: Some(reason.to_owned()),
            ..AuditEntry::default()
        })
        .collect();
    write(db, entries).await?;
    Ok(res)
}

// === impl ConnectionTrait ===

macro_rules! impl_connection {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl ConnectionTrait for $ty {
            fn get_database_backend(&self) -> DbBackend {
                self.inner.get_database_backend()
            }

            async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
                self.run(stmt, Call::Execute, Origin::Raw).await?.exec()
            }

            async fn execute<S: StatementBuilder>(&self, stmt: &S) -> Result<ExecResult, DbErr> {
                let stmt = stmt.build(&self.get_database_backend());
                self.run(stmt, Call::Execute, Origin::Typed).await?.exec()
            }

            async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
                let stmt = Statement::from_string(self.get_database_backend(), sql);
                self.before_statement(sql).await?;
                // Raw SQL is never audited row by row: `decide` passes it or refuses it.
                decide(&stmt, Origin::Raw)?;
                self.inner
                    .execute_unprepared(sql)
                    .await
                    .inspect_err(|e| self.after_error(e))
            }

            async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
                self.run(stmt, Call::One, Origin::Raw).await?.one()
            }

            async fn query_one<S: StatementBuilder>(
                &self,
                stmt: &S,
            ) -> Result<Option<QueryResult>, DbErr> {
                let stmt = stmt.build(&self.get_database_backend());
                self.run(stmt, Call::One, Origin::Typed).await?.one()
            }

            async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
                self.run(stmt, Call::All, Origin::Raw).await?.all()
            }

            async fn query_all<S: StatementBuilder>(
                &self,
                stmt: &S,
            ) -> Result<Vec<QueryResult>, DbErr> {
                let stmt = stmt.build(&self.get_database_backend());
                self.run(stmt, Call::All, Origin::Typed).await?.all()
            }

            fn support_returning(&self) -> bool {
                self.inner.support_returning()
            }

            fn is_mock_connection(&self) -> bool {
                self.inner.is_mock_connection()
            }
        }
    };
}

impl_connection!(AuditedConnection);
impl_connection!(AuditedTransaction);

// === impl TransactionTrait ===

type Callback<'c, T, E> = Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send + 'c>>;

macro_rules! impl_transaction {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl TransactionTrait for $ty {
            type Transaction = AuditedTransaction;

            async fn begin(&self) -> Result<AuditedTransaction, DbErr> {
                self.before_nested().await?;
                Ok(AuditedTransaction::wrap(
                    self.inner.begin().await?,
                    Arc::clone(&self.shared),
                    self.chain(),
                ))
            }

            async fn begin_with_config(
                &self,
                isolation_level: Option<IsolationLevel>,
                access_mode: Option<AccessMode>,
            ) -> Result<AuditedTransaction, DbErr> {
                self.before_nested().await?;
                Ok(AuditedTransaction::wrap(
                    self.inner
                        .begin_with_config(isolation_level, access_mode)
                        .await?,
                    Arc::clone(&self.shared),
                    self.chain(),
                ))
            }

            async fn begin_with_options(
                &self,
                options: TransactionOptions,
            ) -> Result<AuditedTransaction, DbErr> {
                self.before_nested().await?;
                Ok(AuditedTransaction::wrap(
                    self.inner.begin_with_options(options).await?,
                    Arc::clone(&self.shared),
                    self.chain(),
                ))
            }

            async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
            where
                F: for<'c> FnOnce(&'c AuditedTransaction) -> Callback<'c, T, E> + Send,
                T: Send,
                E: std::fmt::Display + std::fmt::Debug + Send,
            {
                self.transaction_with_config(callback, None, None).await
            }

            async fn transaction_with_config<F, T, E>(
                &self,
                callback: F,
                isolation_level: Option<IsolationLevel>,
                access_mode: Option<AccessMode>,
            ) -> Result<T, TransactionError<E>>
            where
                F: for<'c> FnOnce(&'c AuditedTransaction) -> Callback<'c, T, E> + Send,
                T: Send,
                E: std::fmt::Display + std::fmt::Debug + Send,
            {
                let txn = self
                    .begin_with_config(isolation_level, access_mode)
                    .await
                    .map_err(TransactionError::Connection)?;
                match callback(&txn).await {
                    Ok(v) => {
                        txn.commit().await.map_err(TransactionError::Connection)?;
                        Ok(v)
                    }
                    Err(e) => {
                        txn.rollback().await.map_err(TransactionError::Connection)?;
                        Err(TransactionError::Transaction(e))
                    }
                }
            }
        }
    };
}

impl_transaction!(AuditedConnection);
impl_transaction!(AuditedTransaction);

#[async_trait::async_trait]
impl TransactionSession for AuditedTransaction {
    async fn commit(self) -> Result<(), DbErr> {
        AuditedTransaction::commit(self).await
    }

    async fn rollback(self) -> Result<(), DbErr> {
        self.inner.rollback().await
    }
}

impl AuditedTransaction {
    fn wrap(inner: DatabaseTransaction, shared: Arc<Shared>, ended: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            shared,
            pending: Mutex::new(Vec::new()),
            read_back: Mutex::new(None),
            unrecorded: AtomicBool::new(false),
            ended,
        }
    }

    /// Writes the pending audit rows, then commits. If writing them fails, the
    /// transaction is rolled back with the changes they describe.
    ///
    /// Errors: [`AuditError::Unrecorded`] (after rolling back) when a change made
    /// through this transaction may have no audit row: an earlier flush failed or was
    /// cancelled, or an audited write (or [`execute_unaudited`](Self::execute_unaudited))
    /// was cancelled once its statement was sent, or failed after the database had made
    /// the change, or a deadlock or serialization failure made the database roll the
    /// whole transaction back. The error is returned even if the caller handled the
    /// earlier one. Any other statement the database refused changed nothing and does
    /// not count.
    pub async fn commit(self) -> Result<(), DbErr> {
        if self.unrecorded.load(Ordering::SeqCst) || self.ended.load(Ordering::SeqCst) {
            // The refusal is the answer whether or not the rollback goes through
            // (dropping the transaction rolls it back too).
            let _ = self.inner.rollback().await;
            return Err(AuditError::Unrecorded.into());
        }
        if let Err(e) = self.flush().await {
            let _ = self.inner.rollback().await;
            return Err(e);
        }
        self.inner.commit().await
    }

    /// Rolls the transaction back.
    pub async fn rollback(self) -> Result<(), DbErr> {
        self.inner.rollback().await
    }
}

/// Whether `C` is one of this module's auditing connections.
pub(crate) fn is_wrapper<C: ?Sized>() -> bool {
    let name = std::any::type_name::<C>();
    name.contains("AuditedConnection") || name.contains("AuditedTransaction")
}

#[cfg(test)]
mod tests {
    use super::ends_the_transaction;
    use sea_orm::DbErr;

    #[test]
    fn only_the_servers_own_deadlock_ends_the_transaction() {
        let err = |m: &str| {
            DbErr::Custom(format!(
                "Execution Error: error returned from database: {m}"
            ))
        };
        assert!(ends_the_transaction(&err(
            "1213 (40001): Deadlock found when trying to get lock; try restarting transaction"
        )));
        for other in [
            "1062 (23000): Duplicate entry 'error returned from database: 1213 (40001)' for key 'title'",
            "1205 (HY000): Lock wait timeout exceeded; try restarting transaction",
            "40001: could not serialize access due to concurrent update",
        ] {
            assert!(!ends_the_transaction(&err(other)), "{other}");
        }
    }
}
