//! Reloading scripts on a running server: a poll of the files each script read (the
//! script, the modules it required, the files it read with `sip.read_file`), and SIGHUP.

use super::LuaHooks;
use std::sync::Arc;
use std::time::Duration;

async fn reload(script: &Arc<LuaHooks>) {
    let s = script.clone();
    // Loading runs Lua for a while: off the runtime's worker threads.
    let _ = tokio::task::spawn_blocking(move || s.reload()).await;
}

/// Reloads a script when one of its files changes (checked every `every`), and every
/// script on SIGHUP. Runs until the task is dropped.
pub async fn watch(scripts: Vec<Arc<LuaHooks>>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    #[cfg(unix)]
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(target: "sipreg::hooks", error = %e, "no SIGHUP handler; reload on file change only");
            None
        }
    };
    loop {
        #[cfg(unix)]
        let all = tokio::select! {
            _ = tick.tick() => false,
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
        };
        #[cfg(not(unix))]
        let all = {
            tick.tick().await;
            false
        };
        if all {
            tracing::info!(target: "sipreg::hooks", scripts = scripts.len(), "SIGHUP: reloading every script");
        }
        for s in &scripts {
            if all || s.changed() {
                reload(s).await;
            }
        }
    }
}
