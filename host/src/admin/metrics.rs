//! `GET /metrics`: every family in the Prometheus text format.

use super::api::Ctx;
use crate::metrics::Text;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::atomic::Ordering;

/// The families, written from the core's counters (the store is asked for its count).
pub fn render(core: &crate::core::Core) -> String {
    let mut out = Text::default();
    let registrar = core.registrar();
    out.family(
        "sipreg_registrations",
        "Bindings in the location store (expired ones not yet removed included)",
        "gauge",
    );
    let count = registrar.location().count();
    if let Ok(n) = &count {
        out.sample("sipreg_registrations", &[], *n as u64);
    }
    out.family(
        "sipreg_store_up",
        "1 when the location store answers",
        "gauge",
    );
    out.sample("sipreg_store_up", &[], u64::from(count.is_ok()));
    out.family(
        "sipreg_maintenance",
        "1 while new registrations are refused (maintenance mode)",
        "gauge",
    );
    out.sample(
        "sipreg_maintenance",
        &[],
        u64::from(registrar.in_maintenance()),
    );
    registrar.metrics().write(&mut out);
    registrar.chain().write_metrics(&mut out);
    out.family(
        "sipreg_qualify_rtt_seconds",
        "Round trip of the OPTIONS probes devices answered",
        "histogram",
    );
    out.histogram("sipreg_qualify_rtt_seconds", &[], &core.qualify().rtt);
    out.family(
        "sipreg_messages_dropped_total",
        "Messages that could not be answered (unparsable without a readable Via)",
        "counter",
    );
    out.sample(
        "sipreg_messages_dropped_total",
        &[],
        core.counters.dropped.load(Ordering::Relaxed),
    );
    out.family(
        "sipreg_tcp_connections_refused_total",
        "TCP connections refused at accept (tcp_max_connections, tcp_max_per_source)",
        "counter",
    );
    out.sample(
        "sipreg_tcp_connections_refused_total",
        &[],
        core.counters.connections_refused.load(Ordering::Relaxed),
    );
    out.family(
        "sipreg_connections_open",
        "Connections open (flows), by transport",
        "gauge",
    );
    for t in crate::transport::Transport::ALL
        .into_iter()
        .filter(|t| t.is_connection())
    {
        let n = core.flows().count(t) as u64;
        out.sample("sipreg_connections_open", &[("transport", t.as_str())], n);
    }
    let (c, parking) = (&core.counters, core.parking());
    out.family(
        "sipreg_requests_waiting",
        "Requests parked now while their hooks wait (an HTTP or SQL lookup)",
        "gauge",
    );
    out.sample("sipreg_requests_waiting", &[], parking.waiting() as u64);
    for (name, help, value) in [
        (
            "sipreg_tls_handshakes_failed_total",
            "TLS handshakes that failed or timed out (a client certificate that did not verify among them)",
            &c.tls_handshakes_failed,
        ),
        (
            "sipreg_websocket_upgrades_failed_total",
            "WebSocket upgrades refused (no sip subprotocol, an Origin not allowed), failed or timed out",
            &c.ws_upgrades_failed,
        ),
        (
            "sipreg_stun_binding_requests_total",
            "STUN Binding requests answered on the UDP SIP port (RFC 5626 keep-alives)",
            &c.stun_answered,
        ),
        (
            "sipreg_requests_parked_total",
            "Requests parked while their hooks waited",
            &parking.parked,
        ),
        (
            "sipreg_requests_wait_refused_total",
            "Requests refused with 503 because max_waiting requests were parked",
            &parking.refused,
        ),
        (
            "sipreg_retransmissions_absorbed_total",
            "Retransmissions of parked requests absorbed or answered again (RFC 3261 17.2.2)",
            &parking.absorbed,
        ),
    ] {
        out.family(name, help, "counter");
        out.sample(name, &[], value.load(Ordering::Relaxed));
    }
    out.family(
        "sipreg_history_entries_total",
        "Entries recorded in the registration history",
        "counter",
    );
    out.sample(
        "sipreg_history_entries_total",
        &[],
        registrar.history().recorded(),
    );
    out.0
}

/// `GET /metrics`.
pub async fn metrics(State(ctx): State<Ctx>) -> impl IntoResponse {
    let core = ctx.core.clone();
    // The count may wait for Redis: off the runtime's threads.
    let text = tokio::task::spawn_blocking(move || render(&core))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}
