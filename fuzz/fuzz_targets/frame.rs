//! Any bytes as a TCP stream: framed message by message as the connection does.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipreg::sip::frame::{Frame, next_frame};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Frame::Message(n)) = next_frame(rest, 65_535) {
        assert!(n > 0 && n <= rest.len());
        rest = &rest[n..];
    }
});
