//! A sipreg plugin to start from: it refuses REGISTERs from one configured user agent
//! and lets everything else through to the next hook.
//!
//! ```toml
//! [[hooks]]
//! type = "plugin"
//! path = "plugin-template/target/release/libplugin_template.so"
//! config = { blocked_user_agent = "BadPhone" }
//! ```

use plugin_api::{Decision, Host, Level, Plugin, Reply, Request, declare_plugin};

/// The plugin: its configuration and the host's services.
#[derive(Debug)]
pub struct Template {
    host: Host,
    blocked: String,
}

impl Plugin for Template {
    const NAME: &'static str = "template";

    fn create(config: &str, host: Host) -> Result<Self, String> {
        // `config` is the TOML text of the hook's `config` table; use a TOML parser for
        // anything richer than this one key.
        let blocked = config
            .lines()
            .find_map(|l| l.trim().strip_prefix("blocked_user_agent = "))
            .map(|v| v.trim_matches('"').to_owned())
            .ok_or("config: blocked_user_agent is missing")?;
        host.log(Level::Info, "template ready", &[("blocked", &blocked)]);
        Ok(Template { host, blocked })
    }

    fn on_request(&self, req: &Request<'_>) -> Decision {
        if req.method() == "REGISTER"
            && req
                .header("User-Agent")
                .is_some_and(|ua| ua.contains(&self.blocked))
        {
            self.host.log(
                Level::Info,
                "Registration refused",
                &[("Reason", "Blocked user agent")],
            );
            return Decision::Respond(Reply::with_reason(403, "User agent not allowed"));
        }
        Decision::Continue
    }
}

declare_plugin!(Template);
