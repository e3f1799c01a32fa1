//! The location store with 1,000,000 bindings: insert, refresh, an expiry tick with nothing
//! due, and expiring them all. Prints figures; asserts only that every binding is accounted
//! for. Run with `cargo bench --bench location`.

use sipreg::config::Transport;
use sipreg::store::{Change, Location, Update};
use std::time::Instant;

const N: usize = 1_000_000;
const T0: u64 = 1_800_000_000_000;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn update(location: &Location, i: usize, cseq: u32, now_ms: u64) {
    let aor = format!("user{i:07}@example.com");
    let contact = format!(
        "<sip:user{i:07}@10.{}.{}.{}:5060>",
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255
    );
    let key = contact.trim_matches(['<', '>']).to_owned();
    let u = Update {
        call_id: "bench-call",
        cseq,
        branch: u64::from(cseq),
        source: "10.0.0.1:5060".parse().unwrap(),
        transport: Transport::Udp,
        path: None,
        max_contacts: 10,
        evict: sipreg::config::Evict::Oldest,
        now_ms,
        remove_all: false,
        changes: vec![Change {
            contact: &contact,
            key: &key,
            // spread expiry over an hour so the index holds many distinct times
            expires: 3600 + (i % 3600) as u32,
            q: None,
            instance: None,
            reg_id: None,
            natted: false,
            registration_id: uuid::Uuid::new_v4(),
        }],
    };
    location.update(&aor, &u).expect("bench update");
}

fn main() {
    let location = Location::new();
    let rss0 = rss_kib();
    let t = Instant::now();
    for i in 0..N {
        update(&location, i, 1, T0);
    }
    let insert = t.elapsed();
    let rss1 = rss_kib();
    let t = Instant::now();
    for i in 0..N {
        update(&location, i, 2, T0 + 1000);
    }
    let refresh = t.elapsed();
    let t = Instant::now();
    let none = location.expire_due(T0 + 2000);
    let idle_tick = t.elapsed();
    assert_eq!(none.len(), 0);
    // one tick per second of the hour in which they expire
    let t = Instant::now();
    let mut expired = 0;
    let mut ticks = 0;
    let mut now = T0 + 1000 + 3_600_000;
    while expired < N {
        expired += location.expire_due(now).len();
        now += 1000;
        ticks += 1;
    }
    let expire_all = t.elapsed();
    assert!(location.is_empty());
    println!("location store, {N} bindings (one per AOR)");
    println!(
        "  insert:             {:>8.0} ns/binding",
        insert.as_nanos() as f64 / N as f64
    );
    println!(
        "  refresh:            {:>8.0} ns/binding",
        refresh.as_nanos() as f64 / N as f64
    );
    println!(
        "  memory:             {:>8} bytes/binding (RSS {} -> {} MiB)",
        (rss1 - rss0) * 1024 / N as u64,
        rss0 / 1024,
        rss1 / 1024
    );
    println!(
        "  expiry tick, 0 due: {:>8.1} us (64 shards looked at, no binding scanned)",
        idle_tick.as_nanos() as f64 / 1000.0
    );
    println!(
        "  expire all:         {:>8.0} ns/binding over {ticks} one-second ticks",
        expire_all.as_nanos() as f64 / N as f64
    );
}
