//! `sipreg try`: one request through the whole chain and the registrar, offline (in-memory
//! stores, no socket), to prototype a policy without a server or a phone.

use crate::app::{App, BuildError, Options};
use crate::config::{Config, Transport};
use crate::core::{Handled, Output, Packet};
use std::net::SocketAddr;

/// A request file as SIP wants it: lines that end in a bare LF (a file written in an
/// editor) end in CRLF; the body, after the blank line, is left as it is.
pub fn normalise(text: &[u8]) -> Vec<u8> {
    let head_end = text
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| i + 2)
        .or_else(|| {
            text.windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| i + 4)
        });
    let (head, body) = text.split_at(head_end.unwrap_or(text.len()));
    let mut out = Vec::with_capacity(text.len() + 64);
    for (i, &b) in head.iter().enumerate() {
        if b == b'\n' && (i == 0 || head[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    if head_end.is_none() {
        // a file that ends after its last header: end the header section
        while out.last().is_some_and(|b| *b == b'\r' || *b == b'\n') {
            out.pop();
        }
        out.extend_from_slice(b"\r\n\r\n");
    }
    out.extend_from_slice(body);
    out
}

/// Runs `request` from `source` over `transport` through a core built from `config`; the
/// reply, if any. Every decision is logged (target [`crate::hooks::TRAIL`] at debug level)
/// while it runs.
///
/// # Errors
/// The load errors of the configured scripts.
pub fn run(
    config: &Config,
    request: &[u8],
    source: SocketAddr,
    transport: Transport,
) -> Result<(Handled, Output), Vec<String>> {
    let app = App::build(config, Options::offline()).map_err(|e| match e {
        BuildError::Hooks(errors) => errors,
        BuildError::Store(e) => vec![e.to_string()],
    })?;
    let core = &app.core;
    let mut out = Output::default();
    let bytes = normalise(request);
    let packet = Packet {
        bytes: &bytes,
        source,
        transport,
        now_ms: core.clock().now_ms(),
        peer_cert: None,
    };
    let handled = core.handle_offline(packet, &mut out);
    Ok((handled, out))
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn bare_line_feeds_become_crlf_in_the_head_only() {
        assert_eq!(
            normalise(b"A\nB: 1\n\nbody\nx"),
            b"A\r\nB: 1\r\n\r\nbody\nx".to_vec()
        );
        assert_eq!(
            normalise(b"A\r\nB: 1\r\n\r\n"),
            b"A\r\nB: 1\r\n\r\n".to_vec()
        );
        assert_eq!(normalise(b"A\nB: 1\n"), b"A\r\nB: 1\r\n\r\n".to_vec());
        assert_eq!(normalise(b"A\nB: 1"), b"A\r\nB: 1\r\n\r\n".to_vec());
    }
}
