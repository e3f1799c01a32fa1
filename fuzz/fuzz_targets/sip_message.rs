//! Any bytes as a SIP message: parsed, and a request checked as the core checks it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipreg::sip::{Message, request};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::parse(data)
        && let Some(via) = request::top_via(&msg)
    {
        let _ = request::check(&msg, via);
        let _ = sipreg::sip::contact::parse(&msg);
    }
});
