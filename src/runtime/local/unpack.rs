//! Unpacking a tarball a user uploaded (`fly execute` inputs). Nothing in
//! it is trusted: it may unpack to far more than it weighs (a gzip bomb),
//! name paths outside the artifact (`../x`, `/etc/x`), reach outside
//! through links, or carry setuid programs that a task running as another
//! user would then run with atc's rights. Errors say what is wrong in the
//! upload's own terms (its entry names), never where atc keeps it.

use std::cell::Cell;
use std::ffi::OsString;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use flate2::read::GzDecoder;

use crate::runtime::RuntimeError;

/// How many symbolic links one path may pass through, as Linux's limit.
const MAX_SYMLINK_HOPS: u32 = 40;

/// What a tar header costs in the unpacked stream.
const HEADER_BYTES: u64 = 512;

/// Unpacks the gzipped tarball at `tgz` into `destination`, refusing it
/// once it unpacks to more than `max_unpacked_bytes`. Setuid, setgid and
/// sticky bits are dropped; ownership is not kept.
pub fn unpack(tgz: &Path, destination: &Path, max_unpacked_bytes: u64) -> Result<(), RuntimeError> {
    std::fs::create_dir_all(destination)?;
    let passed_limit = Rc::new(Cell::new(false));
    let unpacked = Limited {
        inner: GzDecoder::new(std::fs::File::open(tgz)?),
        left: max_unpacked_bytes,
        passed_limit: passed_limit.clone(),
    };
    let mut archive = tar::Archive::new(unpacked);
    // Only the permission bits (0o777) are kept.
    archive.set_preserve_permissions(false);
    archive.set_overwrite(true);
    let result = unpack_entries(&mut archive, destination, max_unpacked_bytes);
    // Headers and names (read into memory by `tar`) count too: past the
    // limit, whatever error that caused means the upload is too large.
    if passed_limit.get() {
        return Err(too_large(max_unpacked_bytes));
    }
    result
}

fn too_large(max_unpacked_bytes: u64) -> RuntimeError {
    RuntimeError::UploadTooLarge(format!("the upload unpacks to more than {max_unpacked_bytes} bytes"))
}

fn refused(message: String) -> RuntimeError {
    RuntimeError::Setup(format!("the upload cannot be stored: {message}"))
}

fn unreadable(err: io::Error) -> RuntimeError {
    RuntimeError::Setup(format!("the upload is not a gzipped tarball: {err}"))
}

fn unpack_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    destination: &Path,
    max_unpacked_bytes: u64,
) -> Result<(), RuntimeError> {
    let mut declared: u64 = 0;
    // Directories are made last, so that one without write permission does
    // not keep its own files out (as `tar::Archive::unpack` does).
    let mut directories = Vec::new();
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_gnu_sparse() {
            // Its holes would unpack to more than the stream carries.
            return Err(refused(format!("'{name}' is a sparse file")));
        }
        // Refused by what the headers announce, before the data is written.
        declared = declared.saturating_add(entry.size()).saturating_add(HEADER_BYTES);
        if declared > max_unpacked_bytes {
            return Err(too_large(max_unpacked_bytes));
        }
        let path = entry.path().map_err(unreadable)?.into_owned();
        let relative = inside_path(&path).ok_or_else(|| refused(format!("'{name}' is outside the upload")))?;
        let parent = relative.parent().unwrap_or(Path::new(""));
        if !stays_inside(destination, Path::new(""), parent) {
            return Err(refused(format!("'{name}' is inside a symbolic link that leads outside the upload")));
        }
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry.link_name().map_err(unreadable)?.unwrap_or_default().into_owned();
            // A symbolic link is read from its directory, a hard link's target from the top.
            let (from, what) = if kind.is_symlink() { (parent, "symbolic") } else { (Path::new(""), "hard") };
            if !stays_inside(destination, from, &target) {
                return Err(refused(format!(
                    "'{name}' is a {what} link to '{}', outside the upload",
                    target.display()
                )));
            }
        }
        if kind.is_dir() {
            directories.push(entry);
        } else {
            write_entry(&mut entry, destination, &name)?;
        }
    }
    for mut directory in directories {
        let name = String::from_utf8_lossy(&directory.path_bytes()).into_owned();
        write_entry(&mut directory, destination, &name)?;
    }
    // A link that stayed inside when it was made can lead out through a
    // link made after it (`a -> b/../x`, then `b -> .`).
    check_links(destination, destination)
}

fn write_entry<R: Read>(entry: &mut tar::Entry<'_, R>, destination: &Path, name: &str) -> Result<(), RuntimeError> {
    entry.unpack_in(destination).map(|_| ()).map_err(|err| {
        // `tar`'s messages name the paths it wrote to: they stay in atc's log.
        tracing::warn!(entry = name, error = %err, "cannot unpack an entry of an upload");
        refused(format!("'{name}' could not be unpacked ({})", err.kind()))
    })
}

/// `path` without `.` components, or `None` when it is absolute or climbs
/// out with `..`.
fn inside_path(path: &Path) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(relative)
}

