//! Artifacts in and out of the work dir: gzipped tarballs as `fly execute`
//! uploads and downloads them, single files, release.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::fs::{join_relative, remove_tree};
use super::layout::WorkDir;
use super::unpack;
use crate::runtime::{Artifact, MAX_READ_FILE_BYTES, RuntimeError, TarGzStream, UploadLimits};

/// Blocking work goes to tokio's blocking pool; a panic there is a bug,
/// reported as an error rather than taking the caller down.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RuntimeError> + Send + 'static,
) -> Result<T, RuntimeError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| RuntimeError::Setup(format!("a filesystem task of the local runtime failed: {err}")))?
}

pub async fn import(work: WorkDir, tgz: TarGzStream, limits: UploadLimits) -> Result<Artifact, RuntimeError> {
    // The upload is spooled to disk first so that unpacking (blocking) never
    // waits on the network.
    let upload = work.upload_path();
    let spooled = spool(tgz, &upload, limits.max_compressed_bytes).await;
    if let Err(err) = spooled {
        let _ = tokio::fs::remove_file(&upload).await;
        return Err(err);
    }
    blocking(move || {
        let (artifact, path) = work.new_artifact_path();
        let unpacked = unpack::unpack(&upload, &path, limits.max_unpacked_bytes);
        let _ = std::fs::remove_file(&upload);
        if let Err(err) = unpacked {
            let _ = remove_tree(&path);
            return Err(err);
        }
        Ok(artifact)
    })
    .await
}

/// Writes the upload to `path`, refusing it once it passes `max_bytes`.
pub(crate) async fn spool(mut tgz: TarGzStream, path: &Path, max_bytes: u64) -> Result<(), RuntimeError> {
    let mut file = tokio::fs::File::create(path).await?;
    let mut received: u64 = 0;
    while let Some(chunk) = tgz.next().await {
        let chunk = chunk.map_err(|err| RuntimeError::Setup(format!("the upload could not be received: {err}")))?;
        received += chunk.len() as u64;
        if received > max_bytes {
            return Err(RuntimeError::UploadTooLarge(format!("the upload is larger than {max_bytes} bytes")));
        }
        file.write_all(&chunk).await?;
    }
    Ok(file.flush().await?)
}

/// Streams the artifact as a tgz, built on a blocking thread while the
/// receiver reads it.
pub fn export(path: PathBuf) -> TarGzStream {
    let (sender, receiver) = mpsc::channel::<io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let mut writer = ChannelWriter { sender: sender.clone() };
        let written = write_tgz(&path, &mut writer);
        if let Err(err) = written {
            let _ = sender.blocking_send(Err(err));
        }
    });
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    })
    .boxed()
}

fn write_tgz(path: &Path, writer: &mut ChannelWriter) -> io::Result<()> {
    let mut builder = tar::Builder::new(GzEncoder::new(writer, Compression::fast()));
    builder.follow_symlinks(false);
    builder.append_dir_all(".", path)?;
    builder.into_inner()?.finish()?.flush()
}

struct ChannelWriter {
    sender: mpsc::Sender<io::Result<Bytes>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sender
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reader of the artifact went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads `relative` inside the artifact at `root`, refusing paths that leave
/// it, lexically or through a symlink, and what is not a regular file of
/// at most [`MAX_READ_FILE_BYTES`] (a FIFO would block the read forever).
pub fn read_file(root: &Path, relative: &str) -> Result<Vec<u8>, RuntimeError> {
    let outside = || RuntimeError::Setup(format!("'{relative}' is outside the artifact"));
    let path = join_relative(root, relative).map_err(|_| outside())?;
    let resolved = path.canonicalize().map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => RuntimeError::Setup(format!("'{relative}' does not exist in the artifact")),
        _ => err.into(),
    })?;
    if !resolved.starts_with(root.canonicalize()?) {
        return Err(outside());
    }
    let metadata = std::fs::metadata(&resolved)?;
    if metadata.is_dir() {
        return Err(RuntimeError::Setup(format!("'{relative}' is a directory, not a file")));
    }
    let too_large = || RuntimeError::Setup(format!("'{relative}' is larger than {MAX_READ_FILE_BYTES} bytes"));
    if !metadata.is_file() {
        return Err(RuntimeError::Setup(format!("'{relative}' is not a regular file")));
    }
    if metadata.len() > MAX_READ_FILE_BYTES {
        return Err(too_large());
    }
    // A step still running may be writing to it: read no more than allowed.
    let mut bytes = Vec::new();
    std::fs::File::open(resolved)?.take(MAX_READ_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_READ_FILE_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}
