use sea_orm::entity::prelude::*;
use sea_orm_audit::Audited;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
#[sea_orm(table_name = "article")]
#[audited(
    exclude = "body_html",
    repr(title),
    custom_hooks = true,
    mask("editor_token")
)]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[audited(unmask = true)]
    pub title: String,
    pub body_html: String,
    pub editor_token: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

fn main() {}
