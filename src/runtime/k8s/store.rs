//! Artifacts on the artifact claim, handled by exec'ing shell commands into
//! the helper pod that mounts it: imports (checked and unpacked here first,
//! by the local runtime's unpacker), exports, single files, the outputs of
//! an exited step, and release.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use opentelemetry::Context;
use tokio::sync::mpsc;

use super::exec::{self, Ended, Stdin};
use super::pod::MAIN;
use super::scripts::sh;
use crate::runtime::local::artifacts::{blocking, spool};
use crate::runtime::local::unpack::unpack;
use crate::runtime::{
    Artifact, ExecOutput, ImageMetadata, MAX_READ_FILE_BYTES, OutputMount, OutputStream, RuntimeError, TarGzStream,
    UploadLimits,
};

const IMPORT: &str = r#"set -e
a=/store/artifacts/$1
mkdir -p /store/artifacts
rm -rf "$a.new"; mkdir "$a.new"
head -c "$2" | tar -xf - --no-same-owner -C "$a.new"
mv "$a.new" "$a"
"#;

const EXPORT: &str = r#"cd "/store/artifacts/$1" && tar -czf - ."#;

/// Exit codes: 3 outside the artifact, 4 missing, 5 not a regular file, 6 too large.
const READ: &str = r#"base=/store/artifacts/$1
[ -d "$base" ] || { echo "no such artifact" >&2; exit 4; }
base=$(realpath "$base")
target=$(realpath -m -- "$base/$2") || exit 4
case "$target" in "$base"/*) ;; *) exit 3 ;; esac
[ -e "$target" ] || exit 4
[ -f "$target" ] || exit 5
[ "$(stat -c %s "$target")" -le "$3" ] || exit 6
cat "$target"
"#;

/// `$1` the step's handle, then (artifact id, path) pairs. Copies each
/// output once (an artifact that exists was captured by an earlier attach)
/// and prints `exit CODE` or `not-found PROGRAM`.
const CAPTURE: &str = r#"set -e
io=/store/steps/$1/io; root=/store/steps/$1/root; shift
[ -e "$io/exit" ] || { echo "the step has no exit code" >&2; exit 3; }
while [ $# -gt 0 ]; do
  a=/store/artifacts/$1
  if [ ! -d "$a" ]; then
    rm -rf "$a.new"; mkdir -p "$a.new"
    if [ -d "$root/$2" ]; then cp -a "$root/$2/." "$a.new/"; fi
    mv "$a.new" "$a"
  fi
  shift 2
done
if [ -e "$io/not-found" ]; then printf 'not-found '; cat "$io/not-found"; else printf 'exit '; cat "$io/exit"; fi
"#;

/// Prints an image artifact's `metadata.json` (nothing without one).
/// Exit codes: 4 no such artifact, 3 no `rootfs/` in it.
const IMAGE: &str = r#"a=/store/artifacts/$1
[ -d "$a" ] || exit 4
[ -d "$a/rootfs" ] || exit 3
if [ -f "$a/metadata.json" ]; then head -c "$2" "$a/metadata.json"; fi
"#;

const REMOVE: &str = r#"for path; do rm -rf "/store/$path"; done"#;

/// How a step's process ended, as its files on the claim say.
pub enum Exit {
    Code(i32),
    NotFound(String),
}

#[derive(Clone)]
pub struct ArtifactStore {
    pub pods: Api<Pod>,
    pub helper: String,
    /// Where imports are unpacked and checked before they are sent.
    pub scratch: PathBuf,
}

impl ArtifactStore {
    async fn sh(
        &self,
        script: &str,
        args: Vec<String>,
        stdin: Stdin,
    ) -> Result<(Ended, Vec<u8>, Vec<u8>), RuntimeError> {
        exec::collect(&self.pods, &self.helper, MAIN, sh(script, args), stdin, &Context::new()).await
    }

    async fn sh_ok(&self, what: &str, script: &str, args: Vec<String>, stdin: Stdin) -> Result<Vec<u8>, RuntimeError> {
        match self.sh(script, args, stdin).await? {
            (Ended::Exited(0), out, _) => Ok(out),
            (ended, _, err) => Err(RuntimeError::Setup(format!(
                "{what} failed in the artifact helper pod ({ended:?}): {}",
                String::from_utf8_lossy(&err).trim()
            ))),
        }
    }

    pub async fn import(&self, tgz: TarGzStream, limits: UploadLimits) -> Result<Artifact, RuntimeError> {
        let scratch = Scratch::new(&self.scratch)?;
        let (upload, unpacked, tar) =
            (scratch.0.join("upload.tgz"), scratch.0.join("files"), scratch.0.join("files.tar"));
        spool(tgz, &upload, limits.max_compressed_bytes).await?;
        let (from, into) = (unpacked.clone(), tar.clone());
        blocking(move || {
            unpack(&upload, &from, limits.max_unpacked_bytes)?;
            let mut builder = tar::Builder::new(std::fs::File::create(&into)?);
            builder.follow_symlinks(false);
            builder.append_dir_all(".", &from)?;
            builder.into_inner()?;
            Ok(())
        })
        .await?;
        let size = tokio::fs::metadata(&tar).await?.len();
        let artifact = Artifact { id: format!("upload_{}", random_hex()) };
        self.sh_ok("storing the upload", IMPORT, vec![artifact.id.clone(), size.to_string()], Stdin::File(tar)).await?;
        Ok(artifact)
    }

    pub async fn export(&self, artifact: &Artifact) -> Result<TarGzStream, RuntimeError> {
        let id = checked_id(artifact)?.to_string();
        let (sender, receiver) = mpsc::channel::<ExecOutput>(8);
        let pods = self.pods.clone();
        let helper = self.helper.clone();
        let command = sh(EXPORT, [id.clone()]);
        let (result_sender, result) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _ = result_sender
                .send(exec::run(&pods, &helper, MAIN, command, Stdin::None, sender, &Context::new()).await);
        });
        let chunks = futures_util::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await? {
                    ExecOutput { stream: OutputStream::Stdout, chunk } => return Some((Ok(chunk), receiver)),
                    ExecOutput { stream: OutputStream::Stderr, chunk } => {
                        tracing::warn!(output = %String::from_utf8_lossy(&chunk), "exporting an artifact");
                    }
                }
            }
        });
        // The end of the exec says whether what was sent is whole.
        let end = futures_util::stream::once(async move {
            match result.await {
                Ok(Ok(Ended::Exited(0))) => None,
                Ok(Ok(ended)) => Some(Err(std::io::Error::other(format!("exporting artifact {id} failed: {ended:?}")))),
                Ok(Err(err)) => Some(Err(std::io::Error::other(err.to_string()))),
                Err(_) => Some(Err(std::io::Error::other("the export stopped"))),
            }
        })
        .filter_map(|item: Option<Result<Bytes, std::io::Error>>| async move { item });
        Ok(chunks.chain(end).boxed())
    }

    pub async fn read_file(&self, artifact: &Artifact, path: &str) -> Result<Vec<u8>, RuntimeError> {
        let id = checked_id(artifact)?;
        let outside = || RuntimeError::Setup(format!("'{path}' is outside the artifact"));
        if Path::new(path).is_absolute() || leaves_base(path) {
            return Err(outside());
        }
        let args = vec![id.to_string(), path.to_string(), MAX_READ_FILE_BYTES.to_string()];
        match self.sh(READ, args, Stdin::None).await? {
            (Ended::Exited(0), content, _) => Ok(content),
            (Ended::Exited(3), ..) => Err(outside()),
            (Ended::Exited(4), ..) => Err(RuntimeError::Setup(format!("no file '{path}' in the artifact"))),
            (Ended::Exited(5), ..) => Err(RuntimeError::Setup(format!("'{path}' is not a regular file"))),
            (Ended::Exited(6), ..) => {
                Err(RuntimeError::Setup(format!("'{path}' is larger than {MAX_READ_FILE_BYTES} bytes")))
            }
            (ended, _, err) => Err(RuntimeError::Setup(format!(
                "reading '{path}' failed ({ended:?}): {}",
                String::from_utf8_lossy(&err).trim()
            ))),
        }
    }

    /// The metadata of an artifact used as a step's image, which must have
    /// a `rootfs/` (as registry-image's `format: rootfs` writes it).
    pub async fn image_metadata(&self, artifact: &Artifact) -> Result<ImageMetadata, RuntimeError> {
        let id = checked_id(artifact)?;
        let args = vec![id.to_string(), MAX_READ_FILE_BYTES.to_string()];
        match self.sh(IMAGE, args, Stdin::None).await? {
            (Ended::Exited(0), metadata, _) => ImageMetadata::parse(&metadata),
            (Ended::Exited(3), ..) => Err(RuntimeError::Setup(format!(
                "image artifact {id} has no rootfs/ directory: an image artifact is a root filesystem in rootfs/ \
                 and metadata.json beside it, as registry-image with format: rootfs writes it"
            ))),
            (Ended::Exited(4), ..) => Err(RuntimeError::Setup(format!("no image artifact {id}"))),
            (ended, _, err) => Err(RuntimeError::Setup(format!(
                "reading image artifact {id} failed ({ended:?}): {}",
                String::from_utf8_lossy(&err).trim()
            ))),
        }
    }

    /// Captures the outputs of an exited step as artifacts (named after its
    /// handle, after `prefix`, so that every attach answers the same) and
    /// reads its exit.
    pub async fn capture(
        &self,
        handle: &str,
        prefix: &str,
        outputs: &[OutputMount],
    ) -> Result<(Exit, Vec<(String, Artifact)>), RuntimeError> {
        let mut args = vec![handle.to_string()];
        let mut artifacts = Vec::new();
        for (index, output) in outputs.iter().enumerate() {
            let artifact = Artifact { id: format!("{prefix}{handle}_{index}") };
            args.extend([artifact.id.clone(), output.path.clone()]);
            artifacts.push((output.name.clone(), artifact));
        }
        let printed = self.sh_ok("capturing the step's outputs", CAPTURE, args, Stdin::None).await?;
        let printed = String::from_utf8_lossy(&printed);
        let exit = match printed.split_once(' ') {
            Some(("not-found", program)) => Exit::NotFound(program.to_string()),
            Some(("exit", code)) => Exit::Code(
                code.trim()
                    .parse()
                    .map_err(|_| RuntimeError::Setup(format!("the step's exit code is not a number: {code:?}")))?,
            ),
            _ => return Err(RuntimeError::Setup(format!("the step's exit could not be read: {printed:?}"))),
        };
        Ok((exit, artifacts))
    }

    pub async fn release(&self, artifacts: &[Artifact]) -> Result<(), RuntimeError> {
        let paths =
            artifacts.iter().map(|a| checked_id(a).map(|id| format!("artifacts/{id}"))).collect::<Result<_, _>>()?;
        self.remove("releasing artifacts", paths).await
    }

    /// Removes `paths` (relative to the claim, made by the runtime).
    pub async fn remove(&self, what: &str, paths: Vec<String>) -> Result<(), RuntimeError> {
        if paths.is_empty() {
            return Ok(());
        }
        self.sh_ok(what, REMOVE, paths, Stdin::None).await.map(|_| ())
    }
}

/// An artifact id the runtime could have made: nothing that names a path elsewhere.
fn checked_id(artifact: &Artifact) -> Result<&str, RuntimeError> {
    let id = artifact.id.as_str();
    let valid = !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if valid { Ok(id) } else { Err(RuntimeError::Setup(format!("'{id}' is not an artifact of this runtime"))) }
}

/// Whether `path`'s `..` components climb above where it starts.
fn leaves_base(path: &str) -> bool {
    let mut depth = 0i32;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

fn random_hex() -> String {
    (0..16).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

/// A directory of this process's, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(parent: &Path) -> std::io::Result<Scratch> {
        let dir = parent.join(format!("atc-k8s-import-{}", random_hex()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::leaves_base;

    #[test]
    fn climbing_out_is_seen() {
        assert!(leaves_base("../x") && leaves_base("a/../../x"));
        assert!(!leaves_base("a/../b") && !leaves_base("./a"));
    }
}
