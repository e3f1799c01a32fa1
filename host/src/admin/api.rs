//! The JSON endpoints of the admin API (`docs/admin-api.md`).

use crate::core::Core;
use crate::history::{self, Entry, Query};
use crate::qualify::Reach;
use crate::store::Binding;
use axum::Json;
use axum::extract::{Path, Query as Params, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BinaryHeap;
use std::sync::Arc;

/// One binding as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Registration {
    pub alias: String,
    pub contact: String,
    pub source: String,
    pub transport: String,
    pub natted: bool,
    /// Seconds left.
    pub expires_in: u64,
    pub registration_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub q: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub path: Option<String>,
    pub call_id: String,
    pub cseq: u32,
    /// "OK (3 ms)", "UNREACHABLE" or "UNKNOWN" (not probed: `[qualify]` probes NATed
    /// bindings, or all with `interval`).
    pub reach: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rtt_ms: Option<u64>,
}

/// The answer of `GET /api/registrations`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Registrations {
    /// How many bindings matched (`registrations` holds at most `limit` of them).
    pub total: usize,
    pub maintenance: bool,
    pub registrations: Vec<Registration>,
}

/// The answer of `GET /api/history`.
#[derive(Debug, Serialize)]
pub struct HistoryPage {
    pub entries: Vec<Entry>,
    /// More entries matched than are listed: the limit cut the list, or the history
    /// dropped older ones (`[admin] history` keeps that many in all).
    pub truncated: bool,
}

/// The answer of `GET /api/health`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Health {
    /// "ok", or "degraded" when the store does not answer.
    pub status: String,
    pub maintenance: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bindings: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub store_error: Option<String>,
    pub uptime_s: u64,
    pub version: String,
}

