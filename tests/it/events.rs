use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sea_orm::ActiveModelTrait;
use sea_orm_audit::{
    AuditConfig, AuditError, AuditEvent, RequestContext, log_event, log_view, without_audit,
};
use sea_orm_audit_tests::backend_test;
use serde_json::json;

use crate::common::{art, trail};

backend_test!(async fn manual_entry_with_object_and_context(db) {
    let a = art("Quarterly report").insert(&db.db).await?;
    let ctx = RequestContext::new()
        .actor("7", "Grace")
        .ip("2001:db8::1")
        .user_agent("tests/1.0")
        .request_id("req-manual")
        .metadata(json!({"tenant": "acme", "source": "ctx"}));
    let event = AuditEvent::new(" approve ")?
        .object(&a)
        .changes(json!({"state": {"old": "draft", "new": "approved"}}))
        .reason("signed off")
        .metadata(json!({"source": "event"}));
    assert_eq!(event.action(), "APPROVE");
    let id = ctx.scope(log_event(&db.db, event)).await?.expect("written");

    let rows = trail(&db.db).await?;
    let row = rows.iter().find(|r| r.id == id).expect("row");
    assert_eq!(row.action, "APPROVE");
    assert_eq!(row.table_name.as_deref(), Some("article"));
    assert_eq!(row.object_pk.as_deref(), Some(a.id.to_string().as_str()));
    assert_eq!(row.object_repr.as_deref(), Some("Quarterly report"));
    assert_eq!(row.changes, Some(json!({"state": {"old": "draft", "new": "approved"}})));
    assert_eq!(row.reason.as_deref(), Some("signed off"));
    assert_eq!(row.actor_id.as_deref(), Some("7"));
    assert_eq!(row.actor_name.as_deref(), Some("Grace"));
    assert_eq!(row.ip_address.as_deref(), Some("2001:db8::1"));
    assert_eq!(row.user_agent.as_deref(), Some("tests/1.0"));
    assert_eq!(row.request_id.as_deref(), Some("req-manual"));
    assert_eq!(row.metadata, Some(json!({"tenant": "acme", "source": "event"})));
    assert!(row.module.as_deref().unwrap_or_default().contains("fixtures::article"));
    Ok(())
});

backend_test!(async fn manual_entry_tied_to_nothing_and_explicit_context(db) {
    // No object, no context in scope: nulls, not a crash.
    let id = log_event(&db.db, AuditEvent::new("maintenance")?).await?.expect("written");
    // An explicit context wins over the task's.
    let scoped = RequestContext::new().actor("1", "Scoped");
    let explicit = RequestContext::new().actor("2", "Explicit");
    let id2 = scoped
        .scope(log_event(&db.db, AuditEvent::new("IMPORT")?.object_key("invoice", "INV-9").context(explicit)))
        .await?
        .expect("written");
    let rows = trail(&db.db).await?;
    let r1 = rows.iter().find(|r| r.id == id).expect("row");
    assert_eq!(r1.action, "MAINTENANCE");
    assert!(r1.table_name.is_none() && r1.object_pk.is_none() && r1.actor_id.is_none());
    assert!(r1.changes.is_none() && r1.ip_address.is_none());
    let r2 = rows.iter().find(|r| r.id == id2).expect("row");
    assert_eq!(r2.actor_name.as_deref(), Some("Explicit"));
    assert_eq!((r2.table_name.as_deref(), r2.object_pk.as_deref()), (Some("invoice"), Some("INV-9")));
    Ok(())
});

