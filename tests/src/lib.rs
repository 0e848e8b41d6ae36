//! Test harness for sea-orm-audit: one fresh database (SQLite file, PostgreSQL schema or
//! MariaDB database) per test and backend.
//!
//! URLs come from `AUDIT_TEST_POSTGRES_URL` and `AUDIT_TEST_MYSQL_URL`, defaulting to the
//! local services. An unreachable server skips that backend's tests with a loud message,
//! except under `CI=true`, where it is a failure.

#![allow(missing_docs)]

pub mod fixtures;
pub mod webdriver;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    Schema,
};
use sea_orm_migration::MigratorTrait;

pub use sea_orm_audit_migration::Migrator;

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// How long a harness SQLite connection waits for the write lock before "database is
/// locked".
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }
}

/// A database created for one test.
#[derive(Debug)]
pub struct TestDb {
    pub db: DatabaseConnection,
    pub backend: Backend,
    /// Connection options of `db`, for tests that need a second, separate pool.
    pub url: String,
    name: String,
    admin: Option<DatabaseConnection>,
    file: Option<PathBuf>,
}

impl TestDb {
    /// Opens another pool on the same database (e.g. to observe what is committed).
    pub async fn connect_again(&self) -> Result<DatabaseConnection, DbErr> {
        connect(&self.url, self.backend, Some(&self.name), 4).await
    }

    /// [`connect_again`](Self::connect_again) with sqlx statement logging on, for tests of
    /// code that must not react to the log events its own statements produce.
    pub async fn connect_again_logging(&self) -> Result<DatabaseConnection, DbErr> {
        connect_with(&self.url, self.backend, Some(&self.name), 2, true).await
    }

    /// Closes the connections and drops the database (schema, or file). [`run`] calls
    /// it; a test that calls [`setup`] itself calls it at the end.
    pub async fn teardown(self) {
        let _ = self.db.close().await;
        match self.backend {
            Backend::Sqlite => {
                if let Some(f) = &self.file {
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{suffix}", f.display()));
                    }
                }
            }
            Backend::Postgres => {
                if let Some(admin) = &self.admin {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                            self.name
                        ))
                        .await;
                }
            }
            Backend::MySql => {
                if let Some(admin) = &self.admin {
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS `{}`", self.name))
                        .await;
                }
            }
        }
        if let Some(admin) = self.admin {
            let _ = admin.close().await;
        }
    }
}

impl std::ops::Deref for TestDb {
    type Target = DatabaseConnection;
    fn deref(&self) -> &DatabaseConnection {
        &self.db
    }
}

/// Whether `CI` asks for unreachable backends to fail rather than be skipped: `true`,
/// `1` or `yes`, in any case.
fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        let v = v.trim();
        ["true", "1", "yes"]
            .iter()
            .any(|w| v.eq_ignore_ascii_case(w))
    })
}

pub fn url_for(backend: Backend) -> String {
    match backend {
        Backend::Sqlite => "sqlite::memory:".into(),
        Backend::Postgres => {
            std::env::var("AUDIT_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into())
        }
        Backend::MySql => {
            std::env::var("AUDIT_TEST_MYSQL_URL").unwrap_or_else(|_| DEFAULT_MYSQL_URL.into())
        }
    }
}

/// A database, schema or file name for one run of `test`. The random part keeps names
/// apart across runs: process ids repeat (every container starts at a low one), and a
/// repeated SQLite name would reopen a file a crashed run left behind (`mode=rwc`).
/// 54 characters plus the counter's digits, under the 63 PostgreSQL allows (MariaDB: 64).
fn unique_name(test: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = uuid::Uuid::new_v4().simple().to_string();
    let clean: Vec<char> = test
        .trim_start_matches("it::")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let short: String = clean[clean.len().saturating_sub(36)..].iter().collect();
    format!("sat_{short}_{}_{n}", &random[..12])
}

/// Replaces the database path of a server URL.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{}", &base[..host_end], db);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn connect(
    url: &str,
    backend: Backend,
    name: Option<&str>,
    pool: u32,
) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, backend, name, pool, false).await
}

async fn connect_with(
    url: &str,
    backend: Backend,
    name: Option<&str>,
    pool: u32,
    logging: bool,
) -> Result<DatabaseConnection, DbErr> {
    let url = match (backend, name) {
        (Backend::MySql, Some(name)) => with_database(url, name),
        _ => url.to_owned(),
    };
    let mut opts = ConnectOptions::new(url);
    opts.max_connections(pool)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(false)
        .sqlx_logging(logging);
    if let (Backend::Postgres, Some(name)) = (backend, name) {
        opts.set_schema_search_path(name.to_owned());
    }
    // Every SQLite connection of a test waits this long for a competing writer, rather
    // than sqlx's 5 s: a test that holds the write lock on purpose, or a loaded machine,
    // must not turn into a "database is locked" failure. Only a hang reaches it.
    opts.map_sqlx_sqlite_opts(|o| o.busy_timeout(SQLITE_BUSY_TIMEOUT));
    Database::connect(opts).await
}

fn skip_loudly(backend: Backend, url: &str, err: &DbErr) {
    static SAID: Mutex<Vec<Backend>> = Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.contains(&backend) {
        said.push(backend);
        // Written straight to the process's stderr, past the test harness's capture,
        // so a skipped backend is visible in every run.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!!!!!! SKIPPING {} TESTS: server unreachable at {url} ({err}).\n!!!!!!!!!! Set CI=true to make this a failure.\n",
            backend.name().to_uppercase()
        );
    }
}

