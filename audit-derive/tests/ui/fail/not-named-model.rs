use sea_orm::FromQueryResult;
use sea_orm_audit::Audited;

#[derive(Clone, Debug, FromQueryResult, Audited)]
#[audited(mask(editor_token))]
pub struct ArticleSummary {
    pub id: i64,
    pub title: String,
    pub editor_token: Option<String>,
}

fn main() {}
