//! PostgreSQL's one-statement path of the auditing connection builds the audit JSON in
//! SQL. Its rows must be exactly the rows the Rust path writes for the same changes;
//! on SQLite and MariaDB both connections below take the Rust path, so the test also
//! checks that the two configurations agree there.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    IntoActiveModel, ModelTrait, QueryFilter, SqlErr, TransactionTrait,
};
use sea_orm_audit::entity::audit_log;
use sea_orm_audit::{AuditedConnection, RequestContext, WrapperOptions};
use sea_orm_audit_tests::fixtures::wide::{self, Mood};
use sea_orm_audit_tests::{Backend, backend_test};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::common::{counting, trail};

fn naive(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32, micro: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_micro_opt(h, min, s, micro))
        .unwrap_or_default()
}

/// A row with awkward values: fractions of 0, 3 and 6 digits, quotes, unicode, a repr
/// longer than the bound, JSON with nesting and escapes, binary long enough for
/// PostgreSQL's base64 to wrap lines.
fn sample(id: i32, backend: Backend) -> wide::ActiveModel {
    // Years past 9999 exist on PostgreSQL only (MariaDB's TIMESTAMP ends in 2038).
    let far = if backend == Backend::Postgres {
        10_000
    } else {
        2_037
    };
    wide::ActiveModel {
        id: Set(id),
        name: Set(format!("{id} « it's \"quoted\" » {}", "é".repeat(220))),
        body: Set("line one\nline two\t\\ {braces} NULL".into()),
        small: Set(-7),
        big: Set(9_007_199_254_740_993),
        flag: Set(true),
        maybe: Set(None),
        note: Set(Some(String::new())),
        at: Set(Utc.from_utc_datetime(&naive(2026, 11, 28, 3, 4, 5, 0))),
        at_tz: Set(Utc
            .from_utc_datetime(&naive(far, 1, 2, 3, 4, 5, 120_000))
            .fixed_offset()),
        local: Set(naive(1999, 12, 31, 23, 59, 59, 123_456)),
        day: Set(NaiveDate::from_ymd_opt(far, 2, 28).unwrap_or_default()),
        clock: Set(NaiveTime::from_hms_micro_opt(7, 8, 9, 500).unwrap_or_default()),
        uid: Set(uuid::Uuid::from_u128(
            0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
        )),
        doc: Set(json!({"b": [1, 2.5, null, "x\"y"], "a": {"ü": true}, "n": -0.125})),
        plain_doc: Set(json!(["spaces  kept?", {"z": 1, "a": 2}])),
        blob: Set((0u8..=160).collect()),
        mood: Set(Mood::Quoted),
        secret: Set("hunter2".into()),
        ratio: Set(0.1),
    }
}

/// The audit rows as the trail shows them, without ids and times.
async fn rows(db: &DatabaseConnection) -> Result<Vec<serde_json::Value>, DbErr> {
    Ok(trail(db)
        .await?
        .into_iter()
        .map(|r| {
            json!([
                r.action,
                r.table_name,
                r.object_pk,
                r.object_repr,
                r.changes,
                r.actor_id,
                r.actor_name,
                r.ip_address,
                r.request_id,
                r.module,
                r.metadata
            ])
        })
        .collect())
}

/// Inserts, updates (single, bulk, no-op) and deletes (single, bulk) through `conn`,
/// returning what `exec()` reported.
async fn scenario(conn: &AuditedConnection, backend: Backend) -> Result<Vec<u64>, DbErr> {
    let mut affected = Vec::new();
    let r = wide::Entity::insert_many([sample(1, backend), sample(2, backend), sample(3, backend)])
        .exec_without_returning(conn)
        .await?;
    affected.push(r);
    let one = wide::Entity::find_by_id(1)
        .one(conn)
        .await?
        .ok_or(DbErr::RecordNotFound("1".into()))?;
    let updated = edit(one).update(conn).await?;
    // Nothing recorded changes: no row (only the excluded column moves).
    let mut same = updated.clone().into_active_model();
    same.ratio = Set(0.3);
    same.update(conn).await?;
    let r = wide::Entity::update_many()
        .col_expr(wide::Column::Small, Expr::col(wide::Column::Small).add(1))
        .col_expr(wide::Column::Flag, Expr::value(false))
        .filter(wide::Column::Id.gte(2))
        .exec(conn)
        .await?;
    affected.push(r.rows_affected);
    updated.delete(conn).await?;
    let r = wide::Entity::delete_many()
        .filter(wide::Column::Id.gt(0))
        .exec(conn)
        .await?;
    affected.push(r.rows_affected);
    Ok(affected)
}

/// The request context every write of the comparison runs under.
fn ctx_of() -> RequestContext {
    RequestContext::new()
        .actor("7", "Ada O'Brien")
        .ip("203.0.113.9")
        .request_id("req-one")
        .metadata(json!({"tenant": "acme"}))
}

/// The scenario's single-row update of `one`.
fn edit(one: wide::Model) -> wide::ActiveModel {
    let mut am = one.into_active_model();
    am.name = Set("renamed".into());
    am.maybe = Set(Some(42));
    am.note = Set(None);
    am.at = Set(Utc.from_utc_datetime(&naive(2026, 11, 28, 3, 4, 5, 1_000)));
    am.local = Set(naive(2000, 1, 1, 0, 0, 0, 0));
    am.clock = Set(NaiveTime::from_hms_opt(0, 0, 0).unwrap_or_default());
    am.doc = Set(json!({"b": [1, 2.5, null, "x\"y"], "a": {"ü": false}, "n": -0.125}));
    am.plain_doc = Set(json!(["spaces  kept?", {"a": 2, "z": 1}]));
    am.blob = Set(vec![0, 255]);
    am.mood = Set(Mood::Calm);
    am.secret = Set("hunter3".into());
    am.ratio = Set(0.2);
    am
}

