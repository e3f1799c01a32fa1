//! The Date header of a 200 (RFC 3261 section 10.3 step 8), formatted once per second per
//! thread rather than once per reply.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    static CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// The current time as an HTTP date (`Sun, 07 Oct 2007 13:00:11 GMT`).
pub(crate) fn now() -> String {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != second {
            *c = (second, httpdate::fmt_http_date(now));
        }
        c.1.clone()
    })
}
