//! `sip.http`: HTTP and HTTPS requests from a script's request hooks, to the destinations
//! its `[[hooks]]` entry lists in `allow_http` and nowhere else (a redirect outside them is
//! not followed). The call reads as plain sequential code: underneath, the hook's Lua
//! thread yields while the request is on the wire (mlua's async functions), and the
//! request it serves is parked, not a thread. Answers are read up to a size; connections
//! are pooled, at most `http_max_connections` to one destination at once; HTTPS through
//! rustls, with the system's anchors and `[tls] ca`. A service that fails (a timeout, a
//! refused connection, a 5xx, an answer that does not read) raises an outage
//! ([`Unreachable`]), recorded in the server's [`Services`].

use super::Phase;
use super::context::CallData;
use crate::hooks::Hook;
use crate::services::{Service, Services};
use mlua::{Lua, Table, Value};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The longest a request waits when the script does not say (`timeout_ms`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// The largest answer body read; a longer one fails the call.
const MAX_BODY: usize = 1 << 20;
/// Redirects followed (each to an allowed destination).
const MAX_REDIRECTS: usize = 5;

/// What a script may reach, and the client it reaches it with (Lua app data).
#[derive(Debug)]
pub(crate) struct Access {
    allow: Vec<reqwest::Url>,
    client: reqwest::Client,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Connections to one destination (scheme, host, port) at once.
    per_destination: usize,
    services: Arc<Services>,
}

/// The error of a call whose service failed (a timeout, a refused connection, a 5xx, an
/// answer that does not read): the hook's error is then an outage, answered as the
/// entry's `on_outage` says.
#[derive(Debug, Clone)]
pub(crate) struct Unreachable {
    pub service: String,
    pub message: String,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Unreachable {}

/// The service a failed call's error names, if it is an outage.
pub(crate) fn outage_of(e: &mlua::Error) -> Option<&Unreachable> {
    match e {
        mlua::Error::ExternalError(x) => x.downcast_ref::<Unreachable>(),
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            outage_of(cause)
        }
        _ => None,
    }
}

/// Records the failure of `service` and raises it as an outage.
fn unreachable(service: &Service, took: Option<std::time::Duration>, why: String) -> mlua::Error {
    service.failed(took, &why);
    mlua::Error::external(Unreachable {
        service: service.name().to_owned(),
        message: format!("sip.http: {why}"),
    })
}

/// A destination's name: `scheme://host:port`.
fn destination(url: &reqwest::Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// Whether `url` lies under one of the allowed prefixes: the same scheme, host and port,
/// and a path that starts with the prefix's.
fn allowed(allow: &[reqwest::Url], url: &reqwest::Url) -> bool {
    allow.iter().any(|p| {
        p.scheme() == url.scheme()
            && p.host_str() == url.host_str()
            && p.port_or_known_default() == url.port_or_known_default()
            && url.path().starts_with(p.path())
    })
}

/// The prefixes of `allow_http`, read once.
fn prefixes(allow: &[String]) -> Result<Vec<reqwest::Url>, String> {
    allow
        .iter()
        .map(|text| match reqwest::Url::parse(text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(u),
            _ => Err(format!(
                "allow_http: `{text}` is not an http:// or https:// URL"
            )),
        })
        .collect()
}

impl Access {
    /// The access of a script whose entry allows `allow`, over `tls` (the system's
    /// anchors and `[tls] ca`).
    ///
    /// # Errors
    /// A prefix that is not an http(s) URL, or a client that could not be built.
    pub fn new(
        allow: Vec<String>,
        tls: rustls::ClientConfig,
        per_destination: usize,
        services: Arc<Services>,
    ) -> Result<Access, String> {
        let per_destination = per_destination.max(1);
        let allow = prefixes(&allow)?;
        let list = allow.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if allowed(&list, attempt.url()) {
                attempt.follow()
            } else {
                let to = attempt.url().to_string();
                attempt.error(format!(
                    "a redirect to {to}, which allow_http does not list"
                ))
            }
        });
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(policy)
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(per_destination)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Access {
            allow,
            client,
            slots: Mutex::new(HashMap::new()),
            per_destination,
            services,
        })
    }

    fn slot(&self, key: &str) -> Arc<Semaphore> {
        if let Some(s) = self.slots.lock().get(key) {
            return s.clone();
        }
        self.slots
            .lock()
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_destination)))
            .clone()
    }
}

