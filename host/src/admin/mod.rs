//! The admin HTTP listener (`[admin]`): the JSON API (`api.rs`, `docs/admin-api.md`),
//! `/metrics` for Prometheus and the status page at `/`. It is a separate listener,
//! loopback by default; with `token` set every request but the page itself must carry
//! `Authorization: Bearer <token>` (the page asks for the token and sends it).

pub mod api;
pub mod client;
mod metrics;

pub use metrics::render as render_metrics;

use crate::config::Admin as Config;
use crate::core::Core;
use api::Ctx;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinSet;

/// The status page.
const PAGE: &str = include_str!("page.html");

/// Whether `request` carries the token (always, when none is configured).
fn authorized(token: Option<&str>, request: &Request) -> bool {
    let Some(token) = token else {
        return true;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    use subtle::ConstantTimeEq;
    given.len() == token.len() && bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}

async fn guard(State(token): State<Option<Arc<str>>>, request: Request, next: Next) -> Response {
    if authorized(token.as_deref(), &request) {
        next.run(request).await
    } else {
        tracing::info!(target: "sipreg::admin", path = %request.uri().path(), "admin request without the right token refused");
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(serde_json::json!({ "error": "a valid bearer token is required" })),
        )
            .into_response()
    }
}

/// The routes (without a listener: tests may serve them elsewhere).
pub fn router(config: &Config, core: Arc<Core>) -> Router {
    let ctx = Ctx {
        core,
        started: std::time::Instant::now(),
    };
    let token: Option<Arc<str>> = config.token.as_deref().map(Arc::from);
    let protected = Router::new()
        .route("/api/health", get(api::health))
        .route("/api/registrations", get(api::list))
        .route(
            "/api/registrations/{aor}",
            get(api::one).delete(api::remove),
        )
        .route("/api/history", get(api::history))
        .route(
            "/api/maintenance",
            get(api::maintenance).put(api::set_maintenance),
        )
        .route("/api/reload", axum::routing::post(api::reload))
        .route("/metrics", get(metrics::metrics))
        .route_layer(middleware::from_fn_with_state(token, guard))
        .with_state(ctx);
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .merge(protected)
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({ "error": "no such endpoint" })),
            )
        })
}

/// Binds the admin listener and serves it as a task of `tasks`; returns the bound address.
///
/// # Errors
/// The address cannot be bound; the error names it.
pub async fn start(
    config: &Config,
    core: Arc<Core>,
    tasks: &mut JoinSet<()>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen on {} (admin): {e}", config.listen),
            )
        })?;
    let addr = listener.local_addr()?;
    let app = router(config, core);
    tasks.spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(target: "sipreg::server", error = %e, "admin listener failed");
        }
    });
    tracing::info!(target: "sipreg::server", address = %addr, token = config.token.is_some(), "admin API listening");
    Ok(addr)
}
