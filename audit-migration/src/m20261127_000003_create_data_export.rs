//! Creates `data_export` and its indexes.

use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

use crate::{timestamp_utc, timestamp_utc_null, utf8mb4};

/// Creates `data_export`; `down` drops it.
pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        crate::CREATE_DATA_EXPORT
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
enum DataExport {
    Table,
    Id,
    ActorId,
    ActorName,
    ExportType,
    FileFormat,
    RecordCount,
    FileSize,
    Filters,
    FilePath,
    DownloadCount,
    LastDownloadedAt,
    IpAddress,
    UserAgent,
    RequestId,
    CreatedAt,
}

pub(crate) fn create_table(backend: DbBackend) -> TableCreateStatement {
    let mut table = Table::create();
    table
        .table(DataExport::Table)
        .col(big_pk_auto(DataExport::Id))
        .col(string_len_null(DataExport::ActorId, 128))
        .col(string_len_null(DataExport::ActorName, 255))
        .col(string_len(DataExport::ExportType, 255))
        .col(string_len(DataExport::FileFormat, 32))
        .col(big_integer(DataExport::RecordCount))
        .col(big_integer(DataExport::FileSize))
        .col(json_binary_null(DataExport::Filters))
        .col(string_len_null(DataExport::FilePath, 1024))
        .col(big_integer(DataExport::DownloadCount).default(0i64))
        .col(timestamp_utc_null(backend, DataExport::LastDownloadedAt))
        .col(string_len_null(DataExport::IpAddress, 45))
        .col(string_len_null(DataExport::UserAgent, 512))
        .col(string_len_null(DataExport::RequestId, 128))
        .col(timestamp_utc(backend, DataExport::CreatedAt));
    utf8mb4(backend, &mut table);
    table
}

pub(crate) fn create_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_data_export_actor_id_created_at")
            .table(DataExport::Table)
            .col(DataExport::ActorId)
            .col(DataExport::CreatedAt)
            .take(),
        Index::create()
            .name("idx_data_export_export_type_created_at")
            .table(DataExport::Table)
            .col(DataExport::ExportType)
            .col(DataExport::CreatedAt)
            .take(),
        Index::create()
            .name("idx_data_export_file_format_created_at")
            .table(DataExport::Table)
            .col(DataExport::FileFormat)
            .col(DataExport::CreatedAt)
            .take(),
        Index::create()
            .name("idx_data_export_created_at")
            .table(DataExport::Table)
            .col(DataExport::CreatedAt)
            .take(),
    ]
}

pub(crate) fn drop_table() -> TableDropStatement {
    Table::drop().table(DataExport::Table).take()
}
