use sea_orm::ActiveValue::{NotSet, Set, Unchanged};
use sea_orm::prelude::*;
use sea_orm::{ActiveModelTrait, IntoActiveModel};
use sea_orm_audit::AuditConfig;
use sea_orm_audit_tests::backend_test;
use sea_orm_audit_tests::fixtures::{article, tag, translation, typed};
use serde_json::json;

use crate::common::{changes, counting, keys, trail};

fn new_article(title: &str) -> article::ActiveModel {
    article::ActiveModel {
        title: Set(title.into()),
        body: Set("body text".into()),
        body_html: Set("<p>body</p>".into()),
        editor_token: Set(Some("tok-123".into())),
        views: Set(0),
        published: Set(false),
        ..Default::default()
    }
}

backend_test!(async fn create_update_delete_rows(db) {
    let a = new_article("First").insert(&db.db).await?;
    let mut am = a.clone().into_active_model();
    am.title = Set("First (edited)".into());
    am.views = Set(5);
    let b = am.update(&db.db).await?;
    assert_eq!(b.title, "First (edited)");
    assert_eq!(b.views, 5);
    b.clone().into_active_model().delete(&db.db).await?;

    let rows = trail(&db.db).await?;
    assert_eq!(rows.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), ["CREATE", "UPDATE", "DELETE"]);
    for r in &rows {
        assert_eq!(r.table_name.as_deref(), Some("article"));
        assert_eq!(r.object_pk.as_deref(), Some(a.id.to_string().as_str()));
        assert!(r.module.as_deref().unwrap_or_default().contains("fixtures::article"));
        assert!(r.actor_id.is_none() && r.ip_address.is_none() && r.request_id.is_none());
    }
    assert_eq!(rows[0].object_repr.as_deref(), Some("First"));
    assert_eq!(rows[1].object_repr.as_deref(), Some("First (edited)"));

    let create = changes(&rows[0]);
    assert_eq!(keys(&create), ["body", "editor_token", "id", "published", "title", "views"]);
    assert_eq!(create["id"], json!({"new": a.id}));
    assert_eq!(create["title"], json!({"new": "First"}));
    assert_eq!(create["views"], json!({"new": 0}));
    assert_eq!(create["published"], json!({"new": false}));
    assert_eq!(create["editor_token"], json!({"masked": true}));

    let update = changes(&rows[1]);
    assert_eq!(update, json!({
        "title": {"old": "First", "new": "First (edited)"},
        "views": {"old": 0, "new": 5},
    }));

    let delete = changes(&rows[2]);
    assert_eq!(keys(&delete), ["body", "editor_token", "id", "published", "title", "views"]);
    assert_eq!(delete["title"], json!({"old": "First (edited)"}));
    assert_eq!(delete["views"], json!({"old": 5}));
    assert!(delete["title"].get("new").is_none());
    assert!(create["title"].get("old").is_none());
    Ok(())
});

backend_test!(async fn update_from_partial_active_model_reads_real_old_values(db) {
    let a = new_article("Partial").insert(&db.db).await?;
    // An active model with only the key and one field: the old values come from the
    // database, not from the caller.
    let am = article::ActiveModel { id: Unchanged(a.id), views: Set(9), ..Default::default() };
    let updated = am.update(&db.db).await?;
    assert_eq!(updated.views, 9);
    assert_eq!(updated.title, "Partial");
    let rows = trail(&db.db).await?;
    assert_eq!(changes(&rows[1]), json!({"views": {"old": 0, "new": 9}}));
    Ok(())
});

backend_test!(async fn save_inserts_then_updates(db) {
    let saved = new_article("Saved").save(&db.db).await?;
    let mut again = saved.clone();
    again.published = Set(true);
    let again = again.save(&db.db).await?;
    assert_eq!(again.published, Unchanged(true));
    let rows = trail(&db.db).await?;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].action, "CREATE");
    assert_eq!(rows[1].action, "UPDATE");
    assert_eq!(changes(&rows[1]), json!({"published": {"old": false, "new": true}}));
    Ok(())
});

