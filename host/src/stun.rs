//! STUN Binding requests answered on the UDP SIP port (RFC 5389), the keep-alive RFC 5626
//! section 4.4.2 has outbound devices send over UDP: the answer tells a device its
//! address as this server sees it (XOR-MAPPED-ADDRESS), and a change of it means its NAT
//! binding moved. No authentication (RFC 5626 section 8.1 does not ask for any).

use std::net::{IpAddr, SocketAddr};

/// The magic cookie of RFC 5389 section 6.
const COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const HEADER: usize = 20;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
const FINGERPRINT: u16 = 0x8028;

/// Whether `packet` is a STUN message (section 6: the two top bits zero, the cookie, a
/// length that is a multiple of 4 and covers the rest). A SIP message never is: it
/// starts with a letter.
pub fn is_stun(packet: &[u8]) -> bool {
    packet.len() >= HEADER
        && packet[0] & 0xC0 == 0
        && packet[4..8] == COOKIE
        && usize::from(u16::from_be_bytes([packet[2], packet[3]])) == packet.len() - HEADER
        && packet.len().is_multiple_of(4)
}

/// The answer to a Binding request from `source`, written into `out`; false (nothing
/// written) for any other STUN message, which gets no answer.
pub fn answer(packet: &[u8], source: SocketAddr, out: &mut Vec<u8>) -> bool {
    if !is_stun(packet) || u16::from_be_bytes([packet[0], packet[1]]) != BINDING_REQUEST {
        return false;
    }
    let transaction = &packet[8..HEADER];
    let mut attr = Vec::with_capacity(24);
    let port = source.port() ^ 0x2112;
    match source.ip() {
        IpAddr::V4(v4) => {
            attr.extend_from_slice(&[0, 0x01]);
            attr.extend_from_slice(&port.to_be_bytes());
            for (b, c) in v4.octets().iter().zip(COOKIE) {
                attr.push(b ^ c);
            }
        }
        IpAddr::V6(v6) => {
            attr.extend_from_slice(&[0, 0x02]);
            attr.extend_from_slice(&port.to_be_bytes());
            let key: Vec<u8> = COOKIE.iter().chain(transaction).copied().collect();
            for (b, k) in v6.octets().iter().zip(key) {
                attr.push(b ^ k);
            }
        }
    }
    out.clear();
    out.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
    let length = 4 + attr.len() + 8; // XOR-MAPPED-ADDRESS, then FINGERPRINT
    out.extend_from_slice(&(length as u16).to_be_bytes());
    out.extend_from_slice(&COOKIE);
    out.extend_from_slice(transaction);
    out.extend_from_slice(&XOR_MAPPED_ADDRESS.to_be_bytes());
    out.extend_from_slice(&(attr.len() as u16).to_be_bytes());
    out.extend_from_slice(&attr);
    // Section 15.5: CRC-32 of the message up to the attribute, XOR 0x5354554e.
    let crc = crc32fast::hash(out) ^ 0x5354_554e;
    out.extend_from_slice(&FINGERPRINT.to_be_bytes());
    out.extend_from_slice(&4u16.to_be_bytes());
    out.extend_from_slice(&crc.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(transaction: [u8; 12]) -> Vec<u8> {
        let mut r = vec![0x00, 0x01, 0x00, 0x00];
        r.extend_from_slice(&COOKIE);
        r.extend_from_slice(&transaction);
        r
    }

    /// RFC 5769 section 2.2's sample response: 192.0.2.1:32853 as XOR-MAPPED-ADDRESS.
    #[test]
    fn the_mapped_address_is_rfc_5769s() {
        let t = [
            0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
        ];
        let mut out = Vec::new();
        assert!(answer(
            &request(t),
            "192.0.2.1:32853".parse().unwrap(),
            &mut out
        ));
        assert_eq!(&out[..2], &[0x01, 0x01]);
        assert_eq!(&out[8..20], &t);
        // the attribute as RFC 5769 writes it
        assert_eq!(
            &out[20..32],
            &[
                0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43
            ]
        );
        assert_eq!(
            usize::from(u16::from_be_bytes([out[2], out[3]])),
            out.len() - 20
        );
        assert!(is_stun(&out));
        // RFC 5769 section 2.3: 2001:db8:1234:5678:11:2233:4455:6677 port 32853
        let mut out6 = Vec::new();
        let src: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
            .parse()
            .unwrap();
        assert!(answer(&request(t), src, &mut out6));
        assert_eq!(
            &out6[20..44],
            &[
                0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3,
                0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9
            ]
        );
    }

    #[test]
    fn sip_and_other_stun_messages_get_nothing() {
        let mut out = Vec::new();
        let src = "192.0.2.1:5060".parse().unwrap();
        assert!(!answer(b"OPTIONS sip:x SIP/2.0\r\n\r\n", src, &mut out));
        let mut indication = request([0; 12]);
        indication[1] = 0x11; // a Binding indication
        assert!(!answer(&indication, src, &mut out));
        assert!(!answer(&request([0; 12])[..19], src, &mut out));
        assert!(out.is_empty());
    }
}
