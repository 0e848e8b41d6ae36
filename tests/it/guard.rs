use std::sync::Arc;

use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel};
use sea_orm_audit::{AuditError, migration_guard, without_audit};
use sea_orm_audit_tests::fixtures::article;
use sea_orm_audit_tests::{
    Backend, BoxFuture, Migrator, TestDb, TestResult, backend_test, run_with,
};
use sea_orm_migration::MigratorTrait;

use crate::common::{art, trail};

/// On a database where the audit migrations have not run yet.
fn guard_case(db: Arc<TestDb>) -> BoxFuture<TestResult> {
    Box::pin(async move {
        // A data migration writing audited rows works before the audit tables exist.
        let a = migration_guard(async {
            let a = art("seeded").insert(&db.db).await?;
            let mut am = a.into_active_model();
            am.views = Set(3);
            let a = am.update(&db.db).await?;
            Ok::<_, sea_orm::DbErr>(a)
        })
        .await?;
        assert_eq!(a.views, 3);

        // Outside the guard the error names the migration to run.
        let err = art("unguarded")
            .insert(&db.db)
            .await
            .expect_err("no audit table");
        assert!(AuditError::is_audit_error(&err));
        assert!(
            err.to_string().contains(sea_orm_audit::AUDIT_LOG_MIGRATION),
            "{err}"
        );

        // The guard is task-scoped: a concurrent task outside it is still audited.
        migration_guard(Migrator::up(&db.db, None)).await?;
        let db2 = db.connect_again().await?;
        let (guarded, audited) = tokio::join!(
            migration_guard(art("guarded").insert(&db.db)),
            art("audited").insert(&db2),
        );
        guarded?;
        audited?;
        db2.close().await?;
        without_audit(art("quiet").insert(&db.db)).await?;
        let rows = trail(&db.db).await?;
        let reprs: Vec<_> = rows.iter().filter_map(|r| r.object_repr.clone()).collect();
        assert_eq!(reprs, ["audited"]);
        assert_eq!(article::Entity::find().all(&db.db).await?.len(), 5);
        Ok(())
    })
}

// `run_with` drops the database afterwards, also when an assertion fails.
const GUARD: &str = concat!(module_path!(), "::guard");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_guard_sqlite() {
    run_with(Backend::Sqlite, GUARD, false, guard_case).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_guard_postgres() {
    run_with(Backend::Postgres, GUARD, false, guard_case).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_guard_mysql() {
    run_with(Backend::MySql, GUARD, false, guard_case).await
}

backend_test!(async fn migrations_go_down_and_up_again(db) {
    Migrator::down(&db.db, None).await?;
    assert!(trail(&db.db).await.is_err(), "audit_log is gone");
    Migrator::up(&db.db, None).await?;
    art("after re-up").insert(&db.db).await?;
    assert_eq!(trail(&db.db).await?.len(), 1);
    Ok(())
});
