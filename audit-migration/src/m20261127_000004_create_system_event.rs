//! Creates `system_event` and its indexes.

use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

use crate::{timestamp_utc, timestamp_utc_null, utf8mb4};

/// Creates `system_event`; `down` drops it.
pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        crate::CREATE_SYSTEM_EVENT
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(create_table(manager.get_database_backend()))
            .await?;
        for index in create_indexes() {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    // Dropping the table drops its indexes on all three backends.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(drop_table()).await
    }
}

#[derive(DeriveIden)]
enum SystemEvent {
    Table,
    Id,
    EventType,
    Title,
    Description,
    Module,
    Function,
    File,
    Line,
    ErrorCode,
    StackTrace,
    ActorId,
    ActorName,
    IpAddress,
    RequestPath,
    RequestId,
    Resolved,
    ResolvedAt,
    ResolvedBy,
    ResolutionNotes,
    CreatedAt,
}

pub(crate) fn create_table(backend: DbBackend) -> TableCreateStatement {
    let mut table = Table::create();
    table
        .table(SystemEvent::Table)
        .col(big_pk_auto(SystemEvent::Id))
        .col(string_len(SystemEvent::EventType, 16))
        .col(string_len(SystemEvent::Title, 500))
        .col(text_null(SystemEvent::Description))
        .col(string_len_null(SystemEvent::Module, 255))
        .col(string_len_null(SystemEvent::Function, 255))
        .col(string_len_null(SystemEvent::File, 512))
        .col(integer_null(SystemEvent::Line))
        .col(string_len_null(SystemEvent::ErrorCode, 64))
        .col(text_null(SystemEvent::StackTrace))
        .col(string_len_null(SystemEvent::ActorId, 128))
        .col(string_len_null(SystemEvent::ActorName, 255))
        .col(string_len_null(SystemEvent::IpAddress, 45))
        .col(string_len_null(SystemEvent::RequestPath, 2048))
        .col(string_len_null(SystemEvent::RequestId, 128))
        .col(boolean(SystemEvent::Resolved).default(false))
        .col(timestamp_utc_null(backend, SystemEvent::ResolvedAt))
        .col(string_len_null(SystemEvent::ResolvedBy, 255))
        .col(text_null(SystemEvent::ResolutionNotes))
        .col(timestamp_utc(backend, SystemEvent::CreatedAt));
    utf8mb4(backend, &mut table);
    table
}

pub(crate) fn create_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_system_event_event_type_created_at")
            .table(SystemEvent::Table)
            .col(SystemEvent::EventType)
            .col(SystemEvent::CreatedAt)
            .take(),
        Index::create()
            .name("idx_system_event_resolved_created_at")
            .table(SystemEvent::Table)
            .col(SystemEvent::Resolved)
            .col(SystemEvent::CreatedAt)
            .take(),
        Index::create()
            .name("idx_system_event_actor_id_created_at")
            .table(SystemEvent::Table)
            .col(SystemEvent::ActorId)
            .col(SystemEvent::CreatedAt)
            .take(),
        Index::create()
            .name("idx_system_event_created_at")
            .table(SystemEvent::Table)
            .col(SystemEvent::CreatedAt)
            .take(),
    ]
}

pub(crate) fn drop_table() -> TableDropStatement {
    Table::drop().table(SystemEvent::Table).take()
}
