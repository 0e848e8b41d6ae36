use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::{Decimal, Uuid};
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel};
use sea_orm_audit::{
    AuditError, AuditEvent, AuditQuery, Cursor, ObjectStatus, RequestContext, RestoreKind,
    log_event, object_history, restore, state_at,
};
use sea_orm_audit_tests::backend_test;
use sea_orm_audit_tests::fixtures::{article, tag, translation, typed};
use serde_json::json;

use crate::common::trail;

/// When the newest audit row was stamped: `state_at` that moment includes that write
/// and none after it. Taken from the stored row, not from the test's clock, so that it
/// holds however close together the writes are and whatever the clock does.
async fn stamped(db: &sea_orm::DatabaseConnection) -> Result<DateTime<Utc>, sea_orm::DbErr> {
    trail(db)
        .await?
        .last()
        .map(|r| r.created_at)
        .ok_or_else(|| sea_orm::DbErr::Custom("no audit row yet".into()))
}

backend_test!(async fn keyset_pages_both_ways_with_filters(db) {
    for i in 0..25 {
        let ctx = RequestContext::new()
            .actor(if i % 2 == 0 { "even" } else { "odd" }, "x")
            .request_id(&format!("req-{}", i / 5));
        let action = if i % 3 == 0 { "APPROVE" } else { "REJECT" };
        ctx.scope(log_event(&db.db, AuditEvent::new(action)?.object_key("invoice", (i % 4).to_string())))
            .await?;
    }
    let all = trail(&db.db).await?;
    assert_eq!(all.len(), 25);

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = AuditQuery::new().limit(10).after(cursor).fetch(&db.db).await?;
        pages += 1;
        seen.extend(page.entries.iter().map(|e| e.id));
        match page.next {
            // Cursors survive a round trip through text (a URL parameter).
            Some(c) => cursor = Some(c.to_string().parse::<Cursor>()?),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut newest_first: Vec<i64> = all.iter().map(|r| r.id).collect();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let first = AuditQuery::new().oldest_first().limit(7).fetch(&db.db).await?;
    let cursor: Option<Cursor> = first.next.map(|c| c.to_string().parse()).transpose()?;
    assert_eq!(cursor, first.next, "the text form keeps the full timestamp");
    let second = AuditQuery::new().oldest_first().limit(7).after(cursor).fetch(&db.db).await?;
    let ids: Vec<i64> = first.entries.iter().chain(&second.entries).map(|e| e.id).collect();
    assert_eq!(ids, all.iter().take(14).map(|r| r.id).collect::<Vec<_>>());

    let even = AuditQuery::new().actor("even").limit(100).fetch(&db.db).await?;
    assert_eq!(even.entries.len(), 13);
    assert!(even.next.is_none());
    let approve = AuditQuery::new().action("approve").fetch(&db.db).await?;
    assert_eq!(approve.entries.len(), 9);
    let both = AuditQuery::new().action("APPROVE").action("REJECT").fetch(&db.db).await?;
    assert_eq!(both.entries.len(), 25);
    let req = AuditQuery::new().request_id("req-2").fetch(&db.db).await?;
    assert_eq!(req.entries.len(), 5);
    let obj = AuditQuery::new().object("invoice", "3").fetch(&db.db).await?;
    assert_eq!(obj.entries.len(), 6);
    let mid = all[10].created_at;
    let since = AuditQuery::new().since(mid).limit(100).fetch(&db.db).await?;
    let until = AuditQuery::new().until(mid).limit(100).fetch(&db.db).await?;
    assert_eq!(since.entries.len() + until.entries.len(), 25, "since inclusive, until exclusive");
    assert!(matches!(AuditQuery::new().action("bad word").fetch(&db.db).await, Err(AuditError::InvalidInput { .. })));
    assert!("garbage".parse::<Cursor>().is_err());
    Ok(())
});

fn sample(n: i64) -> typed::ActiveModel {
    typed::ActiveModel {
        small: Set(n as i16),
        big: Set(9_007_199_254_740_993 + n),
        text: Set(format!("v{n} é🦀")),
        flag: Set(n % 2 == 0),
        maybe: Set(if n == 0 { None } else { Some(n as i32) }),
        ratio: Set(0.25 * n as f64),
        // Whole seconds: the fixture column is a MariaDB `timestamp`, which drops fractions.
        at: Set(DateTime::from_timestamp(1_800_000_000 + n, 0).unwrap_or_default()),
        day: Set(chrono::NaiveDate::from_ymd_opt(2026, 2, 28).unwrap_or_default()),
        price: Set(Decimal::new(123_456_789 + n, 4)),
        uid: Set(Uuid::from_u128(0x1234_5678 + n as u128)),
        doc: Set(json!({"rev": n, "tags": ["a", null]})),
        blob: Set(vec![0, 255, n as u8, 10]),
        ..Default::default()
    }
}

fn edit(m: &typed::Model, n: i64) -> typed::ActiveModel {
    let mut am = sample(n);
    am.id = sea_orm::ActiveValue::Unchanged(m.id);
    am
}

backend_test!(async fn state_at_across_create_updates_delete_restore(db) {
    let v0 = sample(0).insert(&db.db).await?;
    let t0 = stamped(&db.db).await?;
    // Stamps are stored to the microsecond or finer: one microsecond earlier is before
    // the CREATE.
    let t_before = t0 - TimeDelta::microseconds(1);
    let v1 = edit(&v0, 1).update(&db.db).await?;
    let t1 = stamped(&db.db).await?;
    let v2 = edit(&v1, 2).update(&db.db).await?;
    let t2 = stamped(&db.db).await?;
    v2.clone().into_active_model().delete(&db.db).await?;
    let t3 = stamped(&db.db).await?;
    assert!(t_before < t0 && t0 < t1 && t1 < t2 && t2 < t3, "distinct stamps");

    let s = state_at::<typed::Model>(&db.db, v0.id, t_before).await?;
    assert_eq!(s.status, ObjectStatus::NotRecorded);
    assert!(s.model.is_none() && s.last_entry_id.is_none());
    for (t, want) in [(t0, &v0), (t1, &v1), (t2, &v2)] {
        let s = state_at::<typed::Model>(&db.db, v0.id, t).await?;
        assert_eq!(s.status, ObjectStatus::Exists);
        assert!(s.missing.is_empty(), "{:?}", s.missing);
        assert_eq!(s.model.as_ref(), Some(want));
    }
    let gone = state_at::<typed::Model>(&db.db, v0.id, t3).await?;
    assert_eq!(gone.status, ObjectStatus::Deleted);
    assert_eq!(gone.model.as_ref(), Some(&v2), "the before-image of the delete");
    assert!(typed::Entity::find_by_id(v0.id).one(&db.db).await?.is_none());

    // Restoring to a moment when it was deleted is refused; to t1 undeletes it.
    assert!(matches!(
        restore::<typed::ActiveModel>(&db.db, v0.id, t3, "x").await,
        Err(AuditError::NoState { .. })
    ));
    let ctx = RequestContext::new().actor("9", "Restorer").request_id("req-restore");
    let back = ctx
        .scope(restore::<typed::ActiveModel>(&db.db, v0.id, t1, "deleted by mistake"))
        .await?;
    assert_eq!(back.kind, RestoreKind::Inserted);
    assert_eq!(back.model, v1);
    assert_eq!(typed::Entity::find_by_id(v0.id).one(&db.db).await?, Some(v1.clone()));
    let t4 = stamped(&db.db).await?;

    let rows = object_history::<typed::Entity>(&db.db, v0.id).await?;
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["CREATE", "UPDATE", "UPDATE", "DELETE", "CREATE", "RESTORE"]);
    let create_again = &rows[4];
    assert_eq!(create_again.actor_id.as_deref(), Some("9"));
    assert_eq!(create_again.request_id.as_deref(), Some("req-restore"));
    let meta = create_again.metadata.clone().unwrap_or_default();
    assert_eq!(meta["restore"]["reason"], "deleted by mistake");
    assert_eq!(meta["restore"]["source_entry_id"], json!(rows[1].id));
    let restore_row = &rows[5];
    assert_eq!(Some(restore_row.id), back.restore_entry_id);
    assert_eq!(restore_row.reason.as_deref(), Some("deleted by mistake"));
    assert_eq!(restore_row.changes.clone().unwrap_or_default()["result"], "inserted");
    assert_eq!(restore_row.request_id.as_deref(), Some("req-restore"));

    let now = state_at::<typed::Model>(&db.db, v0.id, t4).await?;
    assert_eq!((now.status, now.model.as_ref()), (ObjectStatus::Exists, Some(&v1)));
    // Earlier states are unchanged by later history.
    assert_eq!(state_at::<typed::Model>(&db.db, v0.id, t2).await?.model, Some(v2.clone()));

    // Restoring an existing object is an audited UPDATE of what differs.
    let again = restore::<typed::ActiveModel>(&db.db, v0.id, t0, "back to the first version").await?;
    assert_eq!(again.kind, RestoreKind::Updated);
    assert_eq!(again.model, v0);
    let rows = object_history::<typed::Entity>(&db.db, v0.id).await?;
    let update = &rows[rows.len() - 2];
    assert_eq!(update.action, "UPDATE");
    assert_eq!(update.changes.clone().unwrap_or_default()["small"], json!({"old": 1, "new": 0}));
    let same = restore::<typed::ActiveModel>(&db.db, v0.id, t0, "no-op").await?;
    assert_eq!(same.kind, RestoreKind::Unchanged);
    assert_eq!(object_history::<typed::Entity>(&db.db, v0.id).await?.len(), rows.len() + 1);
    Ok(())
});

