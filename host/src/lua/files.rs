//! The file reads of a load: every state of one generation sees the same text of a
//! script, a `require`d module or a `sip.read_file` file, even if it changes meanwhile,
//! and the modification times they had are what the reload watcher compares.

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// The files a generation of states read, each read from disk once.
#[derive(Debug, Default)]
pub(crate) struct Files {
    read: Mutex<Vec<FileRead>>,
}

#[derive(Debug, Clone)]
struct FileRead {
    path: PathBuf,
    modified: Option<SystemTime>,
    text: Result<Arc<str>, String>,
}

/// When a file was last modified (`None`: missing or unreadable).
pub(crate) fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Files {
    /// The text of a file, from disk the first time in this generation.
    pub fn read(&self, path: &Path) -> Result<Arc<str>, String> {
        let mut read = self.read.lock();
        if let Some(f) = read.iter().find(|f| f.path == path) {
            return f.text.clone();
        }
        // The time first: a change after it is seen by the next poll.
        let modified = modified(path);
        let text = std::fs::read_to_string(path)
            .map(Arc::from)
            .map_err(|e| format!("{}: {e}", path.display()));
        read.push(FileRead {
            path: path.to_path_buf(),
            modified,
            text: text.clone(),
        });
        text
    }

    /// Every file read, with its modification time when read.
    pub fn stamps(&self) -> Vec<(PathBuf, Option<SystemTime>)> {
        self.read
            .lock()
            .iter()
            .map(|f| (f.path.clone(), f.modified))
            .collect()
    }
}

/// What `require` and `sip.read_file` need while a script loads (Lua app data).
#[derive(Debug)]
pub(crate) struct LoadCtx {
    pub files: Arc<Files>,
    pub scripts_dir: PathBuf,
    pub base_dir: PathBuf,
    /// The paths the script's `config` table names (every string value, resolved
    /// against the configuration's folder): the files outside the script's folder that
    /// `sip.read_file` may read.
    pub listed: Vec<PathBuf>,
}

/// `path` without `.` and `..` components (resolved as written, not on disk), then with
/// its links resolved when it exists: what a path names, for comparing.
fn resolved(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    std::fs::canonicalize(&out).unwrap_or(out)
}

impl LoadCtx {
    /// The context of a script at `script` (its folder may be read) loaded from the
    /// configuration folder `base_dir`, with its `config` table.
    pub fn new(files: Arc<Files>, script: &Path, base_dir: &Path, config: &toml::Table) -> LoadCtx {
        fn strings<'a>(v: &'a toml::Value, out: &mut Vec<&'a str>) {
            match v {
                toml::Value::String(s) => out.push(s),
                toml::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
                toml::Value::Table(t) => t.values().for_each(|v| strings(v, out)),
                _ => {}
            }
        }
        let mut named = Vec::new();
        config.values().for_each(|v| strings(v, &mut named));
        let scripts_dir = script
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        LoadCtx {
            files,
            listed: named.iter().map(|n| resolved(&base_dir.join(n))).collect(),
            scripts_dir,
            base_dir: base_dir.to_path_buf(),
        }
    }

    /// The file `sip.read_file(path)` reads: `path` from the configuration's folder, if
    /// it is in the script's folder or named in its config.
    ///
    /// # Errors
    /// A message for any other path (`/etc/passwd`, `../../etc/passwd`).
    pub fn readable(&self, path: &str) -> Result<PathBuf, String> {
        let full = self.base_dir.join(path);
        let target = resolved(&full);
        if target.starts_with(resolved(&self.scripts_dir)) || self.listed.contains(&target) {
            Ok(full)
        } else {
            Err(format!(
                "sip.read_file: {path} is neither in the script's folder nor named in its config"
            ))
        }
    }
}
