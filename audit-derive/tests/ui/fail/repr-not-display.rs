use sea_orm::entity::prelude::*;
use sea_orm_audit::Audited;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
#[sea_orm(table_name = "article")]
#[audited(repr = "avatar")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub title: String,
    pub body_html: String,
    pub editor_token: Option<String>,
    pub avatar: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

fn main() {}
