//! Compile-time behaviour of `#[derive(Audited)]`: `fail/` holds one file per mistake with
//! its reviewed `.stderr`, `pass/` entities that must compile (and whose `main` checks the
//! generated metadata). Regenerate the `.stderr` files with `TRYBUILD=overwrite` only after
//! a toolchain change, and read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
