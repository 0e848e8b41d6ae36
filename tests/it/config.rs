use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel};
use sea_orm_audit::AuditConfig;
use sea_orm_audit_tests::backend_test;
use sea_orm_audit_tests::fixtures::{article, tag};

use crate::common::{art, trail};

backend_test!(async fn skip_tables_and_actions(db) {
    let cfg = AuditConfig::new().skip_table("tag").skip_action("delete");
    cfg.scope(async {
        tag::ActiveModel { id: Set(uuid::Uuid::new_v4()), label: Set("x".into()) }.insert(&db.db).await?;
        let a = art("kept").insert(&db.db).await?;
        let mut am = a.clone().into_active_model();
        am.views = Set(1);
        let a = am.update(&db.db).await?;
        a.into_active_model().delete(&db.db).await?;
        Ok::<_, sea_orm::DbErr>(())
    })
    .await?;
    let actions: Vec<_> = trail(&db.db).await?.into_iter().map(|r| (r.table_name, r.action)).collect();
    assert_eq!(
        actions,
        [(Some("article".to_owned()), "CREATE".to_owned()), (Some("article".to_owned()), "UPDATE".to_owned())]
    );
    assert!(article::Entity::find().one(&db.db).await?.is_none(), "the skipped DELETE still deleted");
    Ok(())
});

backend_test!(async fn disabled_config_records_nothing(db) {
    AuditConfig::new().enabled(false).scope(art("quiet").insert(&db.db)).await?;
    assert!(trail(&db.db).await?.is_empty());
    art("loud").insert(&db.db).await?;
    assert_eq!(trail(&db.db).await?.len(), 1);
    Ok(())
});

// Installing the global configuration is tested in its own binary,
// tests/global_config.rs: an install here would apply to every test in this one.
