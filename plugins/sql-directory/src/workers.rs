//! The threads that ask the database, each with a connection of its own, opened when first
//! needed and again after an error: lookups never run on sipreg's threads. A query that
//! fails on a connection opened earlier is tried once more on a new one (a restarted
//! server drops every connection it had).

use crate::db::{Connection, Location, Subscriber};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

/// What a lookup ends with.
pub type Found = Result<Option<Subscriber>, String>;

/// One lookup: a user (at a domain), and what to do with the answer.
pub struct Job {
    pub user: String,
    pub domain: Option<String>,
    pub then: Box<dyn FnOnce(Found) + Send>,
}

/// The queue into the workers.
#[derive(Debug)]
pub struct Workers {
    jobs: SyncSender<Job>,
}

impl Workers {
    /// `n` threads over the database at `at`, at most `queued` lookups waiting for them.
    pub fn start(n: usize, queued: usize, at: Location, table: String) -> Workers {
        let (tx, rx) = sync_channel::<Job>(queued);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..n {
            let (rx, at, table) = (rx.clone(), at.clone(), table.clone());
            std::thread::Builder::new()
                .name(format!("sql-directory-{i}"))
                .spawn(move || work(&rx, &at, &table))
                .expect("a thread starts");
        }
        Workers { jobs: tx }
    }

    /// Queues a lookup; gives it back when the queue is full.
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(j) | TrySendError::Disconnected(j) => j,
        })
    }
}

fn work(rx: &Mutex<Receiver<Job>>, at: &Location, table: &str) {
    let mut conn: Option<Connection> = None;
    loop {
        let job = match rx.lock() {
            Ok(rx) => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let found = lookup(&mut conn, at, table, &job.user, job.domain.as_deref());
        (job.then)(found);
    }
}

/// The query on `conn` (opened if need be); once more on a new connection if one opened
/// earlier fails.
pub fn lookup(
    conn: &mut Option<Connection>,
    at: &Location,
    table: &str,
    user: &str,
    domain: Option<&str>,
) -> Found {
    let reused = conn.is_some();
    for attempt in 0..2 {
        if conn.is_none() {
            *conn = Some(Connection::open(at)?);
        }
        let c = conn.as_mut().expect("opened above");
        match c.subscriber(table, user, domain) {
            Ok(found) => return Ok(found),
            Err(e) => {
                *conn = None;
                if !(reused && attempt == 0) {
                    return Err(e);
                }
            }
        }
    }
    Err("no connection".into())
}
