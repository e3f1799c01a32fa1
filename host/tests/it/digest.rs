//! Digest authentication (RFC 7616 / RFC 8760) with our own client: SHA-256 and MD5,
//! wrong passwords, stale nonces, replayed nonce counts, HA1 secrets, 401 and 407.

use crate::support::{Harness, Register, T0, authorization, challenge_param, config, merged};

const ALICE: &str = "alice@example.com";

fn reg() -> Register {
    Register::new(ALICE).contact("<sip:alice@192.0.2.10>")
}

/// The challenges of a 401 to a REGISTER without credentials, in order.
fn challenges(h: &Harness) -> Vec<String> {
    let r = h.send(&reg().text());
    assert_eq!(r.code, 401, "{}", r.text);
    r.all("WWW-Authenticate")
        .into_iter()
        .map(str::to_owned)
        .collect()
}

#[test]
fn one_challenge_per_algorithm_in_configured_order() {
    let h = Harness::new(&config("www", ""));
    let c = challenges(&h);
    assert_eq!(c.len(), 2);
    assert_eq!(challenge_param(&c[0], "algorithm"), Some("SHA-256"));
    assert_eq!(challenge_param(&c[1], "algorithm"), Some("MD5"));
    for ch in &c {
        assert!(
            ch.starts_with("Digest realm=\"example.com\", nonce=\""),
            "{ch}"
        );
        assert!(ch.contains("qop=\"auth\""));
        assert!(!ch.contains("stale"));
    }
}

#[test]
fn sha256_and_md5_credentials_register() {
    let h = Harness::new(&config("www", ""));
    // both challenges of one 401 share a nonce, so each algorithm gets a 401 of its own
    for i in 0..2 {
        let ch = &challenges(&h)[i];
        let auth = authorization(ch, "alice", "wonderland", "sip:example.com", 1);
        let r = h.send(
            &reg()
                .cseq(2 + i as u32)
                .header(&format!("Authorization: {auth}"))
                .text(),
        );
        assert_eq!(
            r.code,
            200,
            "{}: {}",
            challenge_param(ch, "algorithm").unwrap(),
            r.text
        );
    }
}

#[test]
fn wrong_password_is_challenged_again_never_200() {
    let h = Harness::new(&config("www", ""));
    let ch = &challenges(&h)[0];
    let auth = authorization(ch, "alice", "looking-glass", "sip:example.com", 1);
    let r = h.send(
        &reg()
            .cseq(2)
            .header(&format!("Authorization: {auth}"))
            .text(),
    );
    assert_eq!(r.code, 401);
    assert!(!r.header("WWW-Authenticate").unwrap().contains("stale"));
    assert_eq!(
        h.send(&reg().cseq(3).text()).code,
        401,
        "still not registered"
    );
}

#[test]
fn another_users_valid_credentials_cannot_register_this_aor() {
    let h = Harness::new(&config("www", ""));
    let ch = &challenges(&h)[0];
    let auth = authorization(ch, "bob", "builder", "sip:example.com", 1);
    let r = h.send(
        &reg()
            .cseq(2)
            .header(&format!("Authorization: {auth}"))
            .text(),
    );
    assert_eq!(r.code, 403);
}

#[test]
fn stale_nonce_gets_stale_true_and_unknown_nonce_does_not() {
    let mut h = Harness::new(&config("www", ""));
    let ch = challenges(&h)[1].clone();
    h.now = T0 + 301_000;
    let auth = authorization(&ch, "alice", "wonderland", "sip:example.com", 1);
    let r = h.send(
        &reg()
            .cseq(2)
            .header(&format!("Authorization: {auth}"))
            .text(),
    );
    assert_eq!(r.code, 401);
    assert!(
        r.all("WWW-Authenticate")
            .iter()
            .all(|c| c.ends_with(", stale=true")),
        "{}",
        r.text
    );
    // a stale nonce with a wrong password is not "stale": the password is wrong
    let bad = authorization(&ch, "alice", "nope", "sip:example.com", 1);
    let r = h.send(
        &reg()
            .cseq(3)
            .header(&format!("Authorization: {bad}"))
            .text(),
    );
    assert!(!r.text.contains("stale=true"));
    // a nonce we never issued
    let forged = ch.replace(challenge_param(&ch, "nonce").unwrap(), "00112233");
    let auth = authorization(&forged, "alice", "wonderland", "sip:example.com", 1);
    let r = h.send(
        &reg()
            .cseq(4)
            .header(&format!("Authorization: {auth}"))
            .text(),
    );
    assert_eq!(r.code, 401);
    assert!(!r.text.contains("stale=true"));
}

