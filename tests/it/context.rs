use sea_orm::{ActiveModelTrait, DbErr};
use sea_orm_audit::{RequestContext, hash_session, in_current_scope, with_actor};
use sea_orm_audit_tests::backend_test;
use serde_json::json;

use crate::common::{art, trail};

backend_test!(async fn context_fields_land_in_rows(db) {
    let ctx = RequestContext::new()
        .actor("42", "Ada Lovelace")
        .ip("2001:db8::1")
        .user_agent(&format!("Mozilla/5.0 {}", "x".repeat(2000)))
        .session("raw-session-cookie")
        .request_id("req-abc")
        .metadata(json!({"tenant": "acme"}));
    ctx.scope(art("with context").insert(&db.db)).await?;
    RequestContext::new().ip("not-an-ip<b>").scope(art("bad ip").insert(&db.db)).await?;
    art("no context").insert(&db.db).await?;

    let rows = trail(&db.db).await?;
    let r = &rows[0];
    assert_eq!(r.actor_id.as_deref(), Some("42"));
    assert_eq!(r.actor_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(r.ip_address.as_deref(), Some("2001:db8::1"));
    assert_eq!(r.user_agent.as_deref().map(|u| u.chars().count()), Some(sea_orm_audit::MAX_USER_AGENT_CHARS));
    assert_eq!(r.session_hash.as_deref(), Some(hash_session("raw-session-cookie").as_str()));
    assert!(!format!("{r:?}").contains("raw-session-cookie"));
    assert_eq!(r.request_id.as_deref(), Some("req-abc"));
    assert_eq!(r.metadata, Some(json!({"tenant": "acme"})));
    assert_eq!(rows[1].ip_address, None, "an invalid IP is never stored");
    let r = &rows[2];
    assert!(r.actor_id.is_none() && r.actor_name.is_none() && r.ip_address.is_none());
    assert!(r.user_agent.is_none() && r.session_hash.is_none() && r.request_id.is_none());
    Ok(())
});

backend_test!(async fn concurrent_tasks_never_mix_contexts(db) {
    let pool = std::sync::Arc::new(db.connect_again().await?);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let pool = std::sync::Arc::clone(&pool);
        tasks.push(tokio::spawn(
            RequestContext::new().actor(format!("user-{i}"), format!("User {i}")).request_id(&format!("req-{i}")).scope(
                async move {
                    for j in 0..3 {
                        tokio::task::yield_now().await;
                        art(&format!("{i}-{j}")).insert(&*pool).await?;
                    }
                    Ok::<_, DbErr>(())
                },
            ),
        ));
    }
    for t in tasks {
        t.await??;
    }
    let rows = trail(&db.db).await?;
    assert_eq!(rows.len(), 24);
    for r in rows {
        let title = r.object_repr.clone().unwrap_or_default();
        let i = title.split('-').next().unwrap_or_default();
        assert_eq!(r.actor_id.as_deref(), Some(format!("user-{i}").as_str()), "row {title}");
        assert_eq!(r.request_id.as_deref(), Some(format!("req-{i}").as_str()), "row {title}");
    }
    Ok(())
});

backend_test!(async fn spawned_tasks_and_actor_override(db) {
    let pool = std::sync::Arc::new(db.connect_again().await?);
    let p1 = std::sync::Arc::clone(&pool);
    let p2 = std::sync::Arc::clone(&pool);
    RequestContext::new()
        .actor("1", "Ada")
        .ip("198.51.100.4")
        .scope(async move {
            tokio::spawn(async move { art("spawned plain").insert(&*p1).await }).await.expect("join")?;
            tokio::spawn(in_current_scope(async move { art("spawned carried").insert(&*p2).await }))
                .await
                .expect("join")?;
            with_actor("system", "nightly job", art("as system").insert(&*pool)).await?;
            art("back to ada").insert(&*pool).await?;
            Ok::<_, DbErr>(())
        })
        .await?;
    let rows = trail(&db.db).await?;
    let by = |t: &str| rows.iter().find(|r| r.object_repr.as_deref() == Some(t)).cloned().expect(t);
    assert_eq!(by("spawned plain").actor_id, None, "a spawned task starts with no context");
    assert_eq!(by("spawned plain").ip_address, None);
    assert_eq!(by("spawned carried").actor_id.as_deref(), Some("1"));
    let sys = by("as system");
    assert_eq!((sys.actor_id.as_deref(), sys.actor_name.as_deref()), (Some("system"), Some("nightly job")));
    assert_eq!(sys.ip_address.as_deref(), Some("198.51.100.4"), "other fields are kept");
    assert_eq!(by("back to ada").actor_id.as_deref(), Some("1"));
    Ok(())
});
