//! Compile-fail and compile-pass cases, one folder per topic. `TRYBUILD=overwrite cargo test
//! -p iomgr-ui-tests` refreshes the `.stderr` files; read each one after refreshing.

#[test]
fn task() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/task/*.rs");
    t.pass("ui/task/pass/*.rs");
}

#[test]
fn buf() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/buf/*.rs");
}

#[test]
fn entry() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/entry/*.rs");
}

#[test]
fn pipeline() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/pipeline/*.rs");
    t.pass("ui/pipeline/pass/*.rs");
}
