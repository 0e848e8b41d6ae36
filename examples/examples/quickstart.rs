//! Quickstart: audited entities on SQLite, with nothing to install.
//!
//! Run with `cargo run -p sea-orm-audit-examples --example quickstart`.
//! Creates two articles under a request context, edits and deletes them, and prints
//! the audit trail that resulted, a summary, and one article's history.

use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::{Database, IntoActiveModel, QueryOrder, Schema, TransactionTrait};
use sea_orm_audit::entity::audit_log;
use sea_orm_audit::{
    AtomicWrite, RequestContext, SummaryFilter, audit_summary, log_view, object_history, with_actor,
};
use sea_orm_audit_migration::Migrator;
use sea_orm_migration::MigratorTrait;

mod article {
    use sea_orm::entity::prelude::*;
    use sea_orm_audit::Audited;

    /// An audited entity: `body_html` is never recorded, `editor_token` is recorded
    /// as "changed" without its value, and rows are described by their title.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
    #[sea_orm(table_name = "article")]
    #[audited(exclude(body_html), mask(editor_token), repr = "title")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub title: String,
        pub body_html: String,
        pub editor_token: Option<String>,
        pub views: i32,
        pub published: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}
    // No `impl ActiveModelBehavior for ActiveModel {}`: #[derive(Audited)] provides it.
}

#[tokio::main]
async fn main() -> Result<(), DbErr> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite::memory:".to_owned());
    let db = Database::connect(&url).await?;
    // The audit tables, then the application's own table.
    Migrator::up(&db, None).await?;
    let backend = db.get_database_backend();
    db.execute(
        &Schema::new(backend)
            .create_table_from_entity(article::Entity)
            .if_not_exists()
            .to_owned(),
    )
    .await?;

    // What a web middleware would do for each request.
    let request = RequestContext::new()
        .actor("42", "Ada Lovelace")
        .ip("203.0.113.7")
        .user_agent("quickstart/1.0")
        .session("session-cookie-value")
        .request_id("req-0001");

    let intro_id = request
        .scope(async {
            // Inside a transaction: the changes and their audit rows commit together.
            let txn = db.begin().await?;
            let intro = article::ActiveModel {
                title: Set("Introducing sea-orm-audit".into()),
                body_html: Set("<p>Every write, recorded.</p>".into()),
                editor_token: Set(Some("edit-secret-1".into())),
                views: Set(0),
                published: Set(false),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
            let draft = article::ActiveModel {
                title: Set("Draft to delete".into()),
                body_html: Set("<p>tbd</p>".into()),
                editor_token: Set(None),
                views: Set(0),
                published: Set(false),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
            txn.commit().await?;

            // On a plain connection, the *_atomic methods give each write its own transaction.
            let mut edit = intro.into_active_model();
            edit.title = Set("Introducing sea-orm-audit 0.1".into());
            edit.published = Set(true);
            edit.editor_token = Set(Some("edit-secret-2".into()));
            edit.update_atomic(&db).await?;

            draft.into_active_model().delete_atomic(&db).await?;

            // Reads can be recorded too, one INSERT each.
            let intro = first_article(&db).await?;
            log_view(&db, &intro).await.map_err(DbErr::from)?;
            Ok::<_, DbErr>(intro.id)
        })
        .await?;

    // A background job acting under its own name.
    with_actor("system", "view counter", async {
        let a = article::Entity::find()
            .one(&db)
            .await?
            .ok_or(DbErr::RecordNotFound("article".into()))?;
        let mut am = a.into_active_model();
        am.views = Set(1);
        am.update_atomic(&db).await
    })
    .await?;

    print_trail(&db).await?;

    let summary = audit_summary(&db, &SummaryFilter::last_days(7))
        .await
        .map_err(DbErr::from)?;
    println!("\nSummary of the last 7 days");
    println!("{}", "=".repeat(78));
    // Counts are i64 in the summary; "1 delete", "2 deletes".
    let n = |count: i64, what: &str| format!("{count} {what}{}", if count == 1 { "" } else { "s" });
    println!(
        "{}: {}, {}, {}, {}; busiest table: {}",
        n(summary.total_actions, "action"),
        n(summary.creates, "create"),
        n(summary.updates, "update"),
        n(summary.deletes, "delete"),
        n(summary.views, "view"),
        summary.top_tables.first().map_or("-", |t| t.key.as_str()),
    );

    println!("\nHistory of article #{intro_id}");
    println!("{}", "=".repeat(78));
    for r in object_history::<article::Entity>(&db, intro_id)
        .await
        .map_err(DbErr::from)?
    {
        let fields = r
            .changes
            .as_ref()
            .and_then(|c| c.as_object())
            .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        println!(
            "{} {:<6} by {:<14} {}",
            r.created_at.format("%H:%M:%S%.3f"),
            r.action,
            r.actor_name.as_deref().unwrap_or("nobody"),
            fields,
        );
    }
    Ok(())
}

async fn first_article(db: &impl ConnectionTrait) -> Result<article::Model, DbErr> {
    article::Entity::find()
        .one(db)
        .await?
        .ok_or(DbErr::RecordNotFound("article".into()))
}

async fn print_trail(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    let rows = audit_log::Entity::find()
        .order_by_asc(audit_log::Column::Id)
        .all(db)
        .await?;
    println!("Audit trail ({} rows)", rows.len());
    println!("{}", "=".repeat(78));
    for r in &rows {
        println!(
            "#{:<3} {} {:<6} {}#{} \"{}\"",
            r.id,
            r.created_at.format("%H:%M:%S%.3f"),
            r.action,
            r.table_name.as_deref().unwrap_or("-"),
            r.object_pk.as_deref().unwrap_or("-"),
            r.object_repr.as_deref().unwrap_or(""),
        );
        println!(
            "     by {} ({}) from {} request {} session {}",
            r.actor_name.as_deref().unwrap_or("nobody"),
            r.actor_id.as_deref().unwrap_or("-"),
            r.ip_address.as_deref().unwrap_or("-"),
            r.request_id.as_deref().unwrap_or("-"),
            r.session_hash
                .as_deref()
                .map(|h| &h[..12.min(h.len())])
                .unwrap_or("-"),
        );
        if let Some(serde_json::Value::Object(fields)) = &r.changes {
            for (field, change) in fields {
                let show = |k: &str| change.get(k).map(|v| v.to_string());
                let line = match (show("old"), show("new"), change.get("masked")) {
                    (_, _, Some(_)) => "(masked: changed, value not recorded)".to_owned(),
                    (Some(o), Some(n), _) => format!("{o} -> {n}"),
                    (None, Some(n), _) => format!("= {n}"),
                    (Some(o), None, _) => format!("was {o}"),
                    (None, None, _) => String::new(),
                };
                println!("       {field:<14} {line}");
            }
        }
    }
    Ok(())
}
