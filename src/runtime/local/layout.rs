//! The work dir and a step's place in it:
//!
//! ```text
//! WORK/artifacts/ID/          one artifact (step outputs, uploads)
//! WORK/caches/SHA256(KEY)/    a cache between runs of a step
//! WORK/steps/HANDLE/root/     the step's working root
//! WORK/steps/HANDLE/tmp/      its TMPDIR
//! WORK/steps/HANDLE/...       its process's files (`step_files.rs`)
//! WORK/uploads/               uploads being unpacked
//! ```
//!
//! Everything moves by rename within one filesystem: a cache is moved into
//! the step and back, an output is moved out as a new artifact. Inputs are
//! copied (copy-on-write where possible) so a step's writes never reach them.
//! All functions here block.

use std::io;
use std::path::{Path, PathBuf};

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::fs::{PathLeavesBase, chown_tree, copy_tree, join_relative, remove_tree, replace_dir};
use super::step_files::StepFiles;
use super::user::HostUser;
use crate::runtime::{Artifact, CacheMount, InputMount, OutputMount, RuntimeError, StepHandle};

#[derive(Debug, Clone)]
pub struct WorkDir {
    root: PathBuf,
}

impl WorkDir {
    /// Opens the work dir. Uploads left by an earlier atc that stopped
    /// mid-way belong to nothing now and are removed; its steps stay, to be
    /// attached to again or stopped by the engine.
    pub fn create(root: PathBuf) -> io::Result<Self> {
        remove_tree(&root.join("uploads"))?;
        for sub in ["artifacts", "caches", "steps", "uploads"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        Ok(WorkDir { root })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn new_artifact_path(&self) -> (Artifact, PathBuf) {
        let id = random_id();
        let path = self.root.join("artifacts").join(&id);
        (Artifact { id }, path)
    }

    /// The directory of an existing artifact. Ids come from callers (and
    /// from them, users), so only ids this runtime could have made pass.
    pub fn artifact_path(&self, artifact: &Artifact) -> Result<PathBuf, RuntimeError> {
        let id = &artifact.id;
        if id.is_empty() || !id.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(RuntimeError::Setup(format!("'{id}' is not an artifact of the local runtime")));
        }
        let path = self.root.join("artifacts").join(id);
        if !path.is_dir() {
            return Err(RuntimeError::Setup(format!("artifact {id} does not exist (it may have been released)")));
        }
        Ok(path)
    }

    pub fn count_artifacts(&self) -> u64 {
        std::fs::read_dir(self.root.join("artifacts")).map(|entries| entries.count() as u64).unwrap_or(0)
    }

    pub fn upload_path(&self) -> PathBuf {
        self.root.join("uploads").join(random_id())
    }

    /// Where the step `handle` lives (whether or not it exists).
    pub fn step(&self, handle: &StepHandle) -> StepFiles {
        StepFiles { handle: handle.clone(), base: self.root.join("steps").join(handle.as_str()) }
    }

    /// The handles of the steps in the work dir.
    pub fn steps(&self) -> io::Result<Vec<StepHandle>> {
        let mut handles = Vec::new();
        for entry in std::fs::read_dir(self.root.join("steps"))? {
            let name = entry?.file_name();
            // Only names this runtime made are steps; anything else is not ours to touch.
            if let Some(handle) = name.to_str().and_then(|name| StepHandle::parse(name).ok()) {
                handles.push(handle);
            }
        }
        handles.sort();
        Ok(handles)
    }

    /// Deletes the cache stored under `key`, if it is here.
    pub fn remove_cache(&self, key: &str) -> io::Result<()> {
        remove_tree(&self.cache_path(key))
    }

    fn cache_path(&self, key: &str) -> PathBuf {
        let digest = Sha256::digest(key.as_bytes());
        let name: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        self.root.join("caches").join(name)
    }
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Lays out a step: its directory, inputs copied in, caches moved in,
/// output and working directories created, everything handed to `user`
/// when there is one. A step that exists already is not laid out again.
pub fn prepare(
    work: &WorkDir,
    files: &StepFiles,
    inputs: &[(InputMount, PathBuf)],
    caches: &[CacheMount],
    outputs: &[OutputMount],
    dir: &str,
    user: Option<&HostUser>,
) -> Result<(), RuntimeError> {
    match std::fs::create_dir(&files.base) {
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            return Err(RuntimeError::AlreadyStarted(files.handle.clone()));
        }
        other => other?,
    }
    let result = lay_out(work, files, inputs, caches, outputs, dir, user);
    if result.is_err() {
        // Caches already moved in go back; nothing else is worth keeping.
        let _ = return_caches(work, files, caches);
        let _ = remove_tree(&files.base);
    }
    result
}

fn lay_out(
    work: &WorkDir,
    files: &StepFiles,
    inputs: &[(InputMount, PathBuf)],
    caches: &[CacheMount],
    outputs: &[OutputMount],
    dir: &str,
    user: Option<&HostUser>,
) -> Result<(), RuntimeError> {
    let root = files.root();
    std::fs::create_dir_all(&root)?;
    std::fs::create_dir_all(files.tmp())?;
    for (input, source) in inputs {
        let target = join_relative(&root, &input.path).map_err(|err| bad_path("input", err))?;
        copy_tree(source, &target)?;
    }
    for cache in caches {
        let target = join_relative(&root, &cache.path).map_err(|err| bad_path("cache", err))?;
        let stored = work.cache_path(&cache.key);
        if stored.is_dir() {
            replace_dir(&stored, &target)?;
        } else {
            // A cache mounts over whatever an input put there, empty the first time.
            remove_tree(&target)?;
            std::fs::create_dir_all(&target)?;
        }
    }
    for output in outputs {
        let target = join_relative(&root, &output.path).map_err(|err| bad_path("output", err))?;
        std::fs::create_dir_all(target)?;
    }
    let working = join_relative(&root, dir).map_err(|err| bad_path("working directory", err))?;
    std::fs::create_dir_all(working)?;
    if let Some(user) = user {
        chown_tree(&files.base, user.uid, user.gid)?;
    }
    Ok(())
}

fn bad_path(what: &str, err: PathLeavesBase) -> RuntimeError {
    RuntimeError::Setup(format!("{what}: {err}"))
}

/// After the process: caches go back to their keys and each output
/// becomes an artifact. The step's directory stays until it is removed.
pub fn capture(
    work: &WorkDir,
    files: &StepFiles,
    caches: &[CacheMount],
    outputs: &[OutputMount],
) -> Result<Vec<(String, Artifact)>, RuntimeError> {
    return_caches(work, files, caches)?;
    capture_outputs(work, files, outputs)
}

/// Removes a step, returning its caches first if it never got to.
pub fn remove(work: &WorkDir, files: &StepFiles, caches: &[CacheMount]) -> Result<(), RuntimeError> {
    return_caches(work, files, caches)?;
    remove_tree(&files.base)?;
    Ok(())
}

fn return_caches(work: &WorkDir, files: &StepFiles, caches: &[CacheMount]) -> Result<(), RuntimeError> {
    for cache in caches {
        let Ok(inside) = join_relative(&files.root(), &cache.path) else { continue };
        if inside.is_dir() {
            replace_dir(&inside, &work.cache_path(&cache.key))?;
        }
    }
    Ok(())
}

/// Deepest outputs first: an output nested in another is its own artifact
/// and not part of the outer one, as with separately mounted volumes.
fn capture_outputs(
    work: &WorkDir,
    files: &StepFiles,
    outputs: &[OutputMount],
) -> Result<Vec<(String, Artifact)>, RuntimeError> {
    let root = files.root();
    let mut ordered: Vec<(&OutputMount, PathBuf)> = outputs
        .iter()
        .map(|output| {
            join_relative(&root, &output.path).map(|path| (output, path)).map_err(|err| bad_path("output", err))
        })
        .collect::<Result<_, _>>()?;
    ordered.sort_by_key(|(_, path)| std::cmp::Reverse(path.components().count()));
    let mut captured = Vec::new();
    for (output, path) in ordered {
        let (artifact, artifact_path) = work.new_artifact_path();
        if path.is_dir() && path != root {
            std::fs::rename(&path, &artifact_path)?;
        } else if path.is_dir() {
            copy_tree(&path, &artifact_path)?;
        } else {
            // The step removed its output directory: an empty output, as a
            // mounted volume would have been.
            std::fs::create_dir_all(&artifact_path)?;
        }
        captured.push((output.name.clone(), artifact));
    }
    Ok(captured)
}
