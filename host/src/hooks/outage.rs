//! An outside service that failed a hook (an HTTP or SQL lookup that timed out, was
//! refused, answered 5xx or something unreadable): fail-closed, the request gets what the
//! implementation's `on_outage` says, never a 200.

use crate::config::OnOutage;
use crate::sip::Reply;

/// The reason phrase of the 503 an outage gives.
pub const REASON: &str = "Upstream service unavailable";

/// What a hook error caused by an outside service carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    /// The service, as `scheme://host:port` (or the plugin's name for it).
    pub service: String,
    pub answer: OnOutage,
    /// Seconds a device is asked to wait with a 503.
    pub retry_after: u32,
}

impl Outage {
    /// The reply: 503 with Retry-After, or 500. (A challenge is the registrar's to
    /// write; where none can be written, 503.)
    pub fn reply(&self) -> Reply {
        match self.answer {
            OnOutage::Error => Reply::new(500),
            OnOutage::Unavailable | OnOutage::Challenge => {
                Reply::with_reason(503, REASON).header("Retry-After", self.retry_after.to_string())
            }
        }
        .because(format!("{} failed", self.service))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_answered_as_configured() {
        let o = |answer| Outage {
            service: "http://127.0.0.1:8080".into(),
            answer,
            retry_after: 30,
        };
        let r = o(OnOutage::Unavailable).reply();
        assert_eq!((r.code, r.reason.as_ref()), (503, REASON));
        assert!(
            r.headers
                .iter()
                .any(|(n, v)| n == "Retry-After" && v == "30")
        );
        assert_eq!(o(OnOutage::Error).reply().code, 500);
        assert_eq!(o(OnOutage::Challenge).reply().code, 503);
    }
}
