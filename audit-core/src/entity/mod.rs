//! SeaORM entities for the four audit tables, so applications can query them directly.
//!
//! These entities are never audited themselves.

pub mod audit_log;
pub mod data_export;
pub mod login_attempt;
pub mod system_event;