/// One step of a path being resolved.
enum Step {
    Root,
    Up,
    Into(OsString),
}

fn steps(path: &Path) -> Vec<Step> {
    path.components()
        .filter_map(|component| match component {
            Component::Normal(part) => Some(Step::Into(part.to_os_string())),
            Component::ParentDir => Some(Step::Up),
            Component::RootDir | Component::Prefix(_) => Some(Step::Root),
            Component::CurDir => None,
        })
        .collect()
}

/// Whether `target`, followed from the directory `from` (relative to
/// `root`), stays inside `root`: `..` may not climb above it, absolute
/// paths leave it, and each symbolic link met on the way (as the tree is
/// now) is followed by the same rules. What does not exist yet is taken as
/// a plain directory.
fn stays_inside(root: &Path, from: &Path, target: &Path) -> bool {
    let mut at: Vec<OsString> = from.iter().map(|part| part.to_os_string()).collect();
    let mut pending = steps(target);
    pending.reverse();
    let mut hops = 0;
    while let Some(step) = pending.pop() {
        match step {
            Step::Root => return false,
            Step::Up => {
                if at.pop().is_none() {
                    return false;
                }
            }
            Step::Into(part) => {
                let mut here = root.to_path_buf();
                here.extend(&at);
                here.push(&part);
                let is_link = std::fs::symlink_metadata(&here).is_ok_and(|meta| meta.file_type().is_symlink());
                if !is_link {
                    at.push(part);
                    continue;
                }
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return false;
                }
                let Ok(link) = std::fs::read_link(&here) else { return false };
                // The link's target is read from the link's own directory: `at`.
                let mut link_steps = steps(&link);
                link_steps.reverse();
                pending.extend(link_steps);
            }
        }
    }
    true
}

/// Refuses the first symbolic link under `dir` that leads outside `root`.
fn check_links(root: &Path, dir: &Path) -> Result<(), RuntimeError> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_type = entry.file_type()?;
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap_or(&path);
        if file_type.is_dir() {
            check_links(root, &path)?;
        } else if file_type.is_symlink() {
            let target = std::fs::read_link(&path)?;
            if !stays_inside(root, relative.parent().unwrap_or(Path::new("")), &target) {
                return Err(refused(format!(
                    "'{}' is a symbolic link to '{}', which leads outside the upload",
                    relative.display(),
                    target.display()
                )));
            }
        }
    }
    Ok(())
}

/// Reads at most `left` bytes of the unpacked stream, then fails (and says
/// so in `passed_limit`).
struct Limited<R> {
    inner: R,
    left: u64,
    passed_limit: Rc<Cell<bool>>,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        match self.left.checked_sub(read as u64) {
            Some(left) => {
                self.left = left;
                Ok(read)
            }
            None => {
                self.passed_limit.set(true);
                Err(io::Error::other("the upload unpacks to more than allowed"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn names_and_headers_count_toward_the_unpacked_size() {
        // `tar` reads a GNU long name into memory whole, past any entry check.
        let mut tar = Vec::new();
        let mut long_name = tar::Header::new_gnu();
        long_name.set_entry_type(tar::EntryType::GNULongName);
        long_name.set_size(4 << 20);
        long_name.set_cksum();
        tar.extend_from_slice(long_name.as_bytes());
        tar.resize(tar.len() + (4 << 20), b'a');
        let mut file = tar::Header::new_gnu();
        file.set_path("short").unwrap();
        file.set_size(0);
        file.set_cksum();
        tar.extend_from_slice(file.as_bytes());
        tar.extend_from_slice(&[0; 1024]);
        let dir = tempfile::tempdir().unwrap();
        let tgz = dir.path().join("upload.tgz");
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&tar).unwrap();
        std::fs::write(&tgz, gzip.finish().unwrap()).unwrap();

        let result = unpack(&tgz, &dir.path().join("unpacked"), 1 << 20);
        assert!(matches!(&result, Err(RuntimeError::UploadTooLarge(m)) if m.contains("1048576")), "{result:?}");
        // Within the limit, the name is read (and is too long for a file name).
        let result = unpack(&tgz, &dir.path().join("unpacked-whole"), 8 << 20);
        assert!(matches!(&result, Err(RuntimeError::Setup(m)) if m.contains("could not be unpacked")), "{result:?}");
    }

    #[test]
    fn links_are_followed_as_the_tree_stands() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        assert!(stays_inside(root, Path::new("a/b"), Path::new("../../x")));
        assert!(!stays_inside(root, Path::new("a/b"), Path::new("../../../x")));
        assert!(!stays_inside(root, Path::new("a"), Path::new("/etc/passwd")));
        symlink(".", root.join("here")).unwrap();
        // Lexically `c`; through `here` (the top) it is `../c`.
        assert!(!stays_inside(root, Path::new("a"), Path::new("../here/../c")));
        symlink("up", root.join("loop")).unwrap();
        symlink("loop", root.join("up")).unwrap();
        assert!(!stays_inside(root, Path::new(""), Path::new("loop/x")));
    }
}