#[test]
fn nonce_count_never_goes_back() {
    let h = Harness::new(&config("www", ""));
    let ch = challenges(&h)[0].clone();
    let send = |cseq: u32, nc: u32| {
        let auth = authorization(&ch, "alice", "wonderland", "sip:example.com", nc);
        h.send(
            &reg()
                .cseq(cseq)
                .header(&format!("Authorization: {auth}"))
                .text(),
        )
        .code
    };
    assert_eq!(send(2, 1), 200);
    assert_eq!(send(3, 1), 401, "the same nc again is a replay");
    assert_eq!(send(4, 2), 200);
    assert_eq!(send(5, 1), 401, "a lower nc is a replay");
}

#[test]
fn ha1_secret_and_proxy_challenge() {
    let h = Harness::new(&config("proxy", ""));
    let carol = || Register::new("carol@example.com").contact("<sip:carol@192.0.2.10>");
    let r = h.send(&carol().text());
    assert_eq!(r.code, 407);
    assert!(r.header("WWW-Authenticate").is_none());
    let md5 = r
        .all("Proxy-Authenticate")
        .into_iter()
        .find(|c| c.contains("MD5"))
        .unwrap()
        .to_owned();
    let auth = authorization(&md5, "carol", "secret", "sip:example.com", 1);
    // credentials in the wrong header are not seen
    let wrong = h.send(
        &carol()
            .cseq(2)
            .header(&format!("Authorization: {auth}"))
            .text(),
    );
    assert_eq!(wrong.code, 407);
    let ok = h.send(
        &carol()
            .cseq(3)
            .header(&format!("Proxy-Authorization: {auth}"))
            .text(),
    );
    assert_eq!(ok.code, 200, "{}", ok.text);
}

#[test]
fn unknown_alias_in_challenge_mode_is_never_accepted() {
    let h = Harness::new(&config("www", "unknown_alias = \"challenge\""));
    let mallory = || Register::new("mallory@example.com").contact("<sip:m@192.0.2.10>");
    let r = h.send(&mallory().text());
    assert_eq!(r.code, 401, "challenged like a real alias");
    let ch = r.header("WWW-Authenticate").unwrap().to_owned();
    // even alice's valid credentials do not register mallory's alias
    let auth = authorization(&ch, "alice", "wonderland", "sip:example.com", 1);
    assert_eq!(
        h.send(
            &mallory()
                .cseq(2)
                .header(&format!("Authorization: {auth}"))
                .text()
        )
        .code,
        401
    );
}

