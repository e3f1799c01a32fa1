//! The `sipreg` command: run the registrar, or check a configuration.

use clap::{Parser, Subcommand, ValueEnum};
use sipreg::app::{App, BuildError, Options};
use sipreg::config::{self, Config};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "sipreg", version, about = "A strict, scriptable SIP registrar")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registrar (without --config: UDP and TCP on 127.0.0.1:5060, open registration).
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Check a configuration file, and load every script it names, and exit.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Run one request offline through the hooks and the registrar (in-memory store) and
    /// print the decision trail and the reply.
    Try {
        #[arg(long)]
        config: PathBuf,
        /// A file holding the request (LF line ends are fine).
        #[arg(long)]
        request: PathBuf,
        #[arg(long, default_value = "192.0.2.10:5060")]
        source: std::net::SocketAddr,
        #[arg(long, value_enum, default_value = "udp")]
        transport: TryTransport,
    },
    /// Print the Lua API reference (docs/lua-api.md) and exit.
    LuaApi,
    /// Show the registrations of a running registrar (as `sip show peers`).
    Status {
        #[command(flatten)]
        admin: AdminArgs,
        /// Only aliases containing this.
        #[arg(long)]
        alias: Option<String>,
    },
    /// Show the registration history of a running registrar, oldest first.
    History {
        #[command(flatten)]
        admin: AdminArgs,
        /// Only this alias.
        #[arg(long)]
        alias: Option<String>,
        /// At most this many entries, the newest.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Put a running registrar into maintenance (new registrations get 503) or out of it.
    Maintenance {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(value_enum)]
        state: OnOff,
    },
    /// Reload the scripts of a running registrar (a refused one keeps its old version).
    Reload {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Make a certificate and key for the TLS and WSS listeners: `--self-signed` (the only
    /// kind so far), valid a year for the `--host` names, written to DIR/cert.pem and
    /// DIR/key.pem. Clients must be told to trust it.
    Cert {
        #[arg(long, required = true)]
        self_signed: bool,
        /// A host name or IP address the certificate is for (repeat for more).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Look at the embedded store's files (`check`: exit 1 if damaged), or keep what can
    /// be read of a damaged store (`recover`; with the registrar stopped).
    Store {
        #[arg(value_enum)]
        action: StoreAction,
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum StoreAction {
    Check,
    Recover,
}

/// Where the admin API is.
#[derive(clap::Args)]
struct AdminArgs {
    /// The admin API's URL [default: from --config, else http://127.0.0.1:5080].
    #[arg(long)]
    admin: Option<String>,
    /// Read the admin listener and token from this configuration.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The bearer token [default: from --config].
    #[arg(long, env = "SIPREG_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Clone, Copy, ValueEnum)]
enum TryTransport {
    Udp,
    Tcp,
    Tls,
    Ws,
    Wss,
}

fn load(path: Option<&PathBuf>) -> Result<Config, config::ConfigError> {
    match path {
        Some(p) => config::load_file(p),
        None => config::parse(config::DEFAULT_CONFIG, "<embedded default>"),
    }
}

/// The messages of an application that could not be built: the load errors of the hooks
/// (exit 2, as for a configuration error), or the store that could not be opened.
/// Loads `[tls]` as `run` would and prints what is wrong (naming file, line and key) and
/// what it warns of (a certificate past or near its end). False if it cannot serve.
fn check_tls(c: &Config) -> bool {
    let Some(tls) = &c.tls else {
        return true;
    };
    match sipreg::tls::ServerTls::load(tls, &c.base_dir) {
        Ok((_, warnings)) => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            true
        }
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            false
        }
    }
}

fn build_failed(e: BuildError) -> ExitCode {
    match e {
        BuildError::Hooks(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            ExitCode::from(2)
        }
        BuildError::Store(e) => {
            eprintln!("cannot open the location store: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// `sipreg store check|recover`: exit 1 for a damaged store (check) or one that could not
/// be recovered, 2 for a configuration that names no embedded store.
fn store_command(action: StoreAction, config: &std::path::Path) -> ExitCode {
    use sipreg::store::repair;
    let cfg = match load(Some(&config.to_path_buf())) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if cfg.store.kind != config::StoreKind::Embedded {
        eprintln!(
            "{}: [store] type is not \"embedded\": nothing to check or recover here",
            config.display()
        );
        return ExitCode::from(2);
    }
    let path = cfg.base_dir.join(&cfg.store.path);
    match action {
        StoreAction::Check => match repair::check(&path) {
            Ok(report) => {
                print!("{}", report.text());
                if report.clean() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        StoreAction::Recover => match repair::recover(&path) {
            Ok(done) => {
                print!("{}", done.text());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `sipreg try`: the trail (hook decisions and the registrar's log lines) on stdout as
/// it happens, then the reply.
fn try_request(
    config: &std::path::Path,
    request: &std::path::Path,
    source: std::net::SocketAddr,
    transport: TryTransport,
) -> ExitCode {
    let cfg = match load(Some(&config.to_path_buf())) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let bytes = match std::fs::read(request) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}: cannot read: {e}", request.display());
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "info,sipreg::trail=debug",
        ))
        .without_time()
        .with_ansi(false)
        .with_writer(std::io::stdout)
        .init();
    let transport = match transport {
        TryTransport::Udp => config::Transport::Udp,
        TryTransport::Tcp => config::Transport::Tcp,
        TryTransport::Tls => config::Transport::Tls,
        TryTransport::Ws => config::Transport::Ws,
        TryTransport::Wss => config::Transport::Wss,
    };
    match sipreg::trial::run(&cfg, &bytes, source, transport) {
        Ok((handled, out)) => {
            println!();
            if let Some(f) = &out.forward {
                println!(
                    "(forwarded over {} to {})",
                    f.to.transport.via_token(),
                    f.to.addr
                );
                print!("{}", String::from_utf8_lossy(&f.bytes));
            } else if out.reply.is_empty() {
                println!("(no reply: {handled:?})");
            } else {
                print!("{}", String::from_utf8_lossy(&out.reply));
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            ExitCode::from(2)
        }
    }
}

/// Runs one admin command against the API `args` name.
fn admin_command(
    args: &AdminArgs,
    run: impl FnOnce(&sipreg::admin::client::Client) -> Result<String, String>,
) -> ExitCode {
    let client = sipreg::admin::client::Client::locate(
        args.admin.as_deref(),
        args.config.as_deref(),
        args.token.clone(),
    );
    match client.and_then(|c| run(&c)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Status { admin, alias } => admin_command(&admin, |c| {
            c.registrations(alias.as_deref())
                .map(|r| sipreg::admin::client::status_table(&r))
        }),
        Command::History {
            admin,
            alias,
            limit,
        } => admin_command(&admin, |c| {
            c.history(alias.as_deref(), limit)
                .map(|h| sipreg::admin::client::history_table(&h))
        }),
        Command::Maintenance { admin, state } => admin_command(&admin, |c| {
            let on = c.set_maintenance(matches!(state, OnOff::On))?;
            Ok(format!(
                "maintenance {}\n",
                if on {
                    "on: new registrations get 503"
                } else {
                    "off"
                }
            ))
        }),
        Command::Reload { admin } => {
            let mut refused = false;
            let code = admin_command(&admin, |c| {
                let r = c.reload()?;
                let mut out = String::new();
                for name in &r.reloaded {
                    out.push_str(&format!("reloaded {name}\n"));
                }
                for (name, e) in &r.failed {
                    out.push_str(&format!(
                        "refused {name}: {e} (the previous version keeps serving)\n"
                    ));
                }
                if r.reloaded.is_empty() && r.failed.is_empty() {
                    out.push_str("no script to reload\n");
                }
                refused = !r.failed.is_empty();
                Ok(out)
            });
            if refused { ExitCode::from(3) } else { code }
        }
        Command::Try {
            config,
            request,
            source,
            transport,
        } => try_request(&config, &request, source, transport),
        Command::LuaApi => {
            print!("{}", sipreg::lua::api_markdown());
            ExitCode::SUCCESS
        }
        Command::Store { action, config } => store_command(action, &config),
        Command::Cert {
            self_signed: _,
            hosts,
            out,
        } => {
            let (cert, key) = (out.join("cert.pem"), out.join("key.pem"));
            match sipreg::tls::self_signed::write(&hosts, &cert, &key) {
                Ok(()) => {
                    println!(
                        "wrote {} and {} (self-signed for {}; valid 365 days)\n[tls]\ncert = \"{}\"\nkey = \"{}\"",
                        cert.display(),
                        key.display(),
                        hosts.join(", "),
                        cert.display(),
                        key.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { config } => match load(Some(&config)) {
            Ok(c) if !check_tls(&c) => ExitCode::from(2),
            Ok(c) => match App::build(&c, Options::offline()) {
                Ok(app) => {
                    println!(
                        "{}: ok ({} listen address(es), {} alias(es), {} script(s), {} plugin(s))",
                        config.display(),
                        c.server.listen.len(),
                        c.aliases.len(),
                        app.scripts.len(),
                        app.plugins
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => build_failed(e),
            },
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Run { config, log_format } => {
            let cfg = match load(config.as_ref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            init_logging(log_format);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let app = match App::build(&cfg, Options::server()) {
                Ok(app) => app,
                Err(e) => return build_failed(e),
            };
            runtime.block_on(async {
                let watcher = tokio::spawn(sipreg::lua::reload::watch(
                    app.scripts.clone(),
                    std::time::Duration::from_secs(1),
                ));
                let running = match sipreg::server::start(&cfg, app.core.clone()).await {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::FAILURE;
                    }
                };
                shutdown_signal().await;
                tracing::info!(target: "sipreg::server", "shutting down");
                watcher.abort();
                let grace = std::time::Duration::from_secs(cfg.server.shutdown_grace);
                let stopping = tokio::task::spawn_blocking(move || running.shutdown());
                let Ok(stopped) = tokio::time::timeout(grace, stopping).await else {
                    tracing::error!(target: "sipreg::server", grace_secs = grace.as_secs(), "not stopped within the grace period (a hook still running?); exiting now");
                    std::process::exit(1);
                };
                match stopped {
                    Ok(true) => {
                        tracing::info!(target: "sipreg::server", "stopped; the location store is flushed");
                        ExitCode::SUCCESS
                    }
                    _ => {
                        tracing::error!(target: "sipreg::server", "stopped; the location store could not store everything");
                        ExitCode::FAILURE
                    }
                }
            })
        }
    }
}
