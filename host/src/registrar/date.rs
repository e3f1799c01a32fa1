//! The Date header of a 200 (RFC 3261 section 10.3 step 8), formatted once per second per
//! thread rather than once per reply.

use std::cell::RefCell;
use std::time::{Duration, UNIX_EPOCH};

thread_local! {
    static CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `now_ms` (milliseconds since the Unix epoch) as an HTTP date
/// (`Sun, 07 Oct 2007 13:00:11 GMT`).
pub(crate) fn at(now_ms: u64) -> String {
    let second = now_ms / 1000;
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != second {
            let time = UNIX_EPOCH + Duration::from_secs(second);
            *c = (second, httpdate::fmt_http_date(time));
        }
        c.1.clone()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_date_is_the_given_time_and_changes_with_the_second() {
        assert_eq!(
            super::at(1_191_762_011_000),
            "Sun, 07 Oct 2007 13:00:11 GMT"
        );
        assert_eq!(
            super::at(1_191_762_011_999),
            "Sun, 07 Oct 2007 13:00:11 GMT"
        );
        assert_eq!(
            super::at(1_191_762_012_000),
            "Sun, 07 Oct 2007 13:00:12 GMT"
        );
    }
}
