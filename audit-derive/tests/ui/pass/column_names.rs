//! `AuditMeta` holds the column names SeaORM itself uses, however they are derived.

use sea_orm::entity::prelude::*;
use sea_orm_audit::AuditedModel;

mod camel {
    use sea_orm::entity::prelude::*;
    use sea_orm_audit::Audited;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
    #[sea_orm(table_name = "camel", rename_all = "camelCase")]
    #[audited(exclude(body_html), mask(api_key))]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub body_html: String,
        #[sea_orm(column_name = "secret_key")]
        pub api_key: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}
}

mod enum_name {
    use sea_orm::entity::prelude::*;
    use sea_orm_audit::Audited;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Audited)]
    #[sea_orm(table_name = "enum_name")]
    #[audited(mask(kind))]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(enum_name = "Category")]
        pub kind: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}
}

fn main() {
    let meta = camel::Model::audit_meta();
    assert_eq!(meta.exclude, [camel::Column::BodyHtml.as_str()]);
    assert_eq!(meta.exclude, ["bodyHtml"]);
    assert_eq!(meta.mask, [camel::Column::ApiKey.as_str()]);
    assert_eq!(meta.mask, ["secret_key"]);

    let meta = enum_name::Model::audit_meta();
    assert_eq!(meta.mask, [enum_name::Column::Category.as_str()]);
}
