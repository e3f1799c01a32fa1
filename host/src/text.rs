//! Numbers written into text on the request path without `format!` (whose formatting
//! machinery costs several hundred instructions a call).

/// Appends the lowest `digits` hex digits of `value`, lower case, zero-padded.
pub fn push_hex(out: &mut String, value: u64, digits: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for i in (0..digits).rev() {
        out.push(DIGITS[((value >> (i * 4)) & 15) as usize] as char);
    }
}

/// `value` in decimal, written into `buf`.
pub fn decimal(value: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    let mut n = value;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

/// Appends `value` in decimal.
pub fn push_decimal(out: &mut String, value: u64) {
    out.push_str(decimal(value, &mut [0; 20]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_format() {
        for v in [0u64, 7, 10, 3600, 65_535, u64::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, v);
            assert_eq!(s, v.to_string());
            let mut h = String::new();
            push_hex(&mut h, v, 16);
            assert_eq!(h, format!("{v:016x}"));
        }
        let mut h = String::new();
        push_hex(&mut h, 0xabc, 2);
        assert_eq!(h, "bc");
    }
}
