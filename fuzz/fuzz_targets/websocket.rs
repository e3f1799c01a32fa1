//! Any bytes as what a WebSocket client sends: the upgrade request (checked as the WS
//! and WSS listeners check it) and the frames after it, read by tungstenite with our
//! limits, each message classified as SIP does and parsed. The first byte chooses what
//! the rest is: everything the client sends; frames after a valid upgrade; or one masked
//! text frame's payload after a valid upgrade (so the SIP seeds reach the SIP parser).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipreg::server::websocket::{Incoming, incoming, upgrade_allowed, ws_config};
use std::io::{Cursor, Read, Write};
use tungstenite::handshake::server::{ErrorResponse, Request, Response};

const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\nOrigin: https://phone.example\r\n\r\n";

/// The client's bytes in, the server's out (thrown away).
#[derive(Debug)]
struct Client(Cursor<Vec<u8>>);

impl Read for Client {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Client {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A masked frame (FIN set) with this opcode and payload.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65_536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = match mode % 3 {
        0 => rest.to_vec(),
        1 => [UPGRADE, rest].concat(),
        _ => [UPGRADE, &frame(0x1, rest), &frame(0x8, &[0x03, 0xe8])].concat(),
    };
    let origins = vec!["https://phone.example".to_owned()];
    let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        upgrade_allowed(req, &origins)?;
        Ok(resp)
    };
    let Ok(mut ws) =
        tungstenite::accept_hdr_with_config(Client(Cursor::new(bytes)), check, Some(ws_config(4096)))
    else {
        return;
    };
    while let Ok(m) = ws.read() {
        if let Incoming::Sip(b) = incoming(&m) {
            assert!(!b.is_empty());
            let _ = sipreg::sip::Message::parse(b);
        }
    }
});
