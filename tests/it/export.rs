use sea_orm::EntityTrait;
use sea_orm_audit::entity::data_export;
use sea_orm_audit::{AuditError, DataExportRecord, RequestContext, log_export, record_download};
use sea_orm_audit_tests::backend_test;
use serde_json::json;

use crate::common::trail;

backend_test!(async fn export_rows_with_actor_and_anonymous(db) {
    let ctx = RequestContext::new()
        .actor("42", "Ada")
        .ip("203.0.113.7")
        .user_agent("ui/2")
        .request_id("req-exp");
    let big = 5 * (1i64 << 31) + 7; // > 2^31: the original's PositiveIntegerField overflowed here
    let id = ctx
        .scope(log_export(
            &db.db,
            DataExportRecord::new("orders", "csv")
                .record_count(3_000_000_000)
                .file_size(big)
                .filters(json!({"status": ["paid", "refunded"], "from": "2026-01-01"}))
                .file_path("/exports/orders 🦀.csv"),
        ))
        .await?;
    // A scheduled job: no actor, no request.
    let anon = log_export(&db.db, DataExportRecord::new("user list", "xlsx")).await?;
    assert_ne!(id, anon);

    let row = data_export::Entity::find_by_id(id).one(&db.db).await?.expect("row");
    assert_eq!(row.actor_id.as_deref(), Some("42"));
    assert_eq!(row.actor_name.as_deref(), Some("Ada"));
    assert_eq!(row.export_type, "orders");
    assert_eq!(row.file_format, "csv");
    assert_eq!(row.record_count, 3_000_000_000);
    assert_eq!(row.file_size, big);
    assert_eq!(row.filters, Some(json!({"status": ["paid", "refunded"], "from": "2026-01-01"})));
    assert_eq!(row.file_path.as_deref(), Some("/exports/orders 🦀.csv"));
    assert_eq!(row.download_count, 0);
    assert!(row.last_downloaded_at.is_none());
    assert_eq!(row.ip_address.as_deref(), Some("203.0.113.7"));
    assert_eq!(row.user_agent.as_deref(), Some("ui/2"));
    assert_eq!(row.request_id.as_deref(), Some("req-exp"));

    let anon_row = data_export::Entity::find_by_id(anon).one(&db.db).await?.expect("row");
    assert!(anon_row.actor_id.is_none() && anon_row.actor_name.is_none() && anon_row.ip_address.is_none());
    assert_eq!((anon_row.record_count, anon_row.file_size), (0, 0));

    let audit = trail(&db.db).await?;
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|r| r.action == "EXPORT" && r.table_name.as_deref() == Some("data_export")));
    assert_eq!(audit[0].object_pk.as_deref(), Some(id.to_string().as_str()));
    assert_eq!(audit[0].object_repr.as_deref(), Some("orders (csv)"));
    assert_eq!(audit[0].actor_id.as_deref(), Some("42"));
    assert_eq!(audit[0].changes.as_ref().map(|c| c["file_size"].clone()), Some(json!(big)));
    assert!(audit[1].actor_id.is_none());
    Ok(())
});

backend_test!(async fn bad_export_input_is_refused(db) {
    for rec in [
        DataExportRecord::new("", "csv"),
        DataExportRecord::new("x", "  "),
        DataExportRecord::new("x", "csv").record_count(-1),
        DataExportRecord::new("x", "csv").file_size(-1),
        DataExportRecord::new("x", "csv").file_path(&"p".repeat(1025)),
        DataExportRecord::new("x", "csv").file_path("a\nb"),
    ] {
        let err = log_export(&db.db, rec).await.expect_err("refused");
        assert!(matches!(err, AuditError::InvalidInput { .. }), "{err}");
    }
    assert!(data_export::Entity::find().all(&db.db).await?.is_empty());
    assert!(trail(&db.db).await?.is_empty());
    Ok(())
});

backend_test!(async fn downloads_count_atomically(db) {
    let id = log_export(&db.db, DataExportRecord::new("orders", "csv")).await?;
    let before = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..25 {
        let conn = db.db.clone();
        set.spawn(async move { record_download(&conn, id).await });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let row = data_export::Entity::find_by_id(id).one(&db.db).await?.expect("row");
    assert_eq!(row.download_count, 25);
    assert!(row.last_downloaded_at.expect("stamped") > before);
    let again = record_download(&db.db, id).await?;
    assert_eq!(again.download_count, 26);

    let err = record_download(&db.db, id + 1000).await.expect_err("unknown id");
    assert!(matches!(err, AuditError::NotFound { table: "data_export", .. }), "{err}");
    Ok(())
});
