//! What one message's handling produced, put on the queue of the connection it came on
//! (every connection-oriented transport): the reply now, or once the store has it, or
//! after the guard's pause (by a task of its own, so that the next requests on the
//! connection need not wait), or once a parked request's hooks are done (a task of its own
//! too); what it forwards goes to the sender.

use super::Sender;
use crate::core::{Output, Parked};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The connection's writer is gone.
#[derive(Debug)]
pub(super) struct Closed;

/// Queues `out`'s reply for the connection whose writer reads `tx`, and sends its forward.
///
/// # Errors
/// [`Closed`] when the connection's writer is gone.
pub(super) async fn deliver(
    out: &mut Output,
    tx: &mpsc::Sender<Vec<u8>>,
    sender: &Arc<Sender>,
) -> Result<(), Closed> {
    if let Some(Parked(rest)) = out.parked.take() {
        let (tx, sender) = (tx.clone(), sender.clone());
        tokio::spawn(async move {
            let mut out = rest.await;
            let _ = send(&mut out, &tx, &sender).await;
        });
        return Ok(());
    }
    send(out, tx, sender).await
}

/// [`deliver`] for an output that is not parked.
async fn send(out: &mut Output, tx: &mpsc::Sender<Vec<u8>>, sender: &Sender) -> Result<(), Closed> {
    if let Some(d) = out.durable.take() {
        let (tx, runtime) = (tx.clone(), tokio::runtime::Handle::current());
        let (reply, fallback) = (
            std::mem::take(&mut out.reply),
            std::mem::take(&mut out.fallback),
        );
        d.then(move |stored| {
            runtime.spawn(async move {
                let _ = tx.send(if stored { reply } else { fallback }).await;
            });
        });
    } else if let Some(pause) = out.delay
        && !out.reply.is_empty()
    {
        let (tx, reply) = (tx.clone(), std::mem::take(&mut out.reply));
        tokio::spawn(async move {
            tokio::time::sleep(pause).await;
            let _ = tx.send(reply).await;
        });
    } else if !out.reply.is_empty() {
        tx.send(std::mem::take(&mut out.reply))
            .await
            .map_err(|_| Closed)?;
    }
    if let Some(f) = out.forward.take() {
        sender.send(f);
    }
    Ok(())
}
