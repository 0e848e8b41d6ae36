//! Creates `login_attempt` and its indexes.

use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

use crate::{timestamp_utc, utf8mb4};

/// Creates `login_attempt`; `down` drops it.
pub(crate) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        crate::CREATE_LOGIN_ATTEMPT
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
enum LoginAttempt {
    Table,
    Id,
    Username,
    Status,
    IpAddress,
    UserAgent,
    FailureReason,
    Country,
    City,
    RequestId,
    CreatedAt,
}

pub(crate) fn create_table(backend: DbBackend) -> TableCreateStatement {
    let mut table = Table::create();
    table
        .table(LoginAttempt::Table)
        .col(big_pk_auto(LoginAttempt::Id))
        .col(string_len(LoginAttempt::Username, 255))
        .col(string_len(LoginAttempt::Status, 16))
        .col(string_len_null(LoginAttempt::IpAddress, 45))
        .col(string_len_null(LoginAttempt::UserAgent, 512))
        .col(string_len_null(LoginAttempt::FailureReason, 255))
        .col(string_len_null(LoginAttempt::Country, 100))
        .col(string_len_null(LoginAttempt::City, 100))
        .col(string_len_null(LoginAttempt::RequestId, 128))
        .col(timestamp_utc(backend, LoginAttempt::CreatedAt));
    utf8mb4(backend, &mut table);
    table
}

pub(crate) fn create_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_login_attempt_username_created_at")
            .table(LoginAttempt::Table)
            .col(LoginAttempt::Username)
            .col(LoginAttempt::CreatedAt)
            .take(),
        Index::create()
            .name("idx_login_attempt_ip_address_created_at")
            .table(LoginAttempt::Table)
            .col(LoginAttempt::IpAddress)
            .col(LoginAttempt::CreatedAt)
            .take(),
        Index::create()
            .name("idx_login_attempt_status_created_at")
            .table(LoginAttempt::Table)
            .col(LoginAttempt::Status)
            .col(LoginAttempt::CreatedAt)
            .take(),
        Index::create()
            .name("idx_login_attempt_created_at")
            .table(LoginAttempt::Table)
            .col(LoginAttempt::CreatedAt)
            .take(),
    ]
}

pub(crate) fn drop_table() -> TableDropStatement {
    Table::drop().table(LoginAttempt::Table).take()
}
