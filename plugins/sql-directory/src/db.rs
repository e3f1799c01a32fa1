//! One connection to the directory's database, PostgreSQL or SQLite, and the one query the
//! plugin asks it: the secrets of one subscriber. Parameters are bound, never written into
//! the query: a user name of `' OR '1'='1` is just a user nobody has.

use std::path::Path;

/// A subscriber's secrets, as Kamailio keeps them (an empty column is no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub password: String,
    /// MD5(username:realm:password).
    pub ha1: String,
    /// MD5(username@domain:realm:password).
    pub ha1b: String,
}

/// Where the directory lives.
#[derive(Debug, Clone)]
pub enum Location {
    Postgres(String),
    Sqlite(std::path::PathBuf),
}

impl Location {
    /// From the configured URL; a relative SQLite path is under `dir`.
    pub fn parse(url: &str, dir: &Path) -> Result<Location, String> {
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            return Ok(Location::Sqlite(dir.join(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            url.parse::<postgres::Config>()
                .map_err(|e| format!("url: {e}"))?;
            return Ok(Location::Postgres(url.to_owned()));
        }
        Err("url: postgresql://... or sqlite:PATH".into())
    }

    /// The address to name in logs (no password).
    pub fn shown(&self) -> String {
        match self {
            Location::Sqlite(p) => format!("sqlite:{}", p.display()),
            Location::Postgres(url) => match url.parse::<postgres::Config>() {
                Ok(c) => {
                    let host = c
                        .get_hosts()
                        .first()
                        .map(|h| match h {
                            postgres::config::Host::Tcp(t) => t.clone(),
                            postgres::config::Host::Unix(p) => p.display().to_string(),
                        })
                        .unwrap_or_default();
                    let port = c.get_ports().first().copied().unwrap_or(5432);
                    format!("postgresql://{host}:{port}")
                }
                Err(_) => "postgresql".into(),
            },
        }
    }
}

/// An open connection.
pub enum Connection {
    Postgres(postgres::Client),
    Sqlite(rusqlite::Connection),
}

impl Connection {
    /// Connects (PostgreSQL: within 2 s).
    pub fn open(at: &Location) -> Result<Connection, String> {
        match at {
            Location::Postgres(url) => {
                let mut config: postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
                if config.get_connect_timeout().is_none() {
                    config.connect_timeout(std::time::Duration::from_secs(2));
                }
                config
                    .connect(postgres::NoTls)
                    .map(Connection::Postgres)
                    .map_err(|e| format!("{e}"))
            }
            Location::Sqlite(path) => {
                let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let c = rusqlite::Connection::open_with_flags(path, flags)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                c.busy_timeout(std::time::Duration::from_secs(1))
                    .map_err(|e| format!("{e}"))?;
                Ok(Connection::Sqlite(c))
            }
        }
    }

    /// The secrets of `username` (at `domain`, unless `None`).
    pub fn subscriber(
        &mut self,
        table: &str,
        username: &str,
        domain: Option<&str>,
    ) -> Result<Option<Subscriber>, String> {
        let cols = "coalesce(password, ''), coalesce(ha1, ''), coalesce(ha1b, '')";
        match self {
            Connection::Postgres(c) => {
                let rows = match domain {
                    Some(d) => c.query(
                        &format!(
                            "SELECT {cols} FROM {table} WHERE username = $1 AND domain = $2 LIMIT 1"
                        ),
                        &[&username, &d],
                    ),
                    None => c.query(
                        &format!("SELECT {cols} FROM {table} WHERE username = $1 LIMIT 1"),
                        &[&username],
                    ),
                }
                .map_err(|e| format!("{e}"))?;
                Ok(rows.first().map(|r| Subscriber {
                    password: r.get(0),
                    ha1: r.get(1),
                    ha1b: r.get(2),
                }))
            }
            Connection::Sqlite(c) => {
                let read = |r: &rusqlite::Row<'_>| {
                    Ok(Subscriber {
                        password: r.get(0)?,
                        ha1: r.get(1)?,
                        ha1b: r.get(2)?,
                    })
                };
                let found = match domain {
                    Some(d) => c
                        .prepare_cached(&format!(
                            "SELECT {cols} FROM {table} WHERE username = ?1 AND domain = ?2 LIMIT 1"
                        ))
                        .and_then(|mut s| s.query_row((username, d), read)),
                    None => c
                        .prepare_cached(&format!(
                            "SELECT {cols} FROM {table} WHERE username = ?1 LIMIT 1"
                        ))
                        .and_then(|mut s| s.query_row([username], read)),
                };
                match found {
                    Ok(s) => Ok(Some(s)),
                    Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
                    Err(e) => Err(format!("{e}")),
                }
            }
        }
    }

    /// Up to `n` subscribers with both a password and an HA1, as (username, domain,
    /// password, ha1): what the load checks the realm with.
    pub fn sample(&mut self, table: &str, n: u32) -> Result<Vec<[String; 4]>, String> {
        let q = format!(
            "SELECT username, coalesce(domain, ''), password, ha1 FROM {table} \
             WHERE coalesce(password, '') <> '' AND coalesce(ha1, '') <> '' LIMIT {n}"
        );
        match self {
            Connection::Postgres(c) => Ok(c
                .query(&q, &[])
                .map_err(|e| format!("{e}"))?
                .iter()
                .map(|r| [r.get(0), r.get(1), r.get(2), r.get(3)])
                .collect()),
            Connection::Sqlite(c) => {
                let mut s = c.prepare(&q).map_err(|e| format!("{e}"))?;
                let rows = s
                    .query_map([], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]))
                    .map_err(|e| format!("{e}"))?;
                rows.collect::<Result<_, _>>().map_err(|e| format!("{e}"))
            }
        }
    }
}