/// One request as the script asked for it.
struct Asked {
    method: reqwest::Method,
    url: reqwest::Url,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout: Duration,
    /// A 5xx is returned to the script rather than raised as an outage.
    accept_5xx: bool,
}

fn fail(what: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::runtime(format!("sip.http: {what}"))
}

fn asked(t: &Table) -> mlua::Result<Asked> {
    let url: String = t
        .get::<Option<String>>("url")?
        .ok_or_else(|| fail("the request has no url"))?;
    let url = reqwest::Url::parse(&url).map_err(|e| fail(format!("{url}: {e}")))?;
    let method: String = t.get::<Option<String>>("method")?.unwrap_or("GET".into());
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| fail(format!("{method} is not an HTTP method")))?;
    let mut headers = Vec::new();
    if let Some(h) = t.get::<Option<Table>>("headers")? {
        for pair in h.pairs::<String, String>() {
            headers.push(pair?);
        }
    }
    let body = t
        .get::<Option<mlua::String>>("body")?
        .map(|b| b.as_bytes().to_vec());
    let timeout = t
        .get::<Option<u64>>("timeout_ms")?
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
    let accept_5xx = t.get::<Option<bool>>("accept_5xx")?.unwrap_or(false);
    Ok(Asked {
        method,
        url,
        headers,
        body,
        timeout,
        accept_5xx,
    })
}

/// What came back.
struct Answered {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn fetch(access: &Access, key: &str, a: Asked) -> Result<Answered, String> {
    let slot = access.slot(key);
    let _permit = tokio::time::timeout(a.timeout, slot.acquire_owned())
        .await
        .map_err(|_| "no connection to it free in time".to_owned())?
        .map_err(|e| e.to_string())?;
    let mut req = access.client.request(a.method, a.url).timeout(a.timeout);
    for (k, v) in a.headers {
        req = req.header(k, v);
    }
    if let Some(b) = a.body {
        req = req.body(b);
    }
    let mut resp = req.send().await.map_err(describe)?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(describe)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("the answer is longer than {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answered {
        status,
        headers,
        body,
    })
}

/// A client error as a line: what failed, and why underneath.
fn describe(e: reqwest::Error) -> String {
    use std::error::Error;
    let what = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else if e.is_redirect() {
        "redirect refused".to_owned()
    } else {
        "failed".to_owned()
    };
    let mut why = String::new();
    let mut cause = e.source();
    while let Some(c) = cause {
        why = c.to_string();
        cause = c.source();
    }
    if why.is_empty() {
        what
    } else {
        format!("{what}: {why}")
    }
}

const WRAPPERS: &str = r#"
local request, in_coroutine, json, fail = ...
local error, pairs, setmetatable, type = error, pairs, setmetatable, type
local function copy(options)
  local t = {}
  if type(options) == "table" then
    for k, v in pairs(options) do
      t[k] = v
    end
  end
  return t
end
local http = {}
function http.request(t)
  if in_coroutine() then
    error("sip.http: cannot be called inside a coroutine of the script", 2)
  end
  if type(t) ~= "table" then
    error("sip.http.request: expects a table {method, url, headers, body, timeout_ms}", 2)
  end
  local answer, service = request(t)
  local methods = {}
  function methods.json(self)
    return json(service, self.body)
  end
  function methods.outage(self, why)
    fail(service, why)
  end
  return setmetatable(answer, {__index = methods})
end
function http.get(url, options)
  local t = copy(options)
  t.method, t.url = "GET", url
  return http.request(t)
end
function http.post(url, body, options)
  local t = copy(options)
  t.method, t.url, t.body = "POST", url, body
  return http.request(t)
end
return http
"#;

