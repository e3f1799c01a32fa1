//! The admin API's client, for the CLI (`sipreg status`, `history`, `maintenance`,
//! `reload`), and the tables it prints.

use super::api::{Maintenance, Registrations, Reloaded};
use crate::history::Entry;
use serde::de::DeserializeOwned;
use std::fmt::Write;
use std::time::Duration;

/// A client of one admin listener.
#[derive(Debug)]
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

/// The history answer as the client reads it.
#[derive(Debug, serde::Deserialize)]
pub struct HistoryPage {
    pub entries: Vec<Entry>,
    /// More entries matched than are listed.
    #[serde(default)]
    pub truncated: bool,
}

impl Client {
    /// A client of `base` (`http://127.0.0.1:5080`).
    pub fn new(base: &str, token: Option<String>) -> Client {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .into();
        Client {
            base: base.trim_end_matches('/').to_owned(),
            token,
            agent,
        }
    }

    /// The client the CLI's options name: `--admin URL` first, else the `[admin]` of
    /// `--config` (an unspecified listen address means this host), else
    /// `http://127.0.0.1:5080`; the token from `--token` (or `SIPREG_ADMIN_TOKEN`), else
    /// from the configuration.
    ///
    /// # Errors
    /// The configuration cannot be read, or has no `[admin]`.
    pub fn locate(
        admin: Option<&str>,
        config: Option<&std::path::Path>,
        token: Option<String>,
    ) -> Result<Client, String> {
        let from_config = match config {
            Some(path) => {
                let c = crate::config::load_file(path).map_err(|e| e.to_string())?;
                let Some(a) = c.admin else {
                    return Err(format!(
                        "{}: no [admin] table: the admin API is off",
                        path.display()
                    ));
                };
                Some(a)
            }
            None => None,
        };
        let base = match (admin, &from_config) {
            (Some(url), _) => url.to_owned(),
            (None, Some(a)) => {
                let mut addr = a.listen;
                if addr.ip().is_unspecified() {
                    addr.set_ip(match addr {
                        std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                        std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                    });
                }
                format!("http://{addr}")
            }
            (None, None) => "http://127.0.0.1:5080".to_owned(),
        };
        let token = token.or_else(|| from_config.and_then(|a| a.token));
        Ok(Client::new(&base, token))
    }

    fn with_token<B>(&self, r: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(t) => r.header("Authorization", format!("Bearer {t}")),
            None => r,
        }
    }

    /// Reads an answer: its JSON when 2xx, else the API's `error`.
    fn read<T: DeserializeOwned>(
        &self,
        answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        ok_also: &[u16],
    ) -> Result<T, String> {
        let mut r = answer.map_err(|e| {
            format!(
                "cannot reach the admin API at {} (is sipreg running, with an [admin] table?): {e}",
                self.base
            )
        })?;
        let status = r.status().as_u16();
        if (200..300).contains(&status) || ok_also.contains(&status) {
            return r
                .body_mut()
                .read_json::<T>()
                .map_err(|e| format!("{}: unreadable answer: {e}", self.base));
        }
        let body: serde_json::Value = r.body_mut().read_json().unwrap_or_default();
        let why = body["error"].as_str().unwrap_or("no reason given");
        Err(format!("{}: {status}: {why}", self.base))
    }

    /// `GET /api/registrations`, with filters.
    ///
    /// # Errors
    /// The API could not be reached or refused; the message says which.
    pub fn registrations(&self, alias: Option<&str>) -> Result<Registrations, String> {
        let mut req = self
            .agent
            .get(format!("{}/api/registrations", self.base))
            .query("limit", "100000");
        if let Some(a) = alias {
            req = req.query("alias", a);
        }
        self.read(self.with_token(req).call(), &[])
    }

    /// `GET /api/history`.
    ///
    /// # Errors
    /// As [`Client::registrations`].
    pub fn history(&self, alias: Option<&str>, limit: usize) -> Result<HistoryPage, String> {
        let mut req = self
            .agent
            .get(format!("{}/api/history", self.base))
            .query("limit", limit.to_string());
        if let Some(a) = alias {
            req = req.query("alias", a);
        }
        self.read(self.with_token(req).call(), &[])
    }

    /// `PUT /api/maintenance`; returns the state now.
    ///
    /// # Errors
    /// As [`Client::registrations`].
    pub fn set_maintenance(&self, on: bool) -> Result<bool, String> {
        let req = self.agent.put(format!("{}/api/maintenance", self.base));
        let m: Maintenance = self.read(
            self.with_token(req)
                .send_json(Maintenance { maintenance: on }),
            &[],
        )?;
        Ok(m.maintenance)
    }

    /// `POST /api/reload`.
    ///
    /// # Errors
    /// As [`Client::registrations`] (a refused script is in the answer, not an error).
    pub fn reload(&self) -> Result<Reloaded, String> {
        let req = self.agent.post(format!("{}/api/reload", self.base));
        self.read(self.with_token(req).send_empty(), &[422])
    }
}

/// Rows as aligned columns, the first the header.
fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..n)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == n {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The `sipreg status` table, as Asterisk's `sip show peers`: one line a binding.
pub fn status_table(r: &Registrations) -> String {
    let mut rows = vec![
        [
            "Alias", "Contact", "Source", "Proto", "Natted", "Expires", "Status",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for b in &r.registrations {
        rows.push(vec![
            b.alias.clone(),
            b.contact.clone(),
            b.source.clone(),
            b.transport.to_ascii_uppercase(),
            if b.natted { "Yes" } else { "No" }.to_owned(),
            format!("{}s", b.expires_in),
            b.reach.clone(),
        ]);
    }
    let mut aliases: Vec<&str> = r.registrations.iter().map(|b| b.alias.as_str()).collect();
    aliases.dedup();
    let mut out = columns(&rows);
    let _ = writeln!(
        out,
        "{} registration(s) of {} alias(es){}; maintenance {}",
        r.total,
        aliases.len(),
        if r.total > r.registrations.len() {
            format!(" ({} shown)", r.registrations.len())
        } else {
            String::new()
        },
        if r.maintenance { "ON" } else { "off" }
    );
    out
}

/// A time as `2026-11-21 10:00:01.123` (UTC).
pub fn utc(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]"
    );
    t.format(&format).unwrap_or_default()
}

/// The `sipreg history` table, oldest first, and a line when the list was cut.
pub fn history_table(page: &HistoryPage) -> String {
    let entries = &page.entries;
    let mut rows = vec![
        [
            "Time (UTC)",
            "Event",
            "Alias",
            "Source",
            "Proto",
            "Code",
            "Reason",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for e in entries {
        rows.push(vec![
            utc(e.time_ms),
            e.outcome.as_str().to_owned(),
            e.alias.to_string(),
            e.source.to_string(),
            e.transport.via_token().to_owned(),
            e.code.map(|c| c.to_string()).unwrap_or_default(),
            e.reason.to_string(),
        ]);
    }
    let mut out = columns(&rows);
    let _ = writeln!(
        out,
        "{} entr{}",
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" }
    );
    if page.truncated {
        out.push_str(
            "(more entries matched: raise --limit, or older ones were dropped: [admin] history)\n",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_to_the_millisecond() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000");
        assert_eq!(utc(1_795_000_000_123), "2026-11-18 11:06:40.123");
    }

    #[test]
    fn columns_align_on_the_widest_cell() {
        let rows = vec![
            vec!["A".to_owned(), "B".to_owned()],
            vec!["long".to_owned(), "x".to_owned()],
        ];
        assert_eq!(columns(&rows), "A     B\nlong  x\n");
    }
}