/// Creates a fresh database for `test` on `backend` with the audit migrations applied.
/// `None` means the backend is unreachable and the test is skipped.
pub async fn setup(backend: Backend, test: &str) -> Option<TestDb> {
    setup_with(backend, test, true).await
}

/// [`setup`], optionally without running the audit migrations.
pub async fn setup_with(backend: Backend, test: &str, migrate: bool) -> Option<TestDb> {
    let name = unique_name(test);
    let base_url = url_for(backend);
    let (db, admin, file, url) = match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join("sea-orm-audit-tests");
            std::fs::create_dir_all(&dir).expect("create temp dir");
            let path = dir.join(format!("{name}.db"));
            let url = format!("sqlite://{}?mode=rwc", path.display());
            let db = connect(&url, backend, None, 1)
                .await
                .expect("open sqlite file");
            db.execute_unprepared("PRAGMA journal_mode=WAL;")
                .await
                .expect("sqlite pragmas");
            (db, None, Some(path), url)
        }
        Backend::Postgres | Backend::MySql => {
            let admin = match connect(&base_url, backend, None, 2).await {
                Ok(admin) => admin,
                Err(err) => {
                    if ci() {
                        panic!(
                            "{} unreachable at {base_url} under CI=true: {err}",
                            backend.name()
                        );
                    }
                    skip_loudly(backend, &base_url, &err);
                    return None;
                }
            };
            let create = match backend {
                Backend::Postgres => format!("CREATE SCHEMA \"{name}\""),
                _ => format!(
                    "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                ),
            };
            admin
                .execute_unprepared(&create)
                .await
                .expect("create test schema/database");
            let db = connect(&base_url, backend, Some(&name), 8)
                .await
                .expect("connect to test database");
            (db, Some(admin), None, base_url)
        }
    };
    let test_db = TestDb {
        db,
        backend,
        url,
        name,
        admin,
        file,
    };
    if migrate {
        Migrator::up(&test_db.db, None)
            .await
            .expect("audit migrations");
    }
    fixtures::create_all(&test_db.db)
        .await
        .expect("fixture tables");
    Some(test_db)
}

/// Creates `entity`'s table from its SeaORM definition.
pub async fn create_table<C: ConnectionTrait, E: EntityTrait>(
    db: &C,
    entity: E,
) -> Result<(), DbErr> {
    Schema::new(db.get_database_backend())
        .builder()
        .register(entity)
        .apply(db)
        .await
}

/// Runs one test body on one backend in a fresh database, then drops the database. The
/// body runs in its own task so that a failing assertion still lets the teardown run.
pub async fn run(
    backend: Backend,
    test: &'static str,
    body: fn(Arc<TestDb>) -> BoxFuture<TestResult>,
) {
    run_with(backend, test, true, body).await
}

/// [`run`], optionally without running the audit migrations first.
pub async fn run_with(
    backend: Backend,
    test: &'static str,
    migrate: bool,
    body: fn(Arc<TestDb>) -> BoxFuture<TestResult>,
) {
    let Some(db) = setup_with(backend, test, migrate).await else {
        return;
    };
    let db = Arc::new(db);
    let outcome = tokio::spawn(body(Arc::clone(&db))).await;
    if let Ok(db) = Arc::try_unwrap(db) {
        db.teardown().await;
    }
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("[{}] {test}: {e}", backend.name()),
        Err(join) => match join.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            Err(e) => panic!("[{}] {test}: {e}", backend.name()),
        },
    }
}

/// The backend of a connection.
pub fn backend_of(db: &DatabaseConnection) -> DbBackend {
    db.get_database_backend()
}

/// Defines one test per backend:
///
/// ```ignore
/// backend_test!(async fn creates_row(db) { ...; Ok(()) });
/// ```
/// expands to a module `creates_row` with tests `sqlite`, `postgres` and `mysql`, each
/// running the body in a fresh database. Inside the body `db: &TestDb`.
#[macro_export]
macro_rules! backend_test {
    (async fn $name:ident($db:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($db: &$crate::TestDb) -> $crate::TestResult $body

            fn boxed(db: ::std::sync::Arc<$crate::TestDb>) -> $crate::BoxFuture<$crate::TestResult> {
                Box::pin(async move { body(&db).await })
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::run($crate::Backend::Sqlite, module_path!(), boxed).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::run($crate::Backend::Postgres, module_path!(), boxed).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                $crate::run($crate::Backend::MySql, module_path!(), boxed).await
            }
        }
    };
}

/// Defines one test that runs on one backend only, for behaviour that exists on that
/// backend alone:
///
/// ```ignore
/// backend_only_test!(MySql, async fn key_step(db) => keys_with_a_step(db, 3));
/// ```
/// expands to a test `key_step` running `keys_with_a_step(db, 3)` in a fresh database
/// of that backend, with `db: &TestDb`.
#[macro_export]
macro_rules! backend_only_test {
    ($backend:ident, async fn $name:ident($db:ident) => $body:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $crate::run(
                $crate::Backend::$backend,
                concat!(module_path!(), "::", stringify!($name)),
                |db| {
                    Box::pin(async move {
                        let $db: &$crate::TestDb = &db;
                        $body.await
                    })
                },
            )
            .await
        }
    };
}
