//! The Redis store applies RFC 3261 section 10.3 step 7 on the node and writes the AOR
//! back with a compare-and-swap on its version: nodes writing one AOR at once lose no
//! update, and every key of an AOR lives in one Redis Cluster slot.

use crate::redis_server::RedisServer;
use sipreg::config::Transport;
use sipreg::store::redis::{Redis, RedisLocation};
use sipreg::store::{Change, Event, LocationStore, Update};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

fn register(
    store: &RedisLocation,
    contact: &str,
    call_id: &str,
    cseq: u32,
    now_ms: u64,
) -> Vec<Event> {
    let u = Update {
        call_id,
        cseq,
        branch: u64::from(cseq),
        source: "192.0.2.1:5060".parse().unwrap(),
        transport: Transport::Udp,
        path: None,
        max_contacts: 3,
        evict: sipreg::config::Evict::Oldest,
        now_ms,
        remove_all: false,
        changes: vec![Change {
            contact,
            key: contact,
            expires: 600,
            q: None,
            instance: None,
            reg_id: None,
            natted: false,
            registration_id: Uuid::new_v4(),
        }],
    };
    store.update("shared@x", &u).expect("updated").events
}

/// Eight writers (each a node of its own: its own connections) register their own
/// contact to one AOR 25 times each, all at once (conflicts on the version are frequent),
/// with `max_contacts` 3: each update is computed on the AOR as the last one left it, so
/// the AOR never holds more than 3 bindings and what the events added, less what they
/// removed, is what is left. (A write computed on a stale read would keep a binding
/// another write evicted, or evict one twice.)
#[test]
fn concurrent_writers_of_one_aor_lose_no_update() {
    let server = RedisServer::start();
    let now = crate::support::now_ms();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let url = server.url();
            std::thread::spawn(move || {
                let redis = Arc::new(Redis::new(&url, Duration::from_secs(2)).unwrap());
                let store = RedisLocation::new(redis, "cas");
                let contact = format!("sip:w{w}@192.0.2.1");
                let call_id = format!("call-{w}");
                let mut net = 0i64;
                for cseq in 1..=25 {
                    let events = register(&store, &contact, &call_id, cseq, now + u64::from(cseq));
                    for e in &events {
                        net += match e {
                            Event::Added(_) => 1,
                            Event::Removed(..) => -1,
                            Event::Refreshed(_) => 0,
                        };
                    }
                    // a few writers at once on every write, not one long burst each
                    std::thread::sleep(Duration::from_micros(rand::random_range(0..500)));
                }
                net
            })
        })
        .collect();
    let net: i64 = writers.into_iter().map(|t| t.join().unwrap()).sum();
    let redis = Arc::new(Redis::new(&server.url(), Duration::from_secs(2)).unwrap());
    let store = RedisLocation::new(redis, "cas");
    let bindings = store.lookup("shared@x", now).unwrap();
    assert_eq!(bindings.len(), 3, "{bindings:?}");
    assert_eq!(net, 3, "added less removed is what is left");
    assert_eq!(store.count().unwrap(), 3, "the expiry set agrees");
}

/// On a cluster-enabled Redis, `CLUSTER KEYSLOT` of an AOR's hash and of its expiry set
/// is one slot, for AORs of every bucket.
#[test]
fn the_keys_of_an_aor_share_one_cluster_slot() {
    let server = RedisServer::start_with(&["--cluster-enabled", "yes"]);
    let redis = Redis::new(&server.url(), Duration::from_secs(2)).unwrap();
    let store = RedisLocation::new(
        Arc::new(Redis::new(&server.url(), Duration::from_secs(2)).unwrap()),
        "sipreg",
    );
    let slot = |key: &str| -> i64 {
        redis
            .run(|c| redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(c))
            .unwrap()
    };
    let mut slots = std::collections::HashSet::new();
    for i in 0..200 {
        let aor = format!("user{i}@example.com");
        let s = slot(&store.key(&aor));
        assert_eq!(s, slot(&store.due_key(&aor)), "{aor}");
        slots.insert(s);
    }
    assert!(
        slots.len() > 32,
        "AORs spread over many slots: {}",
        slots.len()
    );
}

/// Bindings written in the layout before buckets (`<prefix>:aor:<aor>`, one
/// `<prefix>:due`) move into their bucket when the store migrates (at start): found by a
/// lookup, expired once, the old keys gone; a second migration moves nothing.
#[test]
fn bindings_of_the_layout_before_buckets_are_moved() {
    let server = RedisServer::start();
    let redis = Arc::new(Redis::new(&server.url(), Duration::from_secs(2)).unwrap());
    let store = RedisLocation::new(redis.clone(), "old");
    let now = crate::support::now_ms();
    register(&store, "sip:a@192.0.2.1", "call-a", 1, now);
    // Move the AOR back into the old layout by hand.
    let (key, due) = (store.key("shared@x"), store.due_key("shared@x"));
    let members: Vec<(String, u64)> = redis
        .run(|c| {
            redis::cmd("ZRANGE")
                .arg(&due)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query(c)
        })
        .unwrap();
    assert_eq!(members.len(), 1);
    redis
        .run(|c| {
            redis::pipe()
                .cmd("RENAME")
                .arg(&key)
                .arg("old:aor:shared@x")
                .cmd("HDEL")
                .arg("old:aor:shared@x")
                .arg("_v")
                .cmd("DEL")
                .arg(&due)
                .cmd("ZADD")
                .arg("old:due")
                .arg(members[0].1)
                .arg(&members[0].0)
                .query::<()>(c)
        })
        .unwrap();
    assert!(
        store.lookup("shared@x", now).unwrap().is_empty(),
        "not seen before"
    );
    assert_eq!(store.migrate().unwrap(), 1);
    let found = store.lookup("shared@x", now).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(&*found[0].contact, "sip:a@192.0.2.1");
    let exists = |k: &str| -> bool { redis.run(|c| redis::cmd("EXISTS").arg(k).query(c)).unwrap() };
    assert!(
        !exists("old:aor:shared@x") && !exists("old:due"),
        "the old keys are gone"
    );
    assert_eq!(store.migrate().unwrap(), 0, "nothing left to move");
    // the moved binding is updated and expires like any other
    let events = register(&store, "sip:a@192.0.2.1", "call-a", 2, now + 1);
    assert!(matches!(events[..], [Event::Refreshed(_)]), "{events:?}");
    assert_eq!(store.expire_due(now + 700_000).len(), 1);
}
