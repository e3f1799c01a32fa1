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
}
