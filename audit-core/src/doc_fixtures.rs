//! Fixtures for this crate's documentation examples. Not public API.
#![allow(missing_docs, unreachable_pub)]

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbErr, EntityTrait};

use crate::entity::audit_log;

/// An in-memory SQLite database with the `audit_log` table.
pub async fn connect() -> Result<DatabaseConnection, DbErr> {
    let db = Database::connect("sqlite::memory:").await?;
    create_table(&db, audit_log::Entity).await?;
    Ok(db)
}

/// [`connect`] plus the other audit tables and the audited [`post`] table.
pub async fn connect_all() -> Result<DatabaseConnection, DbErr> {
    let db = setup().await?;
    create_table(&db, crate::entity::login_attempt::Entity).await?;
    create_table(&db, crate::entity::data_export::Entity).await?;
    create_table(&db, crate::entity::system_event::Entity).await?;
    Ok(db)
}

/// [`connect`] plus the audited [`post`] table.
pub async fn setup() -> Result<DatabaseConnection, DbErr> {
    let db = connect().await?;
    create_table(&db, post::Entity).await?;
    Ok(db)
}

/// Creates `entity`'s table from its definition.
pub async fn create_table<C: ConnectionTrait, E: EntityTrait>(
    db: &C,
    entity: E,
) -> Result<(), DbErr> {
    sea_orm::Schema::new(db.get_database_backend())
        .builder()
        .register(entity)
        .apply(db)
        .await
}

/// An audited entity for examples.
pub mod post {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, crate::Audited)]
    #[audited(crate = "crate", repr = "title")]
    #[sea_orm(table_name = "post")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub title: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}
}
