//! Stream framing (RFC 3261 section 18.3): a message ends after its header section plus
//! Content-Length bytes of body; CRLF keep-alives (RFC 5626 section 4.4.1) come between.

use super::header::HeaderName;
use super::message::head_end;

/// What the front of a stream buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A complete message of this many bytes.
    Message(usize),
    /// A double-CRLF ping of this many bytes, to be answered with a single CRLF.
    Ping(usize),
    /// A lone CRLF (a pong, or padding) of this many bytes, to be skipped.
    Skip(usize),
    /// Not enough bytes yet.
    Incomplete,
}

/// Why a stream cannot be framed any further; the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    TooLarge,
    /// No usable Content-Length: on a stream it is mandatory.
    BadContentLength,
}

/// Looks at the front of `buf`.
///
/// # Errors
/// [`FrameError`] when the message is larger than `max` or its length cannot be read.
pub fn next_frame(buf: &[u8], max: usize) -> Result<Frame, FrameError> {
    if buf.starts_with(b"\r\n\r\n") {
        return Ok(Frame::Ping(4));
    }
    if buf.starts_with(b"\r\n") {
        return Ok(if buf.len() < 4 && b"\r\n\r\n".starts_with(buf) {
            Frame::Incomplete
        } else {
            Frame::Skip(2)
        });
    }
    let Some((head_len, body_start)) = head_end(buf) else {
        return if buf.len() > max {
            Err(FrameError::TooLarge)
        } else {
            Ok(Frame::Incomplete)
        };
    };
    let head = &buf[..head_len];
    let mut length = None;
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = std::str::from_utf8(&line[..colon]).unwrap_or("").trim();
        if HeaderName::parse(name) == HeaderName::ContentLength {
            let v = std::str::from_utf8(&line[colon + 1..]).unwrap_or("").trim();
            let n: usize = v.parse().map_err(|_| FrameError::BadContentLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(FrameError::BadContentLength);
            }
            length = Some(n);
        }
    }
    let length = length.ok_or(FrameError::BadContentLength)?;
    // A Content-Length near usize::MAX is too large, not an overflow.
    let total = body_start.checked_add(length).ok_or(FrameError::TooLarge)?;
    if total > max {
        return Err(FrameError::TooLarge);
    }
    Ok(if buf.len() >= total {
        Frame::Message(total)
    } else {
        Frame::Incomplete
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_by_content_length() {
        let m = b"OPTIONS sip:a@b SIP/2.0\r\nl: 3\r\n\r\nabcREGISTER";
        assert_eq!(next_frame(m, 1000), Ok(Frame::Message(m.len() - 8)));
        assert_eq!(next_frame(&m[..20], 1000), Ok(Frame::Incomplete));
        let partial_body = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5\r\n\r\nab";
        assert_eq!(next_frame(partial_body, 1000), Ok(Frame::Incomplete));
    }

    #[test]
    fn keepalives() {
        assert_eq!(next_frame(b"\r\n\r\nOPTIONS", 100), Ok(Frame::Ping(4)));
        assert_eq!(next_frame(b"\r\n", 100), Ok(Frame::Incomplete));
        assert_eq!(next_frame(b"\r\nOPT", 100), Ok(Frame::Skip(2)));
    }

    #[test]
    fn limits() {
        let no_cl = b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n";
        assert_eq!(next_frame(no_cl, 1000), Err(FrameError::BadContentLength));
        let big = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n";
        assert_eq!(next_frame(big, 1000), Err(FrameError::TooLarge));
        assert_eq!(next_frame(&[b'x'; 2000], 1000), Err(FrameError::TooLarge));
    }
}