backend_test!(async fn invalid_actions_and_keys_are_refused(db) {
    for bad in ["", "   ", "two words", "tab\there", "nul\0", &"X".repeat(33)] {
        let err = AuditEvent::new(bad).expect_err(bad);
        assert!(matches!(err, AuditError::InvalidInput { field: "action", .. }), "{bad:?}: {err}");
    }
    // 32 characters of 2-byte text fit the 32-character column on every backend.
    let ok = AuditEvent::new(&"é".repeat(32))?;
    assert!(log_event(&db.db, ok).await?.is_some());

    let long_pk = AuditEvent::new("X")?.object_key("t", "9".repeat(256));
    assert!(matches!(log_event(&db.db, long_pk).await, Err(AuditError::InvalidInput { field: "object_pk", .. })));
    let empty_table = AuditEvent::new("X")?.object_key("", "1");
    assert!(matches!(log_event(&db.db, empty_table).await, Err(AuditError::InvalidInput { field: "table_name", .. })));

    // Over-long reason and repr are cut, not refused; emoji survive.
    let id = log_event(
        &db.db,
        AuditEvent::new("NOTE")?.reason(&"🦀".repeat(5000)).repr(&"r".repeat(300)),
    )
    .await?
    .expect("written");
    let row = trail(&db.db).await?.into_iter().find(|r| r.id == id).expect("row");
    let reason = row.reason.expect("reason");
    assert_eq!(reason.chars().count(), sea_orm_audit::MAX_REASON_CHARS);
    assert!(reason.starts_with("🦀🦀") && reason.ends_with('…'));
    assert_eq!(row.object_repr.expect("repr").chars().count(), sea_orm_audit::MAX_REPR_CHARS);
    assert_eq!(trail(&db.db).await?.len(), 2);
    Ok(())
});

backend_test!(async fn view_is_one_row_and_skippable(db) {
    let a = art("Seen").insert(&db.db).await?;
    let before = trail(&db.db).await?.len();
    let ctx = RequestContext::new().actor("9", "Viewer").request_id("req-view");
    let id = ctx.scope(log_view(&db.db, &a)).await?.expect("written");
    let rows = trail(&db.db).await?;
    assert_eq!(rows.len(), before + 1);
    let row = rows.iter().find(|r| r.id == id).expect("row");
    assert_eq!(row.action, "VIEW");
    assert_eq!(row.object_pk.as_deref(), Some(a.id.to_string().as_str()));
    assert_eq!(row.object_repr.as_deref(), Some("Seen"));
    assert_eq!(row.actor_id.as_deref(), Some("9"));
    assert!(row.changes.is_none());

    // Skipped by configuration (case-insensitively), disabled, or suppressed: nothing.
    let skipped = AuditConfig::new().skip_action("view").scope(log_view(&db.db, &a)).await?;
    assert_eq!(skipped, None);
    let disabled = AuditConfig::new().enabled(false).scope(log_view(&db.db, &a)).await?;
    assert_eq!(disabled, None);
    let suppressed = without_audit(log_view(&db.db, &a)).await?;
    assert_eq!(suppressed, None);
    let table_skipped = AuditConfig::new().skip_table("article").scope(log_view(&db.db, &a)).await?;
    assert_eq!(table_skipped, None);
    // Other manual actions still go through when only VIEW is skipped.
    let other = AuditConfig::new()
        .skip_action("VIEW")
        .scope(log_event(&db.db, AuditEvent::new("PRINT")?.object(&a)))
        .await?;
    assert!(other.is_some());
    assert_eq!(trail(&db.db).await?.len(), before + 2);

    // One statement per VIEW on every backend (RETURNING or the driver's insert id).
    let mut counted = db.connect_again().await?;
    let statements = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&statements);
    counted.set_metric_callback(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
    });
    assert!(log_view(&counted, &a).await?.is_some());
    assert_eq!(statements.load(Ordering::SeqCst), 1);
    Ok(())
});

backend_test!(async fn manual_entries_join_the_callers_transaction(db) {
    use sea_orm::TransactionTrait;
    let txn = db.db.begin().await?;
    log_event(&txn, AuditEvent::new("DOOMED")?).await?;
    txn.rollback().await?;
    assert!(trail(&db.db).await?.is_empty());
    let txn = db.db.begin().await?;
    log_event(&txn, AuditEvent::new("KEPT")?).await?;
    txn.commit().await?;
    assert_eq!(trail(&db.db).await?.len(), 1);
    Ok(())
});