backend_test!(async fn excluded_and_masked_fields_are_reported_missing(db) {
    let a = article::ActiveModel {
        title: Set("Secret plans".into()),
        body: Set("b".into()),
        body_html: Set("<p>b</p>".into()),
        editor_token: Set(Some("tok".into())),
        views: Set(1),
        published: Set(false),
        ..Default::default()
    }
    .insert(&db.db)
    .await?;
    let t = stamped(&db.db).await?;
    let s = state_at::<article::Model>(&db.db, a.id, t).await?;
    assert_eq!(s.status, ObjectStatus::Exists);
    assert!(s.model.is_none());
    assert_eq!(s.missing, ["body_html", "editor_token"]);
    assert_eq!(s.state["title"], "Secret plans");
    assert!(!s.state.contains_key("editor_token"));
    match restore::<article::ActiveModel>(&db.db, a.id, t, "try").await {
        Err(AuditError::IncompleteState { missing, .. }) => assert_eq!(missing, ["body_html", "editor_token"]),
        other => panic!("expected IncompleteState, got {other:?}"),
    }
    // Unknown object: nothing recorded.
    let none = state_at::<article::Model>(&db.db, a.id + 99, t).await?;
    assert_eq!(none.status, ObjectStatus::NotRecorded);
    Ok(())
});

