//! The one shape of every error harmony reports: what failed (its message),
//! where, why, and what to do next. The CLI prints any of them as rustc
//! prints errors, or as JSON, with no knowledge of the error's type.

/// What failed (`Display`), where, why, and what to do.
pub trait Diagnostic: std::error::Error {
    /// Where: a Score path, an object, a file. `None` when the message says it.
    fn location(&self) -> Option<String> {
        None
    }

    /// Why, beyond the message: the reasons underneath, one per note.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// What to do next.
    fn help(&self) -> String;
}
