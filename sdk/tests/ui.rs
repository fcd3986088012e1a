//! Compile-time checks of `#[handler]`: every accepted form compiles, and
//! every misuse fails with its own message on the offending token
//! (`ui/fail/*.stderr` hold the expected compiler output).

#[test]
fn handler_attribute() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