backend_test!(async fn update_without_returning_is_recorded(db) {
    let a = new_article("NoReturn").insert(&db.db).await?;
    let mut am = a.into_active_model();
    am.views = Set(3);
    am.update_without_returning(&db.db).await?;
    let stored = article::Entity::find().one(&db.db).await?.expect("row");
    assert_eq!(stored.views, 3);
    let rows = trail(&db.db).await?;
    assert_eq!(rows.len(), 2);
    assert_eq!(changes(&rows[1]), json!({"views": {"old": 0, "new": 3}}));

    // A row that does not exist is still reported by SeaORM, and nothing is recorded.
    let ghost = article::ActiveModel { id: Unchanged(999_999), views: Set(1), ..Default::default() };
    assert!(matches!(ghost.update_without_returning(&db.db).await, Err(DbErr::RecordNotUpdated)));
    let ghost = article::ActiveModel { id: Unchanged(999_999), views: Set(1), ..Default::default() };
    assert!(matches!(ghost.update(&db.db).await, Err(DbErr::RecordNotUpdated)));
    assert_eq!(trail(&db.db).await?.len(), 2);
    Ok(())
});

backend_test!(async fn noop_update_writes_no_row_unless_configured(db) {
    let a = new_article("Same").insert(&db.db).await?;
    let mut am = a.clone().into_active_model();
    am.title = Set("Same".into()); // same value: nothing changes
    am.update(&db.db).await?;
    a.clone().into_active_model().update(&db.db).await?; // nothing set at all
    assert_eq!(trail(&db.db).await?.len(), 1);

    AuditConfig::new()
        .record_noop_updates(true)
        .scope(async {
            let mut am = a.clone().into_active_model();
            am.title = Set("Same".into());
            am.update(&db.db).await
        })
        .await?;
    let rows = trail(&db.db).await?;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].action, "UPDATE");
    assert_eq!(changes(&rows[1]), json!({}));
    Ok(())
});

backend_test!(async fn delete_of_missing_row_records_nothing(db) {
    let res = article::ActiveModel { id: Set(424_242), ..Default::default() }.delete(&db.db).await?;
    assert_eq!(res.rows_affected, 0);
    assert!(trail(&db.db).await?.is_empty());
    // Deleting by key only still records the full before-image.
    let a = new_article("KeyOnly").insert(&db.db).await?;
    let res = article::ActiveModel { id: Set(a.id), ..Default::default() }.delete(&db.db).await?;
    assert_eq!(res.rows_affected, 1);
    let rows = trail(&db.db).await?;
    assert_eq!(rows.len(), 2);
    assert_eq!(changes(&rows[1])["title"], json!({"old": "KeyOnly"}));
    assert_eq!(changes(&rows[1])["views"], json!({"old": 0}));
    Ok(())
});

backend_test!(async fn typed_values_keep_their_json_types(db) {
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-04T05:06:07Z")?.to_utc();
    let uid = Uuid::parse_str("67e55044-10b1-426f-9247-bb680e5fe0c8")?;
    let price: Decimal = "123456789012345678.1234567891".parse()?; // 28 digits, rust_decimal's limit
    let blob = vec![0u8, 159, 146, 150, 255, 10];
    let t = typed::ActiveModel {
        small: Set(-7),
        big: Set(9_007_199_254_740_993),
        text: Set("héllo 🦀 \"quoted\" <b>".into()),
        flag: Set(true),
        maybe: Set(None),
        ratio: Set(0.25),
        at: Set(at),
        day: Set(chrono::NaiveDate::from_ymd_opt(2026, 2, 28).unwrap_or_default()),
        price: Set(price),
        uid: Set(uid),
        doc: Set(json!({"nested": {"list": [1, 2.5, null, "x"], "ok": true}})),
        blob: Set(blob.clone()),
        ..Default::default()
    }
    .insert(&db.db)
    .await?;

    let mut am = t.clone().into_active_model();
    am.maybe = Set(Some(41));
    am.flag = Set(false);
    am.doc = Set(json!({"nested": {"list": [], "ok": false}}));
    am.blob = Set(vec![1, 2, 3]);
    am.price = Set("0.0000000001".parse()?);
    am.update(&db.db).await?;

    let rows = trail(&db.db).await?;
    let c = changes(&rows[0]);
    assert_eq!(c["small"]["new"], json!(-7));
    assert_eq!(c["big"]["new"], json!(9_007_199_254_740_993i64));
    assert_eq!(c["text"]["new"], json!("héllo 🦀 \"quoted\" <b>"));
    assert_eq!(c["flag"]["new"], json!(true));
    assert_eq!(c["maybe"]["new"], serde_json::Value::Null);
    assert_eq!(c["ratio"]["new"], json!(0.25));
    assert_eq!(c["at"]["new"], json!("2026-03-04T05:06:07Z"));
    assert_eq!(c["day"]["new"], json!("2026-02-28"));
    // Decimals are text in the audit JSON, so no digit is lost on the way. SQLite itself
    // stores this column as a float, so there the stored value is what we compare with.
    assert_eq!(c["price"]["new"], json!(t.price.to_string()));
    if db.backend != sea_orm_audit_tests::Backend::Sqlite {
        assert_eq!(c["price"]["new"], json!("123456789012345678.1234567891"));
    }
    assert_eq!(c["uid"]["new"], json!("67e55044-10b1-426f-9247-bb680e5fe0c8"));
    assert_eq!(c["doc"]["new"], json!({"nested": {"list": [1, 2.5, null, "x"], "ok": true}}));
    assert_eq!(c["blob"]["new"], json!(sea_orm_audit::base64(&blob)));
    assert_eq!(sea_orm_audit::base64_decode(c["blob"]["new"].as_str().unwrap_or_default()), Some(blob));

    let u = changes(&rows[1]);
    assert_eq!(keys(&u), ["blob", "doc", "flag", "maybe", "price"]);
    assert_eq!(u["maybe"], json!({"old": null, "new": 41}));
    assert_eq!(u["flag"], json!({"old": true, "new": false}));
    assert_eq!(u["doc"]["old"]["nested"]["ok"], json!(true));
    assert_eq!(u["doc"]["new"], json!({"nested": {"list": [], "ok": false}}));
    assert_eq!(u["blob"], json!({"old": "AJ+Slv8K", "new": "AQID"}));
    assert_eq!(u["price"]["new"], json!("0.0000000001"));
    Ok(())
});

