//! The messages users see for `#[derive(Score)]`, `harmony::app! { … }` and
//! capabilities, compared byte for byte with the `.stderr` next to each case.
//! Regenerate with `TRYBUILD=overwrite cargo test -p ui-tests`, then read the diff.
//!
//! A `#[score(child)]` field or an `app!` `score` that is not a Score is
//! caught where it is written (`IsScore`), and again where it is used on a
//! topology (`score/fail/child_not_a_score.rs`, `app/fail/score_not_a_score.rs`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/score/fail/*.rs");
    t.compile_fail("tests/app/fail/*.rs");
    t.compile_fail("tests/capability/fail/*.rs");
    t.pass("tests/*/pass/*.rs");
}