backend_test!(async fn history_of_uuid_and_composite_keys(db) {
    let id = Uuid::from_u128(42);
    let tg = tag::ActiveModel { id: Set(id), label: Set("rust".into()) }.insert(&db.db).await?;
    let mut am = tg.into_active_model();
    am.label = Set("rustlang".into());
    am.update(&db.db).await?;
    let rows = object_history::<tag::Entity>(&db.db, id).await?;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].object_pk.as_deref(), Some(id.to_string().as_str()));

    translation::ActiveModel { article_id: Set(7), lang: Set("en".into()), title: Set("Hi".into()) }
        .insert(&db.db)
        .await?;
    translation::ActiveModel { article_id: Set(7), lang: Set("fr".into()), title: Set("Salut".into()) }
        .insert(&db.db)
        .await?;
    let t = stamped(&db.db).await?;
    let rows = object_history::<translation::Entity>(&db.db, (7, "fr".to_owned())).await?;
    assert_eq!(rows.len(), 1);
    let s = state_at::<translation::Model>(&db.db, (7, "fr".to_owned()), t).await?;
    assert_eq!(s.model.map(|m| m.title), Some("Salut".into()));
    let page = AuditQuery::new().object_of::<translation::Entity>((7, "en".to_owned())).fetch(&db.db).await?;
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].object_pk.as_deref(), Some(r#"[7,"en"]"#));
    Ok(())
});