backend_test!(async fn composite_and_uuid_keys(db) {
    let tr = translation::ActiveModel { article_id: Set(7), lang: Set("en".into()), title: Set("Hello".into()) }
        .insert(&db.db)
        .await?;
    let mut am = tr.into_active_model();
    am.title = Set("Hi".into());
    am.update(&db.db).await?;
    translation::ActiveModel { article_id: Set(7), lang: Set("en".into()), ..Default::default() }
        .delete(&db.db)
        .await?;

    let id = Uuid::parse_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")?;
    tag::ActiveModel { id: Set(id), label: Set("rust".into()) }.insert(&db.db).await?;

    let rows = trail(&db.db).await?;
    assert_eq!(rows.len(), 4);
    for r in &rows[..3] {
        assert_eq!(r.object_pk.as_deref(), Some(r#"[7,"en"]"#));
        assert_eq!(r.object_repr.as_deref(), Some(r#"translation#[7,"en"]"#));
    }
    assert_eq!(changes(&rows[1]), json!({"title": {"old": "Hello", "new": "Hi"}}));
    assert_eq!(changes(&rows[2])["title"], json!({"old": "Hi"}));
    assert_eq!(rows[3].object_pk.as_deref(), Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
    assert_eq!(rows[3].object_repr.as_deref(), Some("rust"));
    Ok(())
});

backend_test!(async fn long_and_unicode_text_is_bounded_not_rejected(db) {
    let long_title: String = "🦀é".repeat(120); // 240 characters: fits every backend's varchar(255)
    let a = new_article(&long_title).insert(&db.db).await?;
    let rows = trail(&db.db).await?;
    let repr = rows[0].object_repr.clone().unwrap_or_default();
    assert_eq!(repr.chars().count(), sea_orm_audit::MAX_REPR_CHARS);
    assert!(repr.ends_with('…'));
    assert!(repr.starts_with("🦀é🦀é"));
    // The diff keeps the full value.
    assert_eq!(changes(&rows[0])["title"]["new"], json!(long_title));
    assert_eq!(a.title, long_title);
    Ok(())
});

backend_test!(async fn unaudited_entities_and_notset_fields(db) {
    use sea_orm_audit_tests::fixtures::plain;
    plain::ActiveModel { name: Set("x".into()), ..Default::default() }.insert(&db.db).await?;
    assert!(trail(&db.db).await?.is_empty());
    let a = new_article("N").insert(&db.db).await?;
    let am = article::ActiveModel { id: Unchanged(a.id), title: NotSet, ..Default::default() };
    am.update(&db.db).await?; // nothing set: no statement, no row
    assert_eq!(trail(&db.db).await?.len(), 1);
    Ok(())
});

backend_test!(async fn an_update_records_what_the_database_stored(db) {
    // A trigger changes the row the database stores: the audit row must record the
    // stored row, not the values sent. MySQL and MariaDB have no UPDATE ... RETURNING:
    // there the audit row is written by an INSERT ... SELECT from the updated row that
    // compares it with the predicted after-image, with no read-back; a row the trigger
    // changed fails the comparison and is read back. PostgreSQL returns the row as its
    // BEFORE trigger left it. On SQLite only an AFTER trigger can change the row, which
    // RETURNING does not see, so the hook reads the row after its UPDATE.
    use sea_orm::TransactionTrait;
    use sea_orm_audit_tests::Backend;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    let (counted, statements) = counting(&db.db);
    let update = |model: article::Model, title: &'static str, views: Option<i32>| {
        let counted = counted.clone();
        let statements = Arc::clone(&statements);
        async move {
            let txn = counted.begin().await?;
            let mut am = model.into_active_model();
            am.title = Set(title.into());
            if let Some(v) = views {
                am.views = Set(v);
            }
            let before = statements.load(Ordering::Relaxed);
            let saved = am.update(&txn).await?;
            let used = statements.load(Ordering::Relaxed) - before;
            txn.commit().await?;
            Ok::<_, DbErr>((saved, used))
        }
    };
    let stored = |id: i64| async move {
        article::Entity::find_by_id(id)
            .one(&db.db)
            .await?
            .ok_or_else(|| DbErr::Custom(format!("article {id} is gone")))
    };
    let mysql = db.backend == Backend::MySql;
    let a = new_article("abc").insert(&db.db).await?;
    let (_, used) = update(a.clone(), "Abc", Some(2)).await?;
    let rows = trail(&db.db).await?;
    assert_eq!(
        changes(&rows[1]),
        json!({"title": {"old": "abc", "new": "Abc"}, "views": {"old": 0, "new": 2}})
    );
    if mysql {
        // SELECT ... FOR UPDATE, UPDATE, the audit INSERT ... SELECT, SeaORM's read-back.
        assert_eq!(used, 4);
    }

    let triggers: &[&str] = match db.backend {
        Backend::MySql => &[
            "CREATE TRIGGER article_shout BEFORE UPDATE ON article FOR EACH ROW \
             SET NEW.title = UPPER(NEW.title), \
             NEW.views = IF(NEW.views <> OLD.views, NEW.views * 10, NEW.views)",
        ],
        Backend::Postgres => &[
            "CREATE FUNCTION article_shout() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             NEW.title := upper(NEW.title); \
             IF NEW.views <> OLD.views THEN NEW.views := NEW.views * 10; END IF; \
             RETURN NEW; END $$",
            "CREATE TRIGGER article_shout BEFORE UPDATE ON article FOR EACH ROW \
             EXECUTE FUNCTION article_shout()",
        ],
        // Recursive triggers are off by default: the trigger's own UPDATE fires nothing.
        Backend::Sqlite => &[
            "CREATE TRIGGER article_shout AFTER UPDATE ON article FOR EACH ROW BEGIN \
             UPDATE article SET title = upper(NEW.title), \
             views = CASE WHEN NEW.views <> OLD.views THEN NEW.views * 10 ELSE NEW.views END \
             WHERE id = NEW.id; END",
        ],
    };
    for sql in triggers {
        db.db.execute_unprepared(sql).await?;
    }
    let (c, used) = update(stored(a.id).await?, "quiet", Some(3)).await?;
    let now = stored(a.id).await?;
    assert_eq!(
        (now.title.as_str(), now.views),
        ("QUIET", 30),
        "the trigger ran"
    );
    let rows = trail(&db.db).await?;
    assert_eq!(rows.len(), 3);
    assert_eq!(
        changes(&rows[2]),
        json!({"title": {"old": "Abc", "new": now.title}, "views": {"old": 2, "new": now.views}})
    );
    if mysql {
        assert_eq!(c, now, "the returned model is the stored row");
        // The INSERT ... SELECT writes nothing; the row is read back and its audit row
        // inserted as on the other backends.
        assert_eq!(used, 6);
    }
    // The trigger turns "Quiet" back into the stored "QUIET": nothing changed, so no
    // UPDATE row claims a change that was never stored. (On MariaDB the column's
    // case-insensitive collation makes "Quiet" equal "QUIET"; compared as bytes it
    // does not.)
    update(now, "Quiet", None).await?;
    assert_eq!(stored(a.id).await?.title, "QUIET");
    let rows = trail(&db.db).await?;
    assert_eq!(rows.len(), 3, "{:?}", rows.last().map(changes));
    Ok(())
});
