//! The limits of one address-of-record: `[registrar]`'s, under its alias's own
//! (`[[aliases]] max_contacts`, `min_expires`, `max_expires`, `evict`), under what the
//! `bind` hooks set for it ([`AorPolicy`]). They apply once `bind` has answered
//! (`aor_limits.rs`): a contact asking less than the minimum gets 423, every expiry is cut
//! to the maximum, and the store keeps at most `max_contacts` bindings, evicting as
//! `evict` says.

use crate::config::{self, Evict};
use crate::hooks::AorPolicy;
use std::collections::HashMap;

/// The limits a REGISTER is held to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub default_expires: u32,
    pub min_expires: u32,
    pub max_expires: u32,
    pub max_contacts: usize,
    pub evict: Evict,
    pub flow_timer: u32,
}

impl Limits {
    /// `[registrar]`'s.
    pub fn configured(r: &config::Registrar) -> Limits {
        Limits {
            default_expires: r.default_expires,
            min_expires: r.min_expires,
            max_expires: r.max_expires,
            max_contacts: r.max_contacts,
            evict: r.evict,
            flow_timer: r.flow_timer,
        }
    }

    /// These limits with `p`'s settings over them.
    pub fn under(self, p: &AorPolicy) -> Limits {
        Limits {
            min_expires: p.min_expires.unwrap_or(self.min_expires),
            max_expires: p.max_expires.unwrap_or(self.max_expires),
            max_contacts: p.max_contacts.unwrap_or(self.max_contacts),
            evict: p.evict.unwrap_or(self.evict),
            ..self
        }
    }

    /// Why these limits cannot hold (a hook set a minimum above the maximum, or no room
    /// for any binding).
    pub fn contradiction(&self) -> Option<String> {
        if self.min_expires > self.max_expires {
            Some(format!(
                "min_expires {} is above max_expires {}",
                self.min_expires, self.max_expires
            ))
        } else if self.max_contacts == 0 {
            Some("max_contacts is 0".into())
        } else {
            None
        }
    }
}

/// What `[[aliases]]` sets for its own AOR.
#[derive(Debug, Default)]
pub(super) struct AliasSettings {
    pub policy: AorPolicy,
    /// `reply_headers`, added to every 200 of the alias.
    pub headers: Vec<(String, String)>,
}

/// The aliases that set limits or reply headers of their own, by AOR.
pub(super) fn alias_settings(aliases: &[config::Alias]) -> HashMap<String, AliasSettings> {
    aliases
        .iter()
        .filter_map(|a| {
            let s = AliasSettings {
                policy: AorPolicy {
                    max_contacts: a.max_contacts,
                    min_expires: a.min_expires,
                    max_expires: a.max_expires,
                    evict: a.evict,
                },
                headers: a
                    .reply_headers
                    .iter()
                    .map(|(n, v)| (n.clone(), v.clone()))
                    .collect(),
            };
            if s.policy.is_empty() && s.headers.is_empty() {
                return None;
            }
            Some((a.aor()?, s))
        })
        .collect()
}
