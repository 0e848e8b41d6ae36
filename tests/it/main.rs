//! The integration tests: one binary, every test run on SQLite, PostgreSQL and MariaDB.

mod common;

// insert/update/delete rows, typed values, keys, no-op updates, bounds
mod crud;
// exclusion, masking and default secret masking
mod masking;
// skip tables/actions, enable switch, install-once
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
// the admin viewer through its router: pages, escaping, permissions, CSRF, writes
mod admin;
// the admin viewer in headless Chromium through chromedriver
mod admin_e2e;
