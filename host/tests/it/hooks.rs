//! The hook chain as the core uses it: a Rust implementation ahead of the built-in one.

use crate::support::{Harness, Register, config};
use sipreg::hooks::{
    AuthDecision, AuthRequest, BindRequest, Decision, ExpireEvent, ExpireReason, Hook, HookError,
    Hooks, RequestInfo,
};
use sipreg::sip::Reply;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Policy {
    expired: Mutex<Vec<(String, ExpireReason)>>,
}

impl Hooks for Policy {
    fn name(&self) -> &str {
        "test-policy"
    }

    fn on_request(&self, req: &RequestInfo<'_>) -> Result<Decision, HookError> {
        match req.msg.header_by_name("X-Test") {
            Some("maintenance") => Ok(Decision::Respond(Reply::with_reason(503, "Maintenance"))),
            Some("drop") => Ok(Decision::Drop),
            Some("fail") => Err(HookError::new("test-policy", Hook::OnRequest, "boom")),
            _ => Ok(Decision::Continue),
        }
    }

    fn authenticate(
        &self,
        _req: &RequestInfo<'_>,
        auth: &AuthRequest<'_>,
    ) -> Result<AuthDecision, HookError> {
        // dave is not in [[aliases]]: this hook knows him
        if auth.aor == "dave@example.com" {
            return Ok(match auth.username {
                Some("dave") => AuthDecision::Credentials {
                    username: "dave".into(),
                    secret: sipreg::auth::Secret::Password("dpw".into()),
                },
                _ => AuthDecision::Challenge,
            });
        }
        Ok(AuthDecision::Pass)
    }

    fn bind(
        &self,
        _req: &RequestInfo<'_>,
        bind: &mut BindRequest<'_>,
    ) -> Result<Decision, HookError> {
        if bind.aor == "dave@example.com" {
            for b in &mut bind.bindings {
                b.expires = b.expires.min(120);
                b.q = Some(250);
            }
            return Ok(Decision::Accept); // skip the built-in alias check
        }
        Ok(Decision::Continue)
    }

    fn expire(&self, event: &ExpireEvent<'_>) -> Result<(), HookError> {
        self.expired
            .lock()
            .unwrap()
            .push((event.aor.to_owned(), event.reason));
        Ok(())
    }
}

fn harness() -> (Harness, Arc<Policy>) {
    let p = Arc::new(Policy::default());
    (Harness::with_hooks(&config("www", ""), vec![p.clone()]), p)
}

#[test]
fn on_request_can_answer_drop_or_fail_with_500() {
    let (h, _) = harness();
    let base = Register::new("alice@example.com").contact("<sip:a@192.0.2.10>");
    let r = h.send(&base.clone().header("X-Test: maintenance").text());
    assert_eq!((r.code, r.reason.as_str()), (503, "Maintenance"));
    assert!(
        h.send_raw(base.clone().header("X-Test: drop").text().as_bytes())
            .is_none()
    );
    assert_eq!(
        h.send(&base.clone().header("X-Test: fail").text()).code,
        500
    );
    assert_eq!(
        h.send(&base.text()).code,
        401,
        "the next request is served as usual"
    );
}

#[test]
fn a_hook_supplies_credentials_and_shapes_the_binding() {
    let (h, policy) = harness();
    let dave = || Register::new("dave@example.com").contact("<sip:dave@192.0.2.10>");
    let r = h.send(&dave().text());
    assert_eq!(r.code, 401);
    let ch = r.all("WWW-Authenticate")[0].to_owned();
    let auth = crate::support::authorization(&ch, "dave", "dpw", "sip:example.com", 1);
    let ok = h.send(
        &dave()
            .cseq(2)
            .header(&format!("Authorization: {auth}"))
            .text(),
    );
    assert_eq!(ok.code, 200, "{}", ok.text);
    let c = ok.header("Contact").unwrap();
    assert!(c.contains("expires=120") && c.ends_with(";q=0.25"), "{c}");
    h.core.expire_due(crate::support::T0 + 121_000);
    assert_eq!(
        *policy.expired.lock().unwrap(),
        vec![("dave@example.com".to_owned(), ExpireReason::Expired)]
    );
}
