//! One loaded Lua state: the sandbox, the `sip` table, the policy script run as a module,
//! and its hook functions; and `require`, which reads through the generation's
//! [`Files`].

use super::Phase;
use super::api;
use super::context::{CallData, ScriptName};
use super::convert;
use super::error::{LoadError, describe};
use super::files::{Files, LoadCtx};
use super::functions;
use super::limits::{Limits, Meter};
use super::sandbox;
use crate::hooks::Hook;
use crate::store::Stores;
use mlua::{Function, Lua, Table, Value};
use std::path::PathBuf;
use std::sync::Arc;

/// A script's load budget and time limit, in multiples of a call's.
const LOAD_BUDGET_FACTOR: u32 = 100;

/// What a script is loaded from.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    /// The script as configured, for logs and errors.
    pub name: Arc<str>,
    /// The script resolved against the configuration's folder.
    pub path: PathBuf,
    /// The configuration's folder: relative paths of `sip.read_file` start there.
    pub base_dir: PathBuf,
    pub config: toml::Table,
    pub memory: usize,
    pub budget: u64,
    /// The wall-clock time one hook call may take.
    pub time: std::time::Duration,
    pub shared: Stores,
    /// What `sip.http` may reach (none without `allow_http`): one client for every state
    /// and reload of the script.
    pub http: Option<Arc<super::http::Access>>,
    /// `sip.cache`, shared by every state of the script.
    pub cache: Arc<super::cache::Cache>,
    /// What a request gets when a service `sip.http` reaches fails, and its Retry-After.
    pub on_outage: (crate::config::OnOutage, u32),
}

/// A loaded state.
#[derive(Debug)]
pub(crate) struct State {
    pub lua: Lua,
    /// The module's functions, in the order of [`Hook::ALL`].
    pub fns: [Option<Function>; 5],
    /// The callers of `callers.lua`, in the same order.
    pub callers: [Function; 5],
    /// Which build of its pool slot this is: a call that waited resumes only in the
    /// state it began in.
    pub generation: u64,
}

static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

const CALLERS: &str = include_str!("callers.lua");
const DECISIONS: &str = include_str!("decisions.lua");

fn valid_module_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

/// `require(name)`: a Lua module `a.b` is the file `a/b.lua` under the script's folder,
/// loaded only while the script loads.
fn require(lua: &Lua, name: String) -> mlua::Result<Value> {
    let phase = lua.app_data_ref::<CallData>().map(|c| c.phase);
    if phase != Some(Phase::Load) {
        return Err(mlua::Error::runtime(
            "require: modules are loaded with the script; move the require to the top of the script",
        ));
    }
    if !valid_module_name(&name) {
        return Err(mlua::Error::runtime(format!(
            "require: \"{name}\" is not a module name (letters, digits, _ and dots)"
        )));
    }
    let loaded: Table = lua.named_registry_value("sipreg.loaded")?;
    if let Some(v) = loaded.raw_get::<Option<Value>>(name.as_str())? {
        return Ok(v);
    }
    let (path, text) = {
        let ctx = lua
            .app_data_ref::<LoadCtx>()
            .ok_or_else(|| mlua::Error::runtime("require: no script is loading"))?;
        let path = ctx
            .scripts_dir
            .join(format!("{}.lua", name.replace('.', "/")));
        let text = ctx.files.read(&path);
        (path, text)
    };
    let text =
        text.map_err(|e| mlua::Error::runtime(format!("require: module '{name}' not found: {e}")))?;
    let value: Value = lua
        .load(&*text)
        .set_name(format!("@{}", path.display()))
        .set_mode(mlua::ChunkMode::Text)
        .call(name.as_str())?;
    let value = if value.is_nil() {
        Value::Boolean(true)
    } else {
        value
    };
    loaded.raw_set(name.as_str(), &value)?;
    Ok(value)
}

/// Loads a script into a new state.
///
/// # Errors
/// A [`LoadError`] naming the file and line where Lua knows them.
pub(crate) fn build(setup: &Setup, files: &Arc<Files>) -> Result<State, LoadError> {
    let fail = |e: mlua::Error| LoadError(describe(&e));
    let lua = sandbox::base_state(Limits {
        memory: setup.memory,
        budget: setup.budget,
        time: setup.time,
    })
    .map_err(fail)?;
    lua.set_app_data(CallData::default());
    lua.set_app_data(setup.shared.clone());
    lua.set_app_data(ScriptName(setup.name.clone()));
    if let Some(http) = &setup.http {
        lua.set_app_data(http.clone());
    }
    lua.set_app_data(setup.cache.clone());
    lua.set_app_data(LoadCtx::new(
        files.clone(),
        &setup.path,
        &setup.base_dir,
        &setup.config,
    ));
    let run = || -> mlua::Result<([Option<Function>; 5], [Function; 5])> {
        lua.set_named_registry_value("sipreg.loaded", lua.create_table()?)?;
        let require = lua.create_function(require)?;
        let print = functions::print_function(&lua)?;
        let (freeze, in_coroutine) = sandbox::run_prelude(&lua, require, print)?;
        let (decisions, flat): (Table, Function) =
            lua.load(DECISIONS).set_name("=sipreg decisions").call(())?;
        api::install(&lua, &freeze, &in_coroutine, &decisions)?;
        let table: Table = lua.load(CALLERS).set_name("=sipreg callers").call(flat)?;
        let mut callers = Vec::with_capacity(5);
        for h in Hook::ALL {
            callers.push(table.get::<Function>(h.name())?);
        }
        let callers: [Function; 5] = callers
            .try_into()
            .map_err(|_| mlua::Error::runtime("callers.lua lacks a hook"))?;
        let config = convert::toml_table(&lua, &setup.config)?;
        lua.set_named_registry_value("sipreg.config", config)?;
        if let Some(m) = lua.app_data_ref::<Meter>() {
            m.start(
                setup.budget.saturating_mul(u64::from(LOAD_BUDGET_FACTOR)),
                LOAD_BUDGET_FACTOR,
            );
        }
        let text = files.read(&setup.path).map_err(mlua::Error::runtime)?;
        let module: Value = lua
            .load(&*text)
            .set_name(format!("@{}", setup.name))
            .set_mode(mlua::ChunkMode::Text)
            .call(())?;
        let Value::Table(module) = module else {
            return Err(mlua::Error::runtime(format!(
                "{}: the script must return a table of hook functions (on_request, authenticate, bind, expire, route), not {}",
                setup.name,
                module.type_name()
            )));
        };
        let mut fns: [Option<Function>; 5] = Default::default();
        for pair in module.pairs::<Value, Value>() {
            let (k, v) = pair?;
            let key = k.to_string().unwrap_or_else(|_| k.type_name().to_owned());
            let Some(i) = Hook::from_name(&key).map(Hook::index) else {
                return Err(mlua::Error::runtime(format!(
                    "{}: the returned table has `{key}`, which is not a hook (on_request, authenticate, bind, expire, route)",
                    setup.name
                )));
            };
            match v {
                Value::Function(f) => fns[i] = Some(f),
                other => {
                    return Err(mlua::Error::runtime(format!(
                        "{}: `{key}` must be a function, not {}",
                        setup.name,
                        other.type_name()
                    )));
                }
            }
        }
        freeze.call::<()>((lua.globals(), "the global table"))?;
        Ok((fns, callers))
    };
    let (fns, callers) = run().map_err(fail)?;
    let generation = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(State {
        lua,
        fns,
        callers,
        generation,
    })
}
