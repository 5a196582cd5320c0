//! The messages users see for `#[derive(Score)]`, `harmony::app! { … }` and
//! capabilities, compared byte for byte with the `.stderr` next to each case.
//! Regenerate with `TRYBUILD=overwrite cargo test -p ui-tests`, then read the diff.
//!
//! Not caught where it is written (a type is a Score only *for* a topology, and
//! there is no "Score for some topology" bound to check): a `#[score(child)]`
//! field that is not a Score, and an `app!` without `topologies` whose `score`
//! is not one. Both fail where used on a topology (`score/fail/child_not_a_score.rs`,
//! `app/fail/score_not_a_score.rs`); the latter otherwise registers an app that
//! runs on no topology.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/score/fail/*.rs");
    t.compile_fail("tests/app/fail/*.rs");
    t.compile_fail("tests/capability/fail/*.rs");
    t.pass("tests/*/pass/*.rs");
}
