//! What the local runtime keeps of a step on disk, beside its working root,
//! so that the step can be attached to again by a restarted atc:
//!
//! ```text
//! WORK/steps/HANDLE/record.json   what finishing the step needs (outputs, caches, ...)
//! WORK/steps/HANDLE/stdin         the process's standard input
//! WORK/steps/HANDLE/stdout        its standard output, as written
//! WORK/steps/HANDLE/stderr        its standard error (after the runtime's notices)
//! WORK/steps/HANDLE/process       the process group and when its leader started
//! WORK/steps/HANDLE/exit          the exit code, written by the supervising shell
//! WORK/steps/HANDLE/outcome.json  exit code and captured outputs, once finished
//! ```
//!
//! All functions here block.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::runtime::{CacheMount, OutputMount, ProcessSpec, Stdout, StepHandle, StepMetadata};

/// A step's directory and the files in it.
#[derive(Debug, Clone)]
pub struct StepFiles {
    pub handle: StepHandle,
    pub base: PathBuf,
}

/// What finishing (and `exec` into) a step needs, saved when it starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedStep {
    /// Whose step it is, for listings.
    pub metadata: StepMetadata,
    pub outputs: Vec<(String, String)>,
    pub caches: Vec<(String, String)>,
    /// Standard output is the step's result, not its log.
    pub capture_stdout: bool,
    /// The process's environment and working directory (relative to the
    /// root), for processes `exec`'d into the step.
    pub env: Vec<(String, String)>,
    pub dir: String,
    /// The host account it runs as, if not atc's.
    pub user: Option<String>,
}

impl SavedStep {
    pub fn new(
        metadata: StepMetadata,
        outputs: &[OutputMount],
        caches: &[CacheMount],
        process: &ProcessSpec,
        env: Vec<(String, String)>,
        user: Option<String>,
    ) -> SavedStep {
        SavedStep {
            metadata,
            outputs: outputs.iter().map(|o| (o.name.clone(), o.path.clone())).collect(),
            caches: caches.iter().map(|c| (c.key.clone(), c.path.clone())).collect(),
            capture_stdout: process.stdout == Stdout::Capture,
            env,
            dir: process.dir.clone(),
            user,
        }
    }

    pub fn outputs(&self) -> Vec<OutputMount> {
        self.outputs.iter().map(|(name, path)| OutputMount { name: name.clone(), path: path.clone() }).collect()
    }

    pub fn caches(&self) -> Vec<CacheMount> {
        self.caches.iter().map(|(key, path)| CacheMount { key: key.clone(), path: path.clone() }).collect()
    }
}

/// The process group running a step, identified beyond its id: after an
/// atc restart the id may belong to another process, which its start time
/// tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessGroup {
    pub pgid: i32,
    /// Clock ticks after boot when the leader started (`/proc/PID/stat`).
    pub started: u64,
}

/// What a finished step left: its exit code and its outputs' artifact ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishedStep {
    pub exit_code: i32,
    pub outputs: BTreeMap<String, String>,
}

impl StepFiles {
    pub fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    pub fn tmp(&self) -> PathBuf {
        self.base.join("tmp")
    }

    pub fn stdin(&self) -> PathBuf {
        self.base.join("stdin")
    }

    pub fn stdout(&self) -> PathBuf {
        self.base.join("stdout")
    }

    pub fn stderr(&self) -> PathBuf {
        self.base.join("stderr")
    }

    pub fn exit(&self) -> PathBuf {
        self.base.join("exit")
    }

    pub fn exists(&self) -> bool {
        self.base.is_dir()
    }

    pub fn save_record(&self, record: &SavedStep) -> io::Result<()> {
        write_atomically(&self.base.join("record.json"), &serde_json::to_vec(record)?)
    }

    pub fn record(&self) -> io::Result<SavedStep> {
        read_json(&self.base.join("record.json"))
    }

    pub fn save_process(&self, group: ProcessGroup) -> io::Result<()> {
        write_atomically(&self.base.join("process"), &serde_json::to_vec(&group)?)
    }

    /// `None` until the process was started.
    pub fn process(&self) -> io::Result<Option<ProcessGroup>> {
        optional(read_json(&self.base.join("process")))
    }

    /// The exit code, once the supervising shell wrote it (an empty or
    /// partial file is still being written).
    pub fn exit_code(&self) -> io::Result<Option<i32>> {
        match std::fs::read_to_string(self.exit()) {
            Ok(text) => Ok(text.trim().parse().ok()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    pub fn save_finished(&self, finished: &FinishedStep) -> io::Result<()> {
        write_atomically(&self.base.join("outcome.json"), &serde_json::to_vec(finished)?)
    }

    pub fn finished(&self) -> io::Result<Option<FinishedStep>> {
        optional(read_json(&self.base.join("outcome.json")))
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, path)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<T> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
}

fn optional<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}
