use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, DbErr, EntityTrait, IntoActiveModel};
use sea_orm_audit_tests::backend_test;
use sea_orm_audit_tests::fixtures::note;
use serde_json::json;

use crate::common::{changes, trail};

backend_test!(async fn user_hooks_run_and_their_values_are_recorded(db) {
    let n = note::ActiveModel { text: Set("first".into()), ..Default::default() }.insert(&db.db).await?;
    assert_eq!(n.revision, 1);
    assert!(n.updated_at.is_some());
    let mut am = n.into_active_model();
    am.text = Set("second".into());
    let n = am.update(&db.db).await?;
    assert_eq!(n.revision, 2, "the user's before_save ran");

    let rows = trail(&db.db).await?;
    assert_eq!(changes(&rows[0])["revision"], json!({"new": 1}));
    assert_eq!(changes(&rows[0])["updated_at"], json!({"new": "2027-01-15T08:00:00Z"}));
    assert_eq!(changes(&rows[1]), json!({
        "text": {"old": "first", "new": "second"},
        "revision": {"old": 1, "new": 2},
    }));

    // A user hook that refuses the write: nothing is written, nothing is recorded.
    let mut am = n.into_active_model();
    am.text = Set(String::new());
    let err = am.update(&db.db).await.expect_err("validation");
    assert!(matches!(err, DbErr::Custom(ref m) if m == note::EMPTY_TEXT));
    assert_eq!(note::Entity::find().one(&db.db).await?.map(|n| n.text).as_deref(), Some("second"));
    assert_eq!(trail(&db.db).await?.len(), 2);
    Ok(())
});
