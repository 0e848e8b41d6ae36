//! Reads at scale: object history, one actor's 30-day summary, the whole-system 30-day
//! summary and a filtered list page, on an audit log of 10,000 and then 1,000,000 rows,
//! on SQLite (file, WAL), PostgreSQL and MariaDB. Prints the median time at each size,
//! the growth factor, and the query plan of the history and list queries at 1,000,000.
//!
//! `cargo run --release -p sea-orm-audit-examples --example bench_reads -- [big] [repeats]
//! [--without-search-indexes]` (the last leaves out the admin search's three indexes).

mod support;

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use sea_orm::sea_query::{Query, SimpleExpr};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, QueryTrait,
    Statement, Value,
};
use sea_orm_audit::entity::audit_log;
use sea_orm_audit::{AuditQuery, SummaryFilter, audit_summary};
use support::with_database;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const SMALL: usize = 10_000;
/// Rows per object and per actor. They stay the same as the log grows a hundredfold, so
/// the growth of a read measures how it finds its rows, not how many it returns.
const ROWS_PER_OBJECT: usize = 200;
const ROWS_PER_ACTOR: usize = 5_000;
const DAYS: i64 = 60;

/// Appends rows `from..to`, spread over 60 days: consecutive blocks of rows belong to one
/// object (of one of 4 tables) and to one actor.
async fn fill(db: &DatabaseConnection, from: usize, to: usize) -> Result<()> {
    let now = Utc::now();
    let mysql = db.get_database_backend() == DbBackend::MySql;
    let actions = ["CREATE", "UPDATE", "UPDATE", "UPDATE", "DELETE", "VIEW"];
    let tables = ["article", "invoice", "customer", "order"];
    let rows: Vec<usize> = (from..to).collect();
    for chunk in rows.chunks(2000) {
        let mut insert = Query::insert();
        insert.into_table(audit_log::Entity).columns([
            audit_log::Column::Action,
            audit_log::Column::TableName,
            audit_log::Column::ObjectPk,
            audit_log::Column::ObjectRepr,
            audit_log::Column::Changes,
            audit_log::Column::ActorId,
            audit_log::Column::ActorName,
            audit_log::Column::CreatedAt,
        ]);
        for &i in chunk {
            let at = now - TimeDelta::seconds(((i * 7919) % (DAYS as usize * 86_400)) as i64);
            let object = i / ROWS_PER_OBJECT;
            let actor = i / ROWS_PER_ACTOR;
            let row: [SimpleExpr; 8] = [
                actions[i % actions.len()].into(),
                tables[object % tables.len()].into(),
                object.to_string().into(),
                format!("object {object}").into(),
                Value::Json(Some(Box::new(
                    serde_json::json!({"views": {"old": i, "new": i + 1}}),
                )))
                .into(),
                format!("user-{actor}").into(),
                format!("User {actor}").into(),
                if mysql {
                    Value::ChronoDateTime(Some(at.naive_utc())).into()
                } else {
                    Value::ChronoDateTimeUtc(Some(at)).into()
                },
            ];
            insert.values(row)?;
        }
        db.execute(&insert).await?;
    }
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn time<F, Fut>(repeats: usize, mut f: F) -> Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    f().await?; // warm the caches and the statement cache
    let mut v = Vec::new();
    for _ in 0..repeats {
        let t = Instant::now();
        f().await?;
        v.push(t.elapsed());
    }
    Ok(median(v))
}

fn history() -> AuditQuery {
    // Object 9 (table 9 % 4 = "invoice") exists at both sizes, with 200 rows.
    AuditQuery::new()
        .object("invoice", "9")
        .newest_first()
        .limit(50)
}

fn list_page() -> AuditQuery {
    AuditQuery::new()
        .table("article")
        .action("UPDATE")
        .since(Utc::now() - TimeDelta::days(7))
        .newest_first()
        .limit(50)
}

async fn measure(db: &DatabaseConnection, repeats: usize) -> Result<[Duration; 4]> {
    Ok([
        time(repeats, || async {
            let page = history().fetch(db).await?;
            if page.entries.is_empty() {
                return Err("history is empty".into());
            }
            Ok(())
        })
        .await?,
        time(repeats, || async {
            audit_summary(db, &SummaryFilter::last_days(30).actor("user-1")).await?;
            Ok(())
        })
        .await?,
        time(repeats, || async {
            audit_summary(db, &SummaryFilter::last_days(30)).await?;
            Ok(())
        })
        .await?,
        time(repeats, || async {
            list_page().fetch(db).await?;
            Ok(())
        })
        .await?,
    ])
}

