//! The five hooks, named once: the chain, the timings and their metric labels, the Lua
//! phases, the plugin glue and the errors all speak of a hook by [`Hook`].

use std::fmt;

/// One of the five hook points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    OnRequest,
    Authenticate,
    Bind,
    Expire,
    Route,
}

impl Hook {
    /// The five, in the order of a REGISTER's life and of the documentation.
    pub const ALL: [Hook; 5] = [
        Hook::OnRequest,
        Hook::Authenticate,
        Hook::Bind,
        Hook::Expire,
        Hook::Route,
    ];

    /// The name scripts, logs and metrics use (`on_request`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Hook::OnRequest => "on_request",
            Hook::Authenticate => "authenticate",
            Hook::Bind => "bind",
            Hook::Expire => "expire",
            Hook::Route => "route",
        }
    }

    /// The position in [`Hook::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The hook of this name.
    pub fn from_name(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.name() == name)
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Hook;

    #[test]
    fn each_hook_is_at_its_index_and_found_by_its_name() {
        for (i, h) in Hook::ALL.into_iter().enumerate() {
            assert_eq!(h.index(), i);
            assert_eq!(Hook::from_name(h.name()), Some(h));
        }
        assert_eq!(Hook::from_name("load"), None);
    }
}
