//! Creates `audit_log` and its indexes.

use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

use crate::{timestamp_utc, utf8mb4};

/// Creates `audit_log`; `down` drops it.
pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        crate::CREATE_AUDIT_LOG
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
enum AuditLog {
    Table,
    Id,
    Action,
    TableName,
    ObjectPk,
    ObjectRepr,
    Changes,
    ActorId,
    ActorName,
    IpAddress,
    UserAgent,
    SessionHash,
    RequestId,
    Reason,
    Module,
    Metadata,
    CreatedAt,
}

pub(crate) fn create_table(backend: DbBackend) -> TableCreateStatement {
    let mut table = Table::create();
    table
        .table(AuditLog::Table)
        .col(big_pk_auto(AuditLog::Id))
        .col(string_len(AuditLog::Action, 32))
        .col(string_len_null(AuditLog::TableName, 128))
        .col(string_len_null(AuditLog::ObjectPk, 255))
        .col(string_len_null(AuditLog::ObjectRepr, 255))
        .col(json_binary_null(AuditLog::Changes))
        .col(string_len_null(AuditLog::ActorId, 128))
        .col(string_len_null(AuditLog::ActorName, 255))
        .col(string_len_null(AuditLog::IpAddress, 45))
        .col(string_len_null(AuditLog::UserAgent, 512))
        .col(string_len_null(AuditLog::SessionHash, 64))
        .col(string_len_null(AuditLog::RequestId, 128))
        .col(text_null(AuditLog::Reason))
        .col(string_len_null(AuditLog::Module, 255))
        .col(json_binary_null(AuditLog::Metadata))
        .col(timestamp_utc(backend, AuditLog::CreatedAt));
    utf8mb4(backend, &mut table);
    table
}

pub(crate) fn create_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_audit_log_table_name_object_pk_created_at")
            .table(AuditLog::Table)
            .col(AuditLog::TableName)
            .col(AuditLog::ObjectPk)
            .col(AuditLog::CreatedAt)
            .take(),
        Index::create()
            .name("idx_audit_log_actor_id_created_at")
            .table(AuditLog::Table)
            .col(AuditLog::ActorId)
            .col(AuditLog::CreatedAt)
            .take(),
        Index::create()
            .name("idx_audit_log_action_created_at")
            .table(AuditLog::Table)
            .col(AuditLog::Action)
            .col(AuditLog::CreatedAt)
            .take(),
        Index::create()
            .name("idx_audit_log_created_at")
            .table(AuditLog::Table)
            .col(AuditLog::CreatedAt)
            .take(),
        Index::create()
            .name("idx_audit_log_request_id")
            .table(AuditLog::Table)
            .col(AuditLog::RequestId)
            .take(),
    ]
}

pub(crate) fn drop_table() -> TableDropStatement {
    Table::drop().table(AuditLog::Table).take()
}
