//! The step after `bind`: the AOR's limits ([`Limits`], `[registrar]`'s under its alias's
//! under what `bind` set) applied to the proposal, and the headers of the 200 that the
//! alias and the hooks add.

use super::limits::Limits;
use super::register::Register;
use super::steps::Proposal;
use super::{Outcome, Registrar};
use crate::hooks::RequestInfo;
use crate::sip::Reply;

impl Registrar {
    /// The limits of the REGISTER's AOR, applied to its proposal once `bind` has set its
    /// own: 423 for a contact that asked less than the minimum, each expiry cut to the
    /// maximum (an expiry no hook lowered is the one asked for, under the new maximum).
    pub(super) fn aor_limits(
        &self,
        req: &RequestInfo<'_>,
        reg: &Register<'_>,
        p: &mut Proposal<'_>,
    ) -> Result<Limits, Outcome> {
        let aor = reg.aor.as_str();
        let mut limits = self.limits;
        if let Some(alias) = self.alias_settings.get(aor) {
            limits = limits.under(&alias.policy);
        }
        let limits = limits.under(&p.bind.policy);
        if let Some(why) = limits.contradiction() {
            tracing::error!(target: "sipreg::hooks", alias = aor, error = %why, "bind set limits that cannot hold; request answered 500");
            return Err(self.refuse(req, aor, Reply::new(500), "Limits that cannot hold"));
        }
        for (b, asked) in p.bind.bindings.iter_mut().zip(&p.asked) {
            if asked.expires > 0 && asked.expires < limits.min_expires {
                let reply = Reply::new(423).header("Min-Expires", limits.min_expires.to_string());
                return Err(self.refuse(req, aor, reply, "Interval too brief"));
            }
            let lowered = b.expires != asked.expires.min(self.limits.max_expires);
            b.expires = if lowered { b.expires } else { asked.expires }.min(limits.max_expires);
        }
        Ok(limits)
    }

    /// The headers of the alias's configuration and of the `bind` hooks, for the 200.
    pub(super) fn reply_headers<'p>(
        &'p self,
        aor: &str,
        p: &'p Proposal<'_>,
    ) -> impl Iterator<Item = &'p (String, String)> {
        let alias = self.alias_settings.get(aor).map(|a| a.headers.as_slice());
        alias
            .unwrap_or_default()
            .iter()
            .chain(p.bind.reply_headers())
    }
}
