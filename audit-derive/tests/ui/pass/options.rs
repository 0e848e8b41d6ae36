use sea_orm::entity::prelude::*;
use sea_orm_audit::{Audited, AuditedModel};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
#[sea_orm(table_name = "article")]
#[audited(exclude(body_html), mask(editor_token))]
#[audited(unmask(token_count), repr = "title")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub title: String,
    pub body_html: String,
    pub editor_token: Option<String>,
    pub token_count: i32,
    #[audited(mask)]
    #[sea_orm(column_name = "pw_hash")]
    pub password_hash: String,
    #[audited(exclude)]
    pub r#type: String,
    #[sea_orm(ignore)]
    pub cached: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

fn main() {
    let meta = Model::audit_meta();
    assert_eq!(
        meta.exclude,
        [Column::BodyHtml.as_str(), Column::Type.as_str()]
    );
    assert_eq!(
        meta.mask,
        [Column::EditorToken.as_str(), Column::PasswordHash.as_str()]
    );
    assert_eq!(meta.mask, ["editor_token", "pw_hash"]);
    assert_eq!(meta.unmask, ["token_count"]);
    assert_eq!(meta.module, module_path!());

    let model = Model {
        id: 1,
        title: "Hello".into(),
        body_html: String::new(),
        editor_token: None,
        token_count: 0,
        password_hash: String::new(),
        r#type: String::new(),
        cached: false,
    };
    assert_eq!(model.audit_repr().as_deref(), Some("Hello"));
}
