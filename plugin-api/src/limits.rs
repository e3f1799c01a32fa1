//! Limits a plugin's `bind` may set for the AOR of its REGISTER, over sipreg's
//! `[registrar]` (and the alias's own): [`Bind::limits_mut`](crate::Bind::limits_mut).

/// Which binding goes when a REGISTER would leave its AOR more than `max_contacts`
/// (never one the REGISTER itself writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Evict {
    /// The binding refreshed least recently.
    Oldest,
    /// The binding with the lowest q (none counts as 1.0); of equals, the oldest.
    LowestQ,
    /// None: the REGISTER is refused with 403 "Too many contacts".
    Refuse,
}

impl Evict {
    /// Its number in [`BindC::evict`](crate::ffi::BindC) (0 is "as configured").
    pub fn code(self) -> u32 {
        match self {
            Evict::Oldest => 1,
            Evict::LowestQ => 2,
            Evict::Refuse => 3,
        }
    }

    /// The eviction a number says; None for 0 (as configured) and numbers it does not know.
    pub fn from_code(code: u32) -> Option<Evict> {
        match code {
            1 => Some(Evict::Oldest),
            2 => Some(Evict::LowestQ),
            3 => Some(Evict::Refuse),
            _ => None,
        }
    }
}

/// This AOR's limits; `None` leaves one as configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// At least 1.
    pub max_contacts: Option<u32>,
    /// Seconds: a contact asking less gets 423 with this Min-Expires.
    pub min_expires: Option<u32>,
    /// Seconds: longer expiries are cut to it.
    pub max_expires: Option<u32>,
    pub evict: Option<Evict>,
}
