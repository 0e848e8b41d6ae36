use sea_orm_audit::Audited;

#[derive(Clone, Debug, Audited)]
pub struct Model(i64, String);

fn main() {}