async fn plan(db: &DatabaseConnection, q: AuditQuery) -> Result<String> {
    let backend = db.get_database_backend();
    let stmt = q.select().build(backend);
    let prefix = match backend {
        DbBackend::Sqlite => "EXPLAIN QUERY PLAN ",
        _ => "EXPLAIN ",
    };
    let explain = Statement {
        sql: format!("{prefix}{}", stmt.sql),
        values: stmt.values,
        db_backend: backend,
    };
    let rows = db.query_all_raw(explain).await?;
    let mut out = Vec::new();
    for r in rows {
        // A MySQL EXPLAIN column, empty when NULL.
        let col = |c: &str| {
            r.try_get::<Option<String>>("", c)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        let line = match backend {
            DbBackend::Postgres => r.try_get_by_index::<String>(0).unwrap_or_default(),
            DbBackend::Sqlite => r.try_get::<String>("", "detail").unwrap_or_default(),
            _ => format!(
                "table={} type={} key={} rows={} extra={}",
                col("table"),
                col("type"),
                col("key"),
                r.try_get::<Option<i64>>("", "rows")
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                col("Extra"),
            ),
        };
        out.push(format!("    {line}"));
    }
    Ok(out.join("\n"))
}

async fn open(
    backend: DbBackend,
    name: &str,
) -> Result<(DatabaseConnection, Option<(DatabaseConnection, String)>)> {
    let connect = |url: String, schema: Option<String>| async move {
        let mut o = ConnectOptions::new(url);
        o.sqlx_logging(false)
            .test_before_acquire(false)
            .max_connections(2);
        if let Some(s) = schema {
            o.set_schema_search_path(s);
        }
        Database::connect(o).await
    };
    Ok(match backend {
        DbBackend::Sqlite => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            let _ = std::fs::remove_file(&path);
            let db = connect(format!("sqlite://{}?mode=rwc", path.display()), None).await?;
            db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
            (db, None)
        }
        DbBackend::Postgres => {
            let url = std::env::var("AUDIT_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            let admin = connect(url.clone(), None).await?;
            admin
                .execute_unprepared(&format!("CREATE SCHEMA \"{name}\""))
                .await?;
            let db = connect(url, Some(name.to_owned())).await?;
            (db, Some((admin, format!("DROP SCHEMA \"{name}\" CASCADE"))))
        }
        _ => {
            let url = std::env::var("AUDIT_TEST_MYSQL_URL")
                .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
            let admin = connect(url.clone(), None).await?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
                .await?;
            let db = connect(with_database(&url, name), None).await?;
            (db, Some((admin, format!("DROP DATABASE `{name}`"))))
        }
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let search_indexes = !support::take_without_search_indexes(&mut args);
    let mut args = args.into_iter();
    let big: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let repeats: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let names = [
        "object history (50)",
        "one actor's 30-day summary",
        "30-day summary",
        "filtered list page (50)",
    ];
    let mut report = String::new();
    let mut plans = String::new();
    for backend in [DbBackend::Sqlite, DbBackend::Postgres, DbBackend::MySql] {
        let name = format!("bench_reads_{}", std::process::id());
        let (db, cleanup) = open(backend, &name).await?;
        support::migrate(&db, search_indexes).await?;
        fill(&db, 0, SMALL).await?;
        if backend == DbBackend::Postgres {
            db.execute_unprepared("ANALYZE audit_log").await?;
        }
        let small = measure(&db, repeats).await?;
        let t = Instant::now();
        fill(&db, SMALL, big).await?;
        match backend {
            DbBackend::Postgres => db
                .execute_unprepared("ANALYZE audit_log")
                .await
                .map(|_| ())?,
            DbBackend::MySql => db
                .execute_unprepared("ANALYZE TABLE audit_log")
                .await
                .map(|_| ())?,
            _ => db.execute_unprepared("ANALYZE").await.map(|_| ())?,
        }
        eprintln!(
            "[{backend:?}] filled {big} rows in {:.0} s",
            t.elapsed().as_secs_f64()
        );
        let large = measure(&db, repeats).await?;
        for (i, n) in names.iter().enumerate() {
            report.push_str(&format!(
                "| {backend:?} | {n} | {:.2} | {:.2} | **{:.2}** |\n",
                small[i].as_secs_f64() * 1e3,
                large[i].as_secs_f64() * 1e3,
                large[i].as_secs_f64() / small[i].as_secs_f64()
            ));
        }
        plans.push_str(&format!(
            "{backend:?}, object history at {big} rows:\n{}\n{backend:?}, filtered list page at {big} rows:\n{}\n",
            plan(&db, history()).await?,
            plan(&db, list_page()).await?
        ));
        if let Some((admin, drop)) = cleanup {
            db.close().await?;
            admin.execute_unprepared(&drop).await?;
        }
    }
    println!("| backend | read | {SMALL} rows, ms | {big} rows, ms | growth |");
    println!("|---|---|---:|---:|---:|");
    print!("{report}");
    println!("\nQuery plans:\n```text\n{plans}```");
    println!("\n{}", support::index_note(search_indexes));
    Ok(())
}
