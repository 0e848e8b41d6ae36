use std::sync::Arc;

use sea_orm::ActiveValue::{Set, Unchanged};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    IntoActiveModel, TransactionTrait,
};
use sea_orm_audit::{AtomicWrite, AuditConfig, AuditError, is_transaction};
use sea_orm_audit_tests::fixtures::article;
use sea_orm_audit_tests::{TestDb, backend_test};
use serde_json::json;

use crate::common::{art, changes, sqlite_busy, trail};

async fn rename_audit_log(db: &TestDb, away: bool) -> Result<(), DbErr> {
    let (from, to) = if away {
        ("audit_log", "audit_log_moved")
    } else {
        ("audit_log_moved", "audit_log")
    };
    let sql = match db.backend {
        sea_orm_audit_tests::Backend::MySql => format!("RENAME TABLE `{from}` TO `{to}`"),
        _ => format!("ALTER TABLE \"{from}\" RENAME TO \"{to}\""),
    };
    db.db.execute_unprepared(&sql).await.map(|_| ())
}

#[test]
fn seaorm_connection_types_are_classified() {
    assert!(is_transaction::<DatabaseTransaction>());
    assert!(is_transaction::<&DatabaseTransaction>());
    assert!(!is_transaction::<DatabaseConnection>());
}

backend_test!(async fn rollback_leaves_no_rows(db) {
    let txn = db.db.begin().await?;
    let a = art("doomed").insert(&txn).await?;
    let mut am = a.clone().into_active_model();
    am.views = Set(2);
    am.update(&txn).await?;
    assert_eq!(trail(&txn).await?.len(), 2, "visible inside the transaction");
    txn.rollback().await?;
    assert!(article::Entity::find().all(&db.db).await?.is_empty());
    assert!(trail(&db.db).await?.is_empty());

    // Committed: both the change and its rows are there.
    let txn = db.db.begin().await?;
    art("kept").insert(&txn).await?;
    txn.commit().await?;
    assert_eq!(article::Entity::find().all(&db.db).await?.len(), 1);
    assert_eq!(trail(&db.db).await?.len(), 1);
    Ok(())
});

backend_test!(async fn failing_audit_insert_fails_the_operation(db) {
    let existing = art("before").insert(&db.db).await?;
    rename_audit_log(db, true).await?;

    let txn = db.db.begin().await?;
    let err = art("unrecorded").insert(&txn).await.expect_err("audit insert must fail the write");
    drop(txn);
    let msg = err.to_string();
    assert!(AuditError::is_audit_error(&err), "{msg}");
    assert!(msg.contains("audit_log") && msg.contains(sea_orm_audit::AUDIT_LOG_MIGRATION), "{msg}");

    let err = art("atomic").insert_atomic(&db.db).await.expect_err("atomic write fails");
    assert!(AuditError::is_audit_error(&err));

    let txn = db.db.begin().await?;
    let mut am = existing.clone().into_active_model();
    am.views = Set(77);
    assert!(am.update(&txn).await.is_err());
    drop(txn);
    assert!(existing.clone().into_active_model().delete_atomic(&db.db).await.is_err());

    rename_audit_log(db, false).await?;
    let rows = article::Entity::find().all(&db.db).await?;
    assert_eq!(rows, vec![existing], "no change survived without its audit row");
    assert_eq!(trail(&db.db).await?.len(), 1);
    Ok(())
});

backend_test!(async fn strict_mode_refuses_plain_connections(db) {
    let kept = art("kept").insert(&db.db).await?;
    let strict = || AuditConfig::new().strict_transactions(true);

    let err = strict().scope(art("plain").insert(&db.db)).await.expect_err("refused");
    assert!(err.to_string().contains("outside a transaction"), "{err}");
    let mut am = kept.clone().into_active_model();
    am.views = Set(5);
    assert!(strict().scope(am.update(&db.db)).await.is_err());
    assert!(strict().scope(kept.clone().into_active_model().delete(&db.db)).await.is_err());
    assert_eq!(article::Entity::find().all(&db.db).await?, vec![kept.clone()], "nothing was written");

    // Transactions and the atomic one-call methods are accepted.
    strict()
        .scope(async {
            let txn = db.db.begin().await?;
            art("in txn").insert(&txn).await?;
            txn.commit().await?;
            let b = art("atomic").insert_atomic(&db.db).await?;
            let mut am = b.into_active_model();
            am.views = Set(1);
            let b = am.update_atomic(&db.db).await?;
            let mut saved = b.clone().into_active_model();
            saved.title = Set("atomic saved".into());
            saved.save_atomic(&db.db).await?;
            b.into_active_model().delete_atomic(&db.db).await?;
            Ok::<_, DbErr>(())
        })
        .await?;
    let actions: Vec<String> = trail(&db.db).await?.into_iter().map(|r| r.action).collect();
    assert_eq!(actions, ["CREATE", "CREATE", "CREATE", "UPDATE", "UPDATE", "DELETE"]);
    Ok(())
});

/// How often one writer retries SQLite's "database is locked" before giving up.
const MAX_BUSY_RETRIES: u32 = 1000;

backend_test!(async fn concurrent_updates_give_a_consistent_chain(db) {
    let a = art("counter").insert(&db.db).await?;
    let pool = Arc::new(db.connect_again().await?);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let pool = Arc::clone(&pool);
        let id = a.id;
        tasks.push(tokio::spawn(async move {
            let (mut done, mut busy) = (0, 0);
            while done < 4 {
                // The application reads without a lock, so it may compute from a stale
                // value; the audit must still record what really was in the row.
                let seen = article::Entity::find_by_id(id).one(&*pool).await?.map(|m| m.views).unwrap_or(0);
                let txn = pool.begin().await?;
                let am = article::ActiveModel { id: Unchanged(id), views: Set(seen + 1), ..Default::default() };
                match am.update(&txn).await {
                    Ok(_) => {
                        txn.commit().await?;
                        done += 1;
                    }
                    // SQLite refuses a second writer with "database is locked": retry,
                    // a bounded number of times, so that a lock that never clears fails
                    // the test instead of hanging it.
                    Err(e) if sqlite_busy(&e) => {
                        busy += 1;
                        if busy == MAX_BUSY_RETRIES {
                            return Err(DbErr::Custom(format!(
                                "still busy after {MAX_BUSY_RETRIES} retries ({done} of 4 updates done): {e}"
                            )));
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, DbErr>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let rows: Vec<_> = trail(&db.db).await?.into_iter().filter(|r| r.action == "UPDATE").collect();
    let final_views = article::Entity::find_by_id(a.id).one(&db.db).await?.map(|m| m.views);
    assert!(!rows.is_empty());
    let mut expected_old = json!(0);
    for r in &rows {
        let c = changes(r);
        assert_eq!(c["views"]["old"], expected_old, "chain broken at row {}", r.id);
        expected_old = c["views"]["new"].clone();
    }
    assert_eq!(Some(expected_old), final_views.map(|v| json!(v)), "last new value is the stored value");
    Ok(())
});
