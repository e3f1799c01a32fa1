//! Step 8: the 200 to a REGISTER, listing every binding of the AOR with the time it has
//! left, the Path it was stored with, RFC 5626's `Require: outbound` and Flow-Timer to a
//! device that registered a flow, the headers of the alias and of the `bind` hooks
//! (`Service-Route`, `P-Associated-URI`, ...), and the Date.

use super::register::Register;
use super::steps::Proposal;
use super::{Outcome, Registrar, date};
use crate::hooks::BindKind;
use crate::sip::Reply;
use crate::sip::contact::format_q;
use crate::store::Applied;

impl Registrar {
    /// The 200 for what step 7 left (sent once it is on disk, where the store says so).
    pub(super) fn ok(
        &self,
        reg: &Register<'_>,
        p: &Proposal<'_>,
        applied: Applied,
        now_ms: u64,
    ) -> Outcome {
        let mut reply = Reply::new(200);
        for b in &applied.bindings {
            let left = b.expires_at_ms.saturating_sub(now_ms).div_ceil(1000);
            let mut value = String::with_capacity(b.contact.len() + 24);
            value.push_str(&b.contact);
            value.push_str(";expires=");
            crate::text::push_decimal(&mut value, left);
            if let Some(q) = b.q {
                value.push_str(";q=");
                value.push_str(&format_q(q));
            }
            reply = reply.header("Contact", value);
        }
        if let Some(path) = &p.path {
            reply = reply.header("Path", path.clone());
        }
        if p.outbound && p.bind.kind == BindKind::Update && reg.supports("outbound") {
            reply = reply
                .header("Require", "outbound")
                .header("Flow-Timer", self.limits.flow_timer.to_string());
        }
        for (name, value) in self.reply_headers(&reg.aor, p) {
            let value = if name.eq_ignore_ascii_case("Service-Route") {
                self.service_routes.stamp(value)
            } else {
                value.clone()
            };
            reply = reply.header(name.clone(), value);
        }
        let reply = reply.header("Date", date::at(now_ms));
        match applied.durable {
            Some(d) => Outcome::Stored(reply, d),
            None => Outcome::Reply(reply),
        }
    }
}
