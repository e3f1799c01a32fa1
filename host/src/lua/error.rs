//! What goes wrong in a script, in words: a load that failed ([`LoadError`]), and the
//! first line of any Lua error with the script location of a Rust callback's failure.

use std::fmt;

/// A script that could not be loaded: `file:line: message` where Lua knows the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError(pub String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// The first line of an error, with the script location of a Rust callback's failure.
pub(crate) fn describe(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { traceback, cause } => {
            let at = traceback
                .lines()
                .map(str::trim)
                .find(|l| {
                    !l.starts_with('[')
                        && l.split(':')
                            .nth(1)
                            .is_some_and(|n| n.parse::<u32>().is_ok())
                })
                .and_then(|l| l.rsplit_once(": in ").map(|(loc, _)| loc))
                .unwrap_or("");
            let cause = describe(cause);
            if at.is_empty() || cause.starts_with(at) {
                cause
            } else {
                format!("{at}: {cause}")
            }
        }
        mlua::Error::RuntimeError(m) | mlua::Error::SyntaxError { message: m, .. } => {
            m.lines().next().unwrap_or("").to_owned()
        }
        mlua::Error::MemoryError(_) => super::limits::MEMORY_MESSAGE.to_owned(),
        mlua::Error::WithContext { context, cause } => format!("{context}: {}", describe(cause)),
        other => other.to_string().lines().next().unwrap_or("").to_owned(),
    }
}
