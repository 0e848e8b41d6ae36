//! The integration tests: each runs on SQLite, PostgreSQL and MariaDB, unless it tests
//! one backend's behaviour (the two browser tests in `admin_e2e` use SQLite). The memory
//! test and the global configuration test are binaries of their own.

mod common;

// insert/update/delete rows, typed values, keys, no-op updates, bounds
mod crud;
// exclusion, masking and default secret masking
mod masking;
// skip tables/actions, enable switch (installing a global configuration is tests/global_config.rs)
mod config;
// rollback, failing audit writes, strict mode, atomic writes, concurrent chains
mod transaction;
// request context: fields, isolation, spawn, actor override
mod context;
// migration guard and the missing-table error
mod guard;
// user hooks next to auditing
mod user_hooks;
// every other write path, through the auditing connection
mod bulk;
// no change commits without its row; stored keys and values; reads pass through
mod guarantees;
// PostgreSQL's one-statement path writes the rows the Rust path writes
mod one_statement;
// the admin viewer through its router: pages, escaping, permissions, CSRF, writes
mod admin;
// the admin viewer in headless Chromium through chromedriver
mod admin_e2e;
// manual entries, VIEW and action validation
mod events;
// sign-ins, brute-force locks and their windows, concurrent failures
mod login;
// data exports and download counting
mod export;
// system events, resolution, background writer, panic hook, tracing layer
mod system;
// AuditQuery pages, object history, state_at and restore
mod history;
// audit_summary numbers and its statement budget
mod summary;
// axum/tower middleware: context attribution, client IP, security events
mod middleware;