/// The `sip.http` functions by name (`request`, `get`, `post`): Lua wrappers around the
/// one function that waits.
pub(crate) fn functions(lua: &Lua, in_coroutine: &mlua::Function) -> mlua::Result<Table> {
    let json = lua.create_function(|lua, (service, body): (String, mlua::String)| {
        let decoded =
            super::json::decode(lua, mlua::MultiValue::from_vec(vec![Value::String(body)]));
        match decoded {
            Ok(v) => Ok(v),
            Err(e)
                if lua
                    .app_data_ref::<super::limits::Meter>()
                    .is_some_and(|m| m.tripped().is_some()) =>
            {
                Err(e)
            }
            Err(e) => Err(outage(
                lua,
                &service,
                format!(
                    "{service}: its answer is not JSON ({})",
                    super::error::describe(&e)
                ),
            )),
        }
    })?;
    let fail = lua.create_function(
        |lua, (service, why): (String, Option<String>)| -> mlua::Result<()> {
            let why = why.unwrap_or_else(|| "its answer does not serve".into());
            Err(outage(lua, &service, format!("{service}: {why}")))
        },
    )?;
    lua.load(WRAPPERS)
        .set_name("=sipreg http")
        .call((request(lua)?, in_coroutine, json, fail))
}

/// The outage of `service` a script found in an answer (`answer:json()`, `answer:outage()`).
fn outage(lua: &Lua, service: &str, why: String) -> mlua::Error {
    match lua.app_data_ref::<Arc<Access>>() {
        Some(access) => unreachable(&access.services.service(service), None, why),
        None => fail(why),
    }
}

/// The function that waits: the request of table `t`, made off the hook's thread.
fn request(lua: &Lua) -> mlua::Result<mlua::Function> {
    lua.create_async_function(|lua: Lua, t: Table| async move {
        let in_request = lua
            .app_data_ref::<CallData>()
            .is_some_and(|c| matches!(c.phase, Phase::In(h) if h != Hook::Expire));
        if !in_request {
            return Err(fail(
                "may be called from on_request, authenticate, bind and route only",
            ));
        }
        let access = lua.app_data_ref::<Arc<Access>>().map(|a| Arc::clone(&a));
        let Some(access) = access else {
            return Err(fail(
                "this script's [[hooks]] entry allows no destination (allow_http)",
            ));
        };
        let a = asked(&t)?;
        if !allowed(&access.allow, &a.url) {
            return Err(fail(format!("{} is not listed in allow_http", a.url)));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(fail("no runtime to wait on here"));
        }
        let url = a.url.to_string();
        let key = destination(&a.url);
        let service = access.services.service(&key);
        let accept_5xx = a.accept_5xx;
        let started = std::time::Instant::now();
        let answered = fetch(&access, &key, a).await;
        let took = started.elapsed();
        let answered =
            answered.map_err(|e| unreachable(&service, Some(took), format!("{url}: {e}")))?;
        if answered.status >= 500 {
            let e = unreachable(
                &service,
                Some(took),
                format!("{url}: answered {}", answered.status),
            );
            if !accept_5xx {
                return Err(e);
            }
        } else {
            service.answered(took);
            if let Some(mut c) = lua.app_data_mut::<CallData>() {
                c.answered.push(service.clone());
            }
        }
        let out = lua.create_table()?;
        out.raw_set("status", answered.status)?;
        let headers = lua.create_table()?;
        for (k, v) in answered.headers {
            headers.raw_set(k, v)?;
        }
        out.raw_set("headers", headers)?;
        out.raw_set("body", lua.create_string(&answered.body)?)?;
        Ok((Value::Table(out), key))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap()
    }

    #[test]
    fn a_url_is_allowed_under_its_prefix_only() {
        let allow = prefixes(&["http://auth.example.com/users/".into()]).unwrap();
        assert!(allowed(
            &allow,
            &url("http://AUTH.example.com:80/users/alice")
        ));
        assert!(!allowed(&allow, &url("http://auth.example.com/admin")));
        assert!(!allowed(
            &allow,
            &url("https://auth.example.com/users/alice")
        ));
        assert!(!allowed(
            &allow,
            &url("http://auth.example.com:8080/users/alice")
        ));
        let bare = prefixes(&["http://auth.example.com".into()]).unwrap();
        assert!(!allowed(&bare, &url("http://auth.example.com.evil.net/")));
        assert!(prefixes(&["ftp://x/".into()]).is_err());
        assert!(prefixes(&["auth.example.com".into()]).is_err());
    }
}