#[test]
fn other_schemes_are_challenged_and_malformed_digest_is_400() {
    let h = Harness::new(&config("www", ""));
    let r = h.send(
        &reg()
            .header("Authorization: NoOneKnowsThisScheme opaque-data=here")
            .text(),
    );
    assert_eq!(r.code, 401);
    let r = h.send(
        &reg()
            .cseq(2)
            .header("Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"x")
            .text(),
    );
    assert_eq!(r.code, 400);
    assert!(
        r.reason.starts_with("Malformed Authorization"),
        "{}",
        r.reason
    );
}

/// A nonce carries its realm: one issued for `other.com` by a node with the same
/// `nonce_secret` does not pass for `example.com`, though the response is right for it
/// (issue 18, finding 7; on c01b7a9 it registered).
#[test]
fn a_nonce_of_another_realm_is_not_ours() {
    let secret = "[auth]\nnonce_secret = \"shared by both nodes\"\n";
    let ours = Harness::new(&merged(&config("www", ""), secret));
    let other = Harness::new(&merged(
        &config("www", ""),
        &format!("{secret}realm = \"other.com\"\n"),
    ));
    let ch = other.send(&reg().text());
    assert_eq!(ch.code, 401);
    let theirs = ch
        .header("WWW-Authenticate")
        .unwrap()
        .replace("other.com", "example.com");
    let auth = authorization(&theirs, "alice", "wonderland", "sip:example.com", 1);
    let r = ours.send(
        &reg()
            .cseq(2)
            .header(&format!("Authorization: {auth}"))
            .text(),
    );
    assert_eq!(r.code, 401, "{}", r.text);
    let again = r.header("WWW-Authenticate").unwrap();
    assert!(!again.contains("stale"), "not ours, so not stale: {again}");
    // the same credentials on a nonce of our own realm pass
    let ch = ours.send(&reg().cseq(3).text());
    let auth = authorization(
        ch.header("WWW-Authenticate").unwrap(),
        "alice",
        "wonderland",
        "sip:example.com",
        1,
    );
    assert_eq!(
        ours.send(
            &reg()
                .cseq(4)
                .header(&format!("Authorization: {auth}"))
                .text()
        )
        .code,
        200
    );
}

/// The digest `uri` must name the Request-URI (RFC 3261 section 19.1.4 comparison): 400
/// otherwise, as RFC 2617 section 3.2.2.5 says, even with a right response for that uri
/// (issue 18, finding 7; on c01b7a9 it registered). Forms that compare equal pass.
#[test]
fn the_digest_uri_must_name_the_request_uri() {
    let h = Harness::new(&config("www", ""));
    let ch = challenges(&h).remove(1); // MD5
    let auth = authorization(&ch, "alice", "wonderland", "sip:elsewhere.org", 1);
    let r = h.send(
        &reg()
            .cseq(2)
            .header(&format!("Authorization: {auth}"))
            .text(),
    );
    assert_eq!(
        (r.code, r.reason.as_str()),
        (400, "Digest uri does not match the Request-URI")
    );
    let ch = challenges(&h).remove(1);
    let auth = authorization(&ch, "alice", "wonderland", "sip:EXAMPLE.com", 1);
    let r = h.send(
        &reg()
            .cseq(3)
            .header(&format!("Authorization: {auth}"))
            .text(),
    );
    assert_eq!(r.code, 200, "the host compares without case: {}", r.text);
}

/// RFC 8760's SHA-512-256 beside the others: offered first when configured so, a
/// password answers it, and an HA1 stored for it (`ha1_algorithm`) too; an HA1 of it
/// never passes for SHA-256 (both are 64 hex digits).
#[test]
fn sha_512_256_credentials_register() {
    use sha2::Digest;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let dave = hex(&sha2::Sha512_256::digest(b"dave:example.com:sesame"));
    let toml = config("www", "").replace(
        "algorithms = [\"SHA-256\", \"MD5\"]",
        "algorithms = [\"SHA-512-256\", \"SHA-256\", \"MD5\"]",
    ) + &format!(
        "\n[[aliases]]\nalias = \"dave@example.com\"\nha1 = \"{dave}\"\nha1_algorithm = \"SHA-512-256\"\n"
    );
    let h = Harness::new(&toml);
    let c = challenges(&h);
    assert_eq!(c.len(), 3);
    assert_eq!(challenge_param(&c[0], "algorithm"), Some("SHA-512-256"));
    let auth = authorization(&c[0], "alice", "wonderland", "sip:example.com", 1);
    let r = h.send(
        &reg()
            .cseq(2)
            .header(&format!("Authorization: {auth}"))
            .text(),
    );
    assert_eq!(r.code, 200, "{}", r.text);
    let dave_reg = || Register::new("dave@example.com").contact("<sip:dave@192.0.2.11>");
    for (i, alg) in [(0, "SHA-512-256"), (1, "SHA-256")] {
        let r = h.send(&dave_reg().cseq(10 + 2 * i).text());
        let ch = &r.all("WWW-Authenticate")[i as usize];
        assert_eq!(challenge_param(ch, "algorithm"), Some(alg));
        let auth = authorization(ch, "dave", "sesame", "sip:example.com", 1);
        let r = h.send(
            &dave_reg()
                .cseq(11 + 2 * i)
                .header(&format!("Authorization: {auth}"))
                .text(),
        );
        let want = if alg == "SHA-512-256" { 200 } else { 401 };
        assert_eq!(r.code, want, "{alg}: {}", r.text);
    }
}

/// `[[aliases]] algorithms`: the alias is challenged with its own list only, and an
/// answer with another algorithm is refused; the others keep `[auth] algorithms`.
#[test]
fn an_alias_is_challenged_with_its_own_algorithms() {
    let toml = config("www", "").replace(
        "alias = \"alice@example.com\"",
        "alias = \"alice@example.com\"\nalgorithms = [\"MD5\"]",
    );
    assert!(
        toml.contains("algorithms = [\"MD5\"]"),
        "the battery's alice: {toml}"
    );
    let h = Harness::new(&toml);
    let c = challenges(&h);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(challenge_param(&c[0], "algorithm"), Some("MD5"));
    // an answer computed for SHA-256 on that nonce is not accepted
    let sha = c[0].replace("algorithm=MD5", "algorithm=SHA-256");
    let auth = authorization(&sha, "alice", "wonderland", "sip:example.com", 1);
    let r = h.send(
        &reg()
            .cseq(2)
            .header(&format!("Authorization: {auth}"))
            .text(),
    );
    assert_eq!(r.code, 401, "{}", r.text);
    let auth = authorization(&c[0], "alice", "wonderland", "sip:example.com", 2);
    let r = h.send(
        &reg()
            .cseq(3)
            .header(&format!("Authorization: {auth}"))
            .text(),
    );
    assert_eq!(r.code, 200, "{}", r.text);
    // bob keeps the global list
    let r = h.send(
        &Register::new("bob@example.com")
            .contact("<sip:bob@192.0.2.12>")
            .text(),
    );
    assert_eq!(r.all("WWW-Authenticate").len(), 2);
}