backend_test!(async fn one_statement_rows_match_the_rust_path(db) {
    sea_orm_audit::register::<wide::Entity>();
    let ctx = ctx_of();
    let rust = AuditedConnection::with_options(db.db.clone(), WrapperOptions::default().one_statement(false));
    let affected_rust = ctx.clone().scope(scenario(&rust, db.backend)).await?;
    let expected = rows(&db.db).await?;
    audit_log::Entity::delete_many().exec(&db.db).await?;

    let (counted, statements) = counting(&db.db);
    let one = AuditedConnection::new(counted);
    let affected_one = ctx.scope(scenario(&one, db.backend)).await?;
    let got = rows(&db.db).await?;

    assert_eq!(affected_one, affected_rust);
    assert_eq!(affected_one, vec![3, 2, 2]);
    assert_eq!(got.len(), 3 + 1 + 2 + 1 + 2, "{got:#?}");
    // Statement by statement the order is fixed; within one multi-row statement the
    // database may return (and so record) the rows in another order.
    let action = |v: &Vec<serde_json::Value>| v.iter().map(|r| r[0].clone()).collect::<Vec<_>>();
    assert_eq!(action(&got), action(&expected));
    let sorted = |v: &Vec<serde_json::Value>| {
        let mut v: Vec<String> = v.iter().map(ToString::to_string).collect();
        v.sort();
        v
    };
    for (i, (g, e)) in sorted(&got).iter().zip(&sorted(&expected)).enumerate() {
        assert_eq!(g, e, "row {i} in sorted order");
    }
    if db.backend == Backend::Postgres {
        // insert_many, find, update, no-op update, update_many, delete, delete_many: one
        // statement each, no transaction, no before-image read.
        assert_eq!(statements.load(Ordering::Relaxed), 7);
    }
    // The hooks on a plain connection write the same CREATE and UPDATE rows; on
    // PostgreSQL their UPDATE and its row are one statement too, and SeaORM's read-back
    // of the row is the only other statement.
    audit_log::Entity::delete_many().exec(&db.db).await?;
    let hooked = async {
        let one = sample(1, db.backend).insert(&db.db).await?;
        let before = statements.load(Ordering::Relaxed);
        let mut counted = db.db.clone();
        let counter = Arc::clone(&statements);
        counted.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let updated = edit(one).update(&counted).await?;
        let update = statements.load(Ordering::Relaxed) - before;
        // In a transaction the locked before-image and the DELETE row are one statement.
        let txn = counted.begin().await?;
        let before = statements.load(Ordering::Relaxed);
        let res = updated.delete(&txn).await?;
        let delete = statements.load(Ordering::Relaxed) - before;
        txn.commit().await?;
        assert_eq!(res.rows_affected, 1);
        Ok::<_, DbErr>((update, delete))
    };
    let (update_statements, delete_statements) = ctx_of().scope(hooked).await?;
    let by_hooks = rows(&db.db).await?;
    assert_eq!(by_hooks.len(), 3, "{by_hooks:#?}");
    assert_eq!(by_hooks[0], expected[0], "CREATE");
    assert_eq!(by_hooks[1], expected[3], "UPDATE");
    assert_eq!(by_hooks[2], expected[6], "DELETE");
    assert!(wide::Entity::find_by_id(1).one(&db.db).await?.is_none());
    match db.backend {
        Backend::Postgres => assert_eq!((update_statements, delete_statements), (2, 2)),
        // The before-image and the UPDATE in one call, the audit row, SeaORM's read-back.
        Backend::Sqlite => assert_eq!(update_statements, 3),
        Backend::MySql => {}
    }

    let first = &got[3];
    assert_eq!(first[0], "UPDATE");
    assert_eq!(first[4]["secret"], json!({"masked": true}));
    assert!(first[4].get("ratio").is_none(), "excluded");
    assert!(first[4].get("small").is_none(), "unchanged");
    assert_eq!(first[4]["maybe"], json!({"old": null, "new": 42}));
    Ok(())
});

backend_test!(async fn one_statement_path_keeps_errors_and_atomicity(db) {
    sea_orm_audit::register::<wide::Entity>();
    let conn = AuditedConnection::new(db.db.clone());
    wide::Entity::insert(sample(1, db.backend)).exec(&conn).await?;
    // The write's own error keeps its type.
    let dup = wide::Entity::insert(sample(1, db.backend)).exec(&conn).await;
    let err = dup.err().ok_or("duplicate key accepted")?;
    assert!(matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))), "{err}");
    // Inside a transaction the write and its row roll back together.
    let txn = conn.begin().await?;
    wide::Entity::delete_by_id(1).exec(&txn).await?;
    txn.rollback().await?;
    assert!(wide::Entity::find_by_id(1).one(&db.db).await?.is_some());
    let actions: Vec<String> = trail(&db.db).await?.into_iter().map(|r| r.action).collect();
    assert_eq!(actions, ["CREATE"]);
    // Without the audit table the write fails with the typed error, and nothing changes.
    db.db.execute_unprepared("DROP TABLE audit_log").await?;
    let gone = wide::Entity::delete_by_id(1).exec(&conn).await;
    let msg = gone.err().ok_or("delete without audit table succeeded")?.to_string();
    assert!(msg.contains("m20261127_000001_create_audit_log"), "{msg}");
    assert!(wide::Entity::find_by_id(1).one(&db.db).await?.is_some());
    Ok(())
});
