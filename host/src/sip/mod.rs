//! The SIP layer: parsing and writing the parts of SIP a registrar needs.
//!
//! rsip supplies the method set; framing, header unfolding, compact names, URIs, Contact
//! lists, quoted parameters and digest parameters are ours (see ARCHITECTURE.md for why).

#![deny(clippy::string_slice)]

mod chars;
pub mod contact;
pub mod digest;
pub mod frame;
pub mod header;
pub mod message;
pub mod method;
pub mod name_addr;
pub mod params;
pub mod request;
pub mod response;
pub mod scan;
pub mod uri;
pub mod via;

pub use header::HeaderName;
pub use message::{Message, ParseError, StartLine};
pub use method::Method;
pub use response::Reply;
