//! Bulk paths: audited vs plain `update_many` and `delete_many` of 10,000 rows, on
//! SQLite (file, WAL), PostgreSQL and MariaDB, in one run.
//!
//! `cargo run --release -p sea-orm-audit-examples --example bench_bulk -- [rows] [repeats]`
//!
//! Plain is SeaORM on a plain `DatabaseConnection`; audited is the same statement
//! through `AuditedTransaction`, which writes one `audit_log` row per affected object.
//! Each repeat runs both variants in alternating order in a fresh transaction, verifies
//! the audit rows it wrote and prints the median ratio audited/plain per statement.

use std::time::{Duration, Instant};

use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Schema,
    TransactionTrait,
};
use sea_orm_audit::entity::audit_log;
use sea_orm_audit::{AuditedConnection, without_audit};
use sea_orm_audit_migration::Migrator;
use sea_orm_migration::MigratorTrait;

mod article {
    use sea_orm::entity::prelude::*;
    use sea_orm_audit::Audited;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
    #[sea_orm(table_name = "bulk_article")]
    #[audited(repr = "title")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub title: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub views: i32,
        pub published: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

async fn seed(db: &DatabaseConnection, n: usize) -> Result<()> {
    without_audit(async {
        article::Entity::delete_many().exec(db).await?;
        let rows: Vec<usize> = (0..n).collect();
        for chunk in rows.chunks(1000) {
            article::Entity::insert_many(chunk.iter().map(|i| article::ActiveModel {
                title: Set(format!("article {i}")),
                body: Set("lorem ipsum ".repeat(19)),
                views: Set(0),
                published: Set(false),
                ..Default::default()
            }))
            .exec(db)
            .await?;
        }
        Ok::<_, DbErr>(())
    })
    .await?;
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    UpdateMany,
    DeleteMany,
}

/// The bulk statement under test; the same for both variants.
async fn statement<C: ConnectionTrait>(db: &C, op: Op) -> Result<u64> {
    Ok(match op {
        Op::UpdateMany => {
            article::Entity::update_many()
                .col_expr(
                    article::Column::Views,
                    Expr::col(article::Column::Views).add(1),
                )
                .col_expr(article::Column::Published, Expr::value(true))
                .exec(db)
                .await?
                .rows_affected
        }
        Op::DeleteMany => article::Entity::delete_many().exec(db).await?.rows_affected,
    })
}

async fn run(db: &DatabaseConnection, audited: bool, op: Op, n: usize) -> Result<Duration> {
    seed(db, n).await?;
    audit_log::Entity::delete_many().exec(db).await?;
    let t = Instant::now();
    let affected = if audited {
        let txn = AuditedConnection::new(db.clone()).begin().await?;
        let n = statement(&txn, op).await?;
        txn.commit().await?;
        n
    } else {
        let txn = db.begin().await?;
        let n = statement(&txn, op).await?;
        txn.commit().await?;
        n
    };
    let elapsed = t.elapsed();
    if affected != n as u64 {
        return Err(format!("affected {affected} rows, expected {n}").into());
    }
    let rows = audit_log::Entity::find().count(db).await?;
    let want = if audited { n as u64 } else { 0 };
    if rows != want {
        return Err(format!("{rows} audit rows, expected {want}").into());
    }
    if audited {
        let one = audit_log::Entity::find()
            .one(db)
            .await?
            .ok_or("no audit row")?;
        let changes = one.changes.unwrap_or_default();
        let ok = match op {
            Op::UpdateMany => {
                changes
                    == serde_json::json!({"views": {"old": 0, "new": 1}, "published": {"old": false, "new": true}})
            }
            Op::DeleteMany => {
                changes["title"]["old"].is_string()
                    && changes["views"] == serde_json::json!({"old": 0})
            }
        };
        if !ok {
            return Err(format!("unexpected diff {changes}").into());
        }
    }
    Ok(elapsed)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn open(
    backend: DbBackend,
) -> Result<(DatabaseConnection, Option<(DatabaseConnection, String)>)> {
    let name = format!("bench_bulk_{}", std::process::id());
    let connect = |url: String| async move {
        let mut o = ConnectOptions::new(url);
        o.sqlx_logging(false)
            .test_before_acquire(false)
            .max_connections(2);
        Database::connect(o).await
    };
    Ok(match backend {
        DbBackend::Sqlite => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            let _ = std::fs::remove_file(&path);
            let db = connect(format!("sqlite://{}?mode=rwc", path.display())).await?;
            db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
            (db, None)
        }
        DbBackend::Postgres => {
            let url = std::env::var("AUDIT_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            let admin = connect(url.clone()).await?;
            admin
                .execute_unprepared(&format!("CREATE SCHEMA \"{name}\""))
                .await?;
            let mut o = ConnectOptions::new(url);
            o.sqlx_logging(false)
                .test_before_acquire(false)
                .max_connections(2)
                .set_schema_search_path(name.clone());
            (
                Database::connect(o).await?,
                Some((admin, format!("DROP SCHEMA \"{name}\" CASCADE"))),
            )
        }
        _ => {
            let url = std::env::var("AUDIT_TEST_MYSQL_URL")
                .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
            let admin = connect(url.clone()).await?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
                .await?;
            let base = url
                .rsplit_once('/')
                .map_or(url.as_str(), |(b, _)| b)
                .to_owned();
            (
                connect(format!("{base}/{name}")).await?,
                Some((admin, format!("DROP DATABASE `{name}`"))),
            )
        }
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let repeats: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    sea_orm_audit::register::<article::Entity>();
    println!(
        "| backend | statement | rows | plain median ms | audited median ms | audited/plain |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    for backend in [DbBackend::Sqlite, DbBackend::Postgres, DbBackend::MySql] {
        let (db, cleanup) = open(backend).await?;
        Migrator::up(&db, None).await?;
        Schema::new(backend)
            .builder()
            .register(article::Entity)
            .apply(&db)
            .await?;
        for (label, op) in [
            ("update_many", Op::UpdateMany),
            ("delete_many", Op::DeleteMany),
        ] {
            let (mut plain, mut audited) = (Vec::new(), Vec::new());
            for rep in 0..repeats {
                // Alternate which variant goes first, so drift hits both.
                for audited_first in [rep % 2 == 0, rep % 2 != 0] {
                    if audited_first {
                        audited.push(run(&db, true, op, n).await?);
                    } else {
                        plain.push(run(&db, false, op, n).await?);
                    }
                }
            }
            let (p, a) = (median(plain), median(audited));
            println!(
                "| {backend:?} | {label} | {n} | {:.1} | {:.1} | **{:.2}** |",
                p.as_secs_f64() * 1e3,
                a.as_secs_f64() * 1e3,
                a.as_secs_f64() / p.as_secs_f64()
            );
        }
        if let Some((admin, drop)) = cleanup {
            db.close().await?;
            admin.execute_unprepared(&drop).await?;
        }
    }
    Ok(())
}
