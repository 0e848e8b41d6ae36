//! `use sea_orm_audit::prelude::*;` brings in what an application names most often.

#[cfg(feature = "derive")]
pub use crate::Audited;
pub use crate::{AtomicWrite, AuditBehavior, AuditConfig, AuditedModel, RequestContext};
