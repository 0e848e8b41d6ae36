use sea_orm::entity::prelude::*;
use sea_orm_audit::Audited;

#[derive(Clone, Debug, PartialEq, EnumIter, DeriveActiveEnum, Audited)]
#[sea_orm(rs_type = "String", db_type = "Enum", enum_name = "status")]
pub enum Status {
    #[sea_orm(string_value = "draft")]
    Draft,
    #[sea_orm(string_value = "published")]
    Published,
}

fn main() {}
