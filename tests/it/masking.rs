use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, IntoActiveModel};
use sea_orm_audit::AuditConfig;
use sea_orm_audit_tests::backend_test;
use sea_orm_audit_tests::fixtures::{article, member};
use serde_json::json;

use crate::common::{art, changes, keys, trail};

fn new_member() -> member::ActiveModel {
    member::ActiveModel {
        email: Set("ada@example.com".into()),
        password_hash: Set("$argon2id$secret-hash".into()),
        api_key: Set(Some("sk_live_123".into())),
        access_token: Set(Some("at_456".into())),
        reset_token: Set(Some("rt_789".into())),
        display_name: Set("Ada".into()),
        ..Default::default()
    }
}

/// No stored text anywhere in the row may contain a secret value.
fn assert_no_secret(rows: &[sea_orm_audit::entity::audit_log::Model], secrets: &[&str]) {
    for r in rows {
        let all = format!("{:?}", r);
        for s in secrets {
            assert!(!all.contains(s), "secret {s} leaked into {all}");
        }
    }
}

backend_test!(async fn excluded_and_masked_fields(db) {
    let a = article::ActiveModel {
        title: Set("T".into()),
        body: Set("b".into()),
        body_html: Set("<p>secret html</p>".into()),
        editor_token: Set(Some("editor-secret".into())),
        views: Set(0),
        published: Set(false),
        ..Default::default()
    }
    .insert(&db.db)
    .await?;
    let mut am = a.clone().into_active_model();
    am.body_html = Set("<p>other html</p>".into()); // excluded only: no row
    am.update(&db.db).await?;
    let mut am = a.into_active_model();
    am.body_html = Set("<p>third</p>".into());
    am.editor_token = Set(Some("new-editor-secret".into()));
    am.update(&db.db).await?;

    let rows = trail(&db.db).await?;
    assert_eq!(rows.len(), 2, "a change to an excluded field alone writes no row");
    assert!(changes(&rows[0]).get("body_html").is_none());
    assert_eq!(changes(&rows[0])["editor_token"], json!({"masked": true}));
    assert_eq!(changes(&rows[1]), json!({"editor_token": {"masked": true}}));
    assert_no_secret(&rows, &["secret html", "other html", "third", "editor-secret"]);
    Ok(())
});

backend_test!(async fn secret_names_masked_by_default(db) {
    let m = new_member().insert(&db.db).await?;
    let mut am = m.into_active_model();
    am.password_hash = Set("$argon2id$new-hash".into());
    am.display_name = Set("Ada L.".into());
    am.update(&db.db).await?;

    let rows = trail(&db.db).await?;
    let c = changes(&rows[0]);
    assert_eq!(c["password_hash"], json!({"masked": true}));
    assert_eq!(c["api_key"], json!({"masked": true}));
    assert_eq!(c["access_token"], json!({"masked": true}));
    assert_eq!(c["reset_token"], json!({"new": "rt_789"}), "unmask() opts a field out");
    assert_eq!(c["display_name"], json!({"new": "Ada"}));
    assert_eq!(changes(&rows[1]), json!({
        "password_hash": {"masked": true},
        "display_name": {"old": "Ada", "new": "Ada L."},
    }));
    assert_no_secret(&rows, &["secret-hash", "new-hash", "sk_live_123", "at_456"]);
    Ok(())
});

backend_test!(async fn config_extends_or_disables_masking(db) {
    AuditConfig::new()
        .secret_masking(false)
        .mask_field("member.display_name")
        .exclude_field("email")
        .scope(new_member().insert(&db.db))
        .await?;
    AuditConfig::new()
        .secret_name("display_name")
        .scope(new_member_with_email("b@example.com").insert(&db.db))
        .await?;
    let rows = trail(&db.db).await?;
    let off = changes(&rows[0]);
    assert_eq!(off["password_hash"], json!({"new": "$argon2id$secret-hash"}));
    assert_eq!(off["display_name"], json!({"masked": true}));
    assert!(off.get("email").is_none());
    assert_eq!(keys(&off), ["access_token", "api_key", "display_name", "id", "password_hash", "reset_token"]);
    let extended = changes(&rows[1]);
    assert_eq!(extended["display_name"], json!({"masked": true}));
    assert_eq!(extended["password_hash"], json!({"masked": true}));
    Ok(())
});

fn new_member_with_email(email: &str) -> member::ActiveModel {
    let mut m = new_member();
    m.email = Set(email.into());
    m
}

backend_test!(async fn repr_never_shows_a_hidden_value(db) {
    let a = AuditConfig::new()
        .mask_field("article.title")
        .scope(
            art("Top secret title").insert(&db.db),
        )
        .await?;
    let rows = trail(&db.db).await?;
    assert_eq!(rows[0].object_repr, Some(format!("article#{}", a.id)));
    assert_no_secret(&rows, &["Top secret"]);
    Ok(())
});
