//! The work dir and a step's place in it:
//!
//! ```text
//! WORK/artifacts/ID/          one artifact (step outputs, uploads)
//! WORK/caches/SHA256(KEY)/    a cache between runs of a step
//! WORK/steps/HANDLE-RANDOM/root/  the step's working root
//! WORK/steps/HANDLE-RANDOM/tmp/   its TMPDIR
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

use super::fs::{chown_tree, copy_tree, join_relative, remove_tree, replace_dir};
use super::user::HostUser;
use crate::runtime::{Artifact, CacheMount, InputMount, OutputMount, RuntimeError};

#[derive(Debug, Clone)]
pub struct WorkDir {
    root: PathBuf,
}

impl WorkDir {
    /// Opens the work dir. Steps and uploads left by an earlier atc that
    /// stopped mid-way belong to nothing now and are removed.
    pub fn create(root: PathBuf) -> io::Result<Self> {
        for leftover in ["steps", "uploads"] {
            remove_tree(&root.join(leftover))?;
        }
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

/// A step's directories while it runs.
pub struct StepDirs {
    pub base: PathBuf,
    pub root: PathBuf,
    pub tmp: PathBuf,
}

/// Lays out a step: inputs copied in, caches moved in, output and working
/// directories created, everything handed to `user` when there is one.
pub fn prepare(
    work: &WorkDir,
    handle: &str,
    inputs: &[(InputMount, PathBuf)],
    caches: &[CacheMount],
    outputs: &[OutputMount],
    dir: &str,
    user: Option<&HostUser>,
) -> Result<StepDirs, RuntimeError> {
    let safe_handle: String = handle
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' })
        .take(100)
        .collect();
    let base = work.root.join("steps").join(format!("{safe_handle}-{}", random_id()));
    let dirs = StepDirs { root: base.join("root"), tmp: base.join("tmp"), base };
    let result = lay_out(work, &dirs, inputs, caches, outputs, dir, user);
    if result.is_err() {
        // Caches already moved in go back; nothing else is worth keeping.
        let _ = return_caches(work, &dirs, caches);
        let _ = remove_tree(&dirs.base);
    }
    result.map(|()| dirs)
}

fn lay_out(
    work: &WorkDir,
    dirs: &StepDirs,
    inputs: &[(InputMount, PathBuf)],
    caches: &[CacheMount],
    outputs: &[OutputMount],
    dir: &str,
    user: Option<&HostUser>,
) -> Result<(), RuntimeError> {
    std::fs::create_dir_all(&dirs.root)?;
    std::fs::create_dir_all(&dirs.tmp)?;
    for (input, source) in inputs {
        let target = join_relative(&dirs.root, &input.path).map_err(|err| bad_path("input", err))?;
        copy_tree(source, &target)?;
    }
    for cache in caches {
        let target = join_relative(&dirs.root, &cache.path).map_err(|err| bad_path("cache", err))?;
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
        let target = join_relative(&dirs.root, &output.path).map_err(|err| bad_path("output", err))?;
        std::fs::create_dir_all(target)?;
    }
    let working = join_relative(&dirs.root, dir).map_err(|err| bad_path("working directory", err))?;
    std::fs::create_dir_all(working)?;
    if let Some(user) = user {
        chown_tree(&dirs.base, user.uid, user.gid)?;
    }
    Ok(())
}

fn bad_path(what: &str, err: String) -> RuntimeError {
    RuntimeError::Setup(format!("{what}: {err}"))
}

/// After the process: caches go back to their keys, each output becomes an
/// artifact, and the step's directories are removed.
pub fn finish(
    work: &WorkDir,
    dirs: &StepDirs,
    caches: &[CacheMount],
    outputs: &[OutputMount],
) -> Result<Vec<(String, Artifact)>, RuntimeError> {
    let result = return_caches(work, dirs, caches).and_then(|()| capture_outputs(work, dirs, outputs));
    let _ = remove_tree(&dirs.base);
    result
}

fn return_caches(work: &WorkDir, dirs: &StepDirs, caches: &[CacheMount]) -> Result<(), RuntimeError> {
    for cache in caches {
        let Ok(inside) = join_relative(&dirs.root, &cache.path) else { continue };
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
    dirs: &StepDirs,
    outputs: &[OutputMount],
) -> Result<Vec<(String, Artifact)>, RuntimeError> {
    let mut ordered: Vec<(&OutputMount, PathBuf)> = outputs
        .iter()
        .map(|output| {
            join_relative(&dirs.root, &output.path).map(|path| (output, path)).map_err(|err| bad_path("output", err))
        })
        .collect::<Result<_, _>>()?;
    ordered.sort_by_key(|(_, path)| std::cmp::Reverse(path.components().count()));
    let mut captured = Vec::new();
    for (output, path) in ordered {
        let (artifact, artifact_path) = work.new_artifact_path();
        if path.is_dir() && path != dirs.root {
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
