//! `fill-store PATH COUNT`: writes COUNT bindings (one AOR each, `user<n>@127.0.0.1`,
//! expiring in an hour) into the embedded store at PATH through the store's own update
//! path (group commit), then reopens the file and prints how long loading it took.

use sipreg::config::Transport;
use sipreg::store::{Change, Update, embedded};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(count)) = (args.get(1), args.get(2).and_then(|c| c.parse::<u32>().ok()))
    else {
        eprintln!("usage: fill-store PATH COUNT");
        std::process::exit(2);
    };
    let path = std::path::Path::new(path);
    let opened = embedded::open(path, std::time::Duration::ZERO).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1);
    });
    let location = opened.location;
    let now_ms = sipreg::clock::Clock::system().now_ms();
    let started = Instant::now();
    let mut last = None;
    for i in 0..count {
        let aor = format!("user{i}@127.0.0.1");
        let contact = format!("<sip:user{i}@127.0.0.1:{}>", 10_000 + i % 50_000);
        let call_id = format!("fill-{i}");
        let u = Update {
            call_id: &call_id,
            cseq: 1,
            branch: u64::from(i),
            source: "127.0.0.1:5060".parse().unwrap(),
            transport: Transport::Udp,
            path: None,
            max_contacts: 10,
            evict: sipreg::config::Evict::Oldest,
            now_ms,
            remove_all: false,
            changes: vec![Change {
                contact: &contact,
                key: &contact,
                expires: 3600,
                q: None,
                instance: None,
                reg_id: None,
                natted: false,
                registration_id: uuid::Uuid::new_v4(),
            }],
        };
        match location.update(&aor, &u) {
            Ok(applied) => last = applied.durable,
            Err(e) => {
                eprintln!("{aor}: {e:?}");
                std::process::exit(1);
            }
        }
    }
    if let Some(d) = last
        && !d.wait()
    {
        eprintln!("the last commit failed");
        std::process::exit(1);
    }
    let written = started.elapsed();
    drop(location); // the committer finishes and closes the file
    let started = Instant::now();
    let again = embedded::open(path, std::time::Duration::ZERO).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1);
    });
    println!(
        "wrote {count} bindings in {:.1} s; loaded {} bindings in {:.2} s",
        written.as_secs_f64(),
        again.bindings,
        started.elapsed().as_secs_f64()
    );
}
