//! The global configuration: the first install is in force for every write, and a
//! second install is refused. A binary of its own, because an installed configuration
//! applies to the whole process and would change what every test in `it` records.

use std::sync::Arc;

use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, QueryOrder};
use sea_orm_audit::entity::audit_log;
use sea_orm_audit::{AuditConfig, AuditedConnection};
use sea_orm_audit_tests::fixtures::{article, tag};
use sea_orm_audit_tests::{Backend, BoxFuture, TestDb, TestResult, run};

use article::titled as art;

fn new_tag(label: &str) -> tag::ActiveModel {
    tag::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        label: Set(label.into()),
    }
}

/// Writes through the hooks and through the auditing connection under the installed
/// configuration: nothing is recorded for `tag` or for a DELETE.
async fn writes(db: &TestDb) -> TestResult {
    sea_orm_audit::register::<article::Entity>();
    sea_orm_audit::register::<tag::Entity>();
    let wrapped = AuditedConnection::new(db.db.clone());

    new_tag("hooked").insert(&db.db).await?;
    let a = art("hooked").insert(&db.db).await?;
    let mut am = a.into_active_model();
    am.views = Set(1);
    am.update(&db.db)
        .await?
        .into_active_model()
        .delete(&db.db)
        .await?;

    tag::Entity::insert_many([new_tag("bulk 1"), new_tag("bulk 2")])
        .exec(&wrapped)
        .await?;
    article::Entity::insert_many([art("bulk 1"), art("bulk 2")])
        .exec(&wrapped)
        .await?;
    article::Entity::update_many()
        .col_expr(article::Column::Views, Expr::value(2))
        .exec(&wrapped)
        .await?;
    article::Entity::delete_many().exec(&wrapped).await?;

    assert_eq!(
        tag::Entity::find().all(&db.db).await?.len(),
        3,
        "tags written"
    );
    assert!(
        article::Entity::find().one(&db.db).await?.is_none(),
        "the unrecorded DELETEs still deleted"
    );
    let recorded: Vec<(String, String, Option<String>)> = audit_log::Entity::find()
        .order_by_asc(audit_log::Column::Id)
        .all(&db.db)
        .await?
        .into_iter()
        .map(|r| (r.table_name.unwrap_or_default(), r.action, r.object_repr))
        .collect();
    // The rows of one statement follow its rows' order, which nothing fixes: compare
    // the bulk statements' rows as sets.
    let mut recorded = recorded;
    if let Some(bulk) = recorded.get_mut(2..) {
        bulk.sort();
    }
    let row = |action: &str, repr: &str| {
        (
            "article".to_owned(),
            action.to_owned(),
            Some(repr.to_owned()),
        )
    };
    assert_eq!(
        recorded,
        [
            row("CREATE", "hooked"),
            row("UPDATE", "hooked"),
            row("CREATE", "bulk 1"),
            row("CREATE", "bulk 2"),
            row("UPDATE", "bulk 1"),
            row("UPDATE", "bulk 2"),
        ]
    );
    Ok(())
}

fn boxed(db: Arc<TestDb>) -> BoxFuture<TestResult> {
    Box::pin(async move { writes(&db).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_install_is_in_force_and_a_second_is_refused() {
    let first = AuditConfig::new()
        .skip_table("tag")
        .skip_action("delete")
        .install();
    assert!(first.is_ok(), "{first:?}");
    let second = AuditConfig::new().enabled(false).install();
    assert_eq!(
        second.map_err(|e| e.to_string()),
        Err("the global audit configuration is already installed".to_owned())
    );
    let current = AuditConfig::current();
    assert!(current.is_enabled(), "the refused install changed nothing");
    assert!(current.is_table_skipped("tag") && current.is_action_skipped("DELETE"));
    for backend in [Backend::Sqlite, Backend::Postgres, Backend::MySql] {
        run(backend, "global_config::installed", boxed).await;
    }
}