/// An error answer: `{"error": "..."}` with a status.
#[derive(Debug)]
pub struct Failure(pub StatusCode, pub String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn store_failure(e: &crate::store::StoreError) -> Failure {
    Failure(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("location store unavailable: {e}"),
    )
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub core: Arc<Core>,
    pub started: std::time::Instant,
}

fn view(core: &Core, aor: &str, b: &Binding, now_ms: u64) -> Registration {
    let reach = core.reach(&b.registration_id);
    Registration {
        alias: aor.to_owned(),
        contact: b.contact.to_string(),
        source: b.source.to_string(),
        transport: b.transport.as_str().to_owned(),
        natted: b.natted,
        expires_in: b.expires_at_ms.saturating_sub(now_ms).div_ceil(1000),
        registration_id: b.registration_id.to_string(),
        q: b.q.map(crate::sip::contact::format_q),
        instance: b.instance.as_deref().map(str::to_owned),
        path: b.path.as_deref().map(str::to_owned),
        call_id: b.call_id.to_string(),
        cseq: b.cseq,
        rtt_ms: match reach {
            Reach::Reachable { rtt_ms } => Some(rtt_ms),
            _ => None,
        },
        reach: reach.to_string(),
    }
}

/// An AOR as an operator may type it (`sip:alice@Example.com`) as the store keys it
/// (`alice@example.com`).
pub fn normalize_aor(aor: &str) -> String {
    let bare = aor
        .strip_prefix("sip:")
        .or_else(|| aor.strip_prefix("sips:"))
        .unwrap_or(aor);
    match bare.rsplit_once('@') {
        Some((user, host)) => format!("{user}@{}", host.to_ascii_lowercase()),
        None => bare.to_ascii_lowercase(),
    }
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    /// Part of the alias (case-insensitive).
    pub alias: Option<String>,
    /// Part of the source address (`192.0.2.10`, `:5062`).
    pub source: Option<String>,
    /// `udp` or `tcp`.
    pub transport: Option<String>,
    pub limit: Option<usize>,
}

const DEFAULT_LIMIT: usize = 1000;

/// A binding of the listing, ordered by alias, then by the time it was last refreshed.
#[derive(Debug)]
struct Listed(String, Binding);

impl Listed {
    fn key(&self) -> (&str, u64) {
        (&self.0, self.1.refreshed_ms)
    }
}

impl PartialEq for Listed {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Listed {}

impl PartialOrd for Listed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Listed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// `GET /api/registrations`.
pub async fn list(
    State(ctx): State<Ctx>,
    Params(p): Params<ListParams>,
) -> Result<Json<Registrations>, Failure> {
    let transport = match p.transport.as_deref().map(str::to_ascii_lowercase) {
        None => None,
        Some(t) if t.is_empty() => None,
        Some(t) if crate::transport::Transport::parse(&t).is_some() => Some(t),
        Some(t) => {
            return Err(Failure(
                StatusCode::BAD_REQUEST,
                format!("transport must be udp, tcp, tls, ws or wss, not {t:?}"),
            ));
        }
    };
    let alias = p.alias.map(|a| a.to_ascii_lowercase());
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    let core = ctx.core.clone();
    // The walk may wait for Redis: off the runtime's threads.
    tokio::task::spawn_blocking(move || {
        let now = core.clock().now_ms();
        // The first `limit` by alias and refresh time, kept in a bounded heap: a listing of
        // a large store holds `limit` bindings, not all that match.
        let mut first: BinaryHeap<Listed> = BinaryHeap::new();
        let mut total = 0;
        let mut visit = |aor: &str, b: &Binding| {
            let ok = alias
                .as_deref()
                .is_none_or(|a| aor.to_ascii_lowercase().contains(a))
                && p.source
                    .as_deref()
                    .is_none_or(|s| b.source.to_string().contains(s))
                && transport
                    .as_deref()
                    .is_none_or(|t| b.transport.as_str() == t);
            if !ok {
                return;
            }
            total += 1;
            let later = |top: &Listed| (aor, b.refreshed_ms) >= top.key();
            if first.len() == limit && first.peek().is_none_or(later) {
                return;
            }
            first.push(Listed(aor.to_owned(), b.clone()));
            if first.len() > limit {
                first.pop();
            }
        };
        core.registrar()
            .location()
            .scan(now, &mut visit)
            .map_err(|e| store_failure(&e))?;
        let found = first.into_sorted_vec();
        Ok(Json(Registrations {
            total,
            maintenance: core.registrar().in_maintenance(),
            registrations: found
                .iter()
                .map(|Listed(aor, b)| view(&core, aor, b, now))
                .collect(),
        }))
    })
    .await
    .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// `GET /api/registrations/{aor}`: 404 when it has no binding.
pub async fn one(
    State(ctx): State<Ctx>,
    Path(aor): Path<String>,
) -> Result<Json<Registrations>, Failure> {
    let aor = normalize_aor(&aor);
    let core = ctx.core.clone();
    tokio::task::spawn_blocking(move || {
        let now = core.clock().now_ms();
        let bindings = core
            .registrar()
            .location()
            .lookup(&aor, now)
            .map_err(|e| store_failure(&e))?;
        if bindings.is_empty() {
            return Err(Failure(
                StatusCode::NOT_FOUND,
                format!("{aor} has no registration"),
            ));
        }
        Ok(Json(Registrations {
            total: bindings.len(),
            maintenance: core.registrar().in_maintenance(),
            registrations: bindings.iter().map(|b| view(&core, &aor, b, now)).collect(),
        }))
    })
    .await
    .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// `DELETE /api/registrations/{aor}`: removes every binding (404 when it had none),
/// answered once the removal is stored.
pub async fn remove(
    State(ctx): State<Ctx>,
    Path(aor): Path<String>,
) -> Result<Json<serde_json::Value>, Failure> {
    let aor = normalize_aor(&aor);
    let core = ctx.core.clone();
    tokio::task::spawn_blocking(move || {
        let gone = core
            .registrar()
            .remove_aor(&aor, core.clock().now_ms())
            .map_err(|e| store_failure(&e))?;
        if gone.is_empty() {
            return Err(Failure(
                StatusCode::NOT_FOUND,
                format!("{aor} has no registration"),
            ));
        }
        // Answered once the removal is stored (the embedded store's file).
        if !core.registrar().location().flush() {
            return Err(Failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the removal could not be stored".to_owned(),
            ));
        }
        Ok(Json(
            serde_json::json!({ "alias": aor, "removed": gone.len() }),
        ))
    })
    .await
    .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

#[derive(Debug, Deserialize)]
pub struct HistoryParams {
    pub alias: Option<String>,
    /// `added`, `refreshed`, `deleted` or `refused`.
    pub outcome: Option<String>,
    /// Only entries after this sequence number.
    pub after: Option<u64>,
    pub limit: Option<usize>,
}

/// `GET /api/history`: the newest matching entries, oldest first.
pub async fn history(
    State(ctx): State<Ctx>,
    Params(p): Params<HistoryParams>,
) -> Result<Json<HistoryPage>, Failure> {
    let outcome = match p.outcome.as_deref() {
        None | Some("") => None,
        Some("added") => Some(history::Outcome::Added),
        Some("refreshed") => Some(history::Outcome::Refreshed),
        Some("deleted") => Some(history::Outcome::Deleted),
        Some("refused") => Some(history::Outcome::Refused),
        Some(o) => {
            return Err(Failure(
                StatusCode::BAD_REQUEST,
                format!("outcome must be added, refreshed, deleted or refused, not {o:?}"),
            ));
        }
    };
    let alias = p
        .alias
        .as_deref()
        .filter(|a| !a.is_empty())
        .map(normalize_aor);
    let listing = ctx.core.registrar().history().query(&Query {
        alias: alias.as_deref(),
        outcome,
        after: p.after,
        limit: p.limit.unwrap_or(100),
    });
    Ok(Json(HistoryPage {
        entries: listing.entries,
        truncated: listing.truncated,
    }))
}

/// The body of `PUT /api/maintenance`, and its answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Maintenance {
    pub maintenance: bool,
}

/// `GET /api/maintenance`.
pub async fn maintenance(State(ctx): State<Ctx>) -> Json<Maintenance> {
    Json(Maintenance {
        maintenance: ctx.core.registrar().in_maintenance(),
    })
}

/// `PUT /api/maintenance`: `{"maintenance": true}` puts the registrar into maintenance.
pub async fn set_maintenance(
    State(ctx): State<Ctx>,
    Json(m): Json<Maintenance>,
) -> Json<Maintenance> {
    ctx.core.registrar().set_maintenance(m.maintenance);
    maintenance(State(ctx)).await
}

/// The answer of `POST /api/reload`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Reloaded {
    pub reloaded: Vec<String>,
    /// Scripts refused (the previous version keeps serving), with the error.
    pub failed: Vec<(String, String)>,
}

/// `POST /api/reload`: every script loaded afresh; 422 when one was refused (the body
/// lists both kinds).
pub async fn reload(State(ctx): State<Ctx>) -> Result<(StatusCode, Json<Reloaded>), Failure> {
    let core = ctx.core.clone();
    let results = tokio::task::spawn_blocking(move || core.registrar().chain().reload())
        .await
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut out = Reloaded {
        reloaded: Vec::new(),
        failed: Vec::new(),
    };
    for (name, r) in results {
        match r {
            Ok(()) => out.reloaded.push(name),
            Err(e) => out.failed.push((name, e)),
        }
    }
    let code = if out.failed.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((code, Json(out)))
}

/// `GET /api/health`: 200 when the store answers, else 503.
pub async fn health(State(ctx): State<Ctx>) -> (StatusCode, Json<Health>) {
    let core = ctx.core.clone();
    let count = tokio::task::spawn_blocking(move || core.registrar().location().count())
        .await
        .unwrap_or_else(|e| Err(crate::store::StoreError(e.to_string())));
    let (code, status, bindings, store_error) = match count {
        Ok(n) => (StatusCode::OK, "ok", Some(n), None),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, "degraded", None, Some(e.0)),
    };
    let health = Health {
        status: status.to_owned(),
        maintenance: ctx.core.registrar().in_maintenance(),
        bindings,
        store_error,
        uptime_s: ctx.started.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    (code, Json(health))
}
