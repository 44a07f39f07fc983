//! Blocking filesystem helpers of the local runtime: copy-on-write copies of
//! artifact trees, removal of trees a step may have made read-only, handing
//! a tree to another user, and joining untrusted relative paths. Callers run
//! them on blocking threads.

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

/// A path that [`join_relative`] refuses: it is absolute or climbs out with `..`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{relative}' must be a relative path that stays inside its directory")]
pub struct PathLeavesBase {
    pub relative: String,
}

/// Joins a path from a step spec or a request (`inputs[].path`, `read_file`)
/// onto `base`, refusing anything that could leave `base` lexically
/// (absolute paths, `..`). `""` and `"."` name `base` itself.
pub fn join_relative(base: &Path, relative: &str) -> Result<PathBuf, PathLeavesBase> {
    let mut joined = base.to_path_buf();
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(part) => joined.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(PathLeavesBase { relative: relative.to_string() });
            }
        }
    }
    Ok(joined)
}

/// Copies the tree at `source` into `destination` (created if missing,
/// merged into if present). Files are cloned copy-on-write where the
/// filesystem can (`FICLONE`, as btrfs and XFS do), otherwise copied;
/// symlinks are recreated as they are, never followed.
pub fn copy_tree(source: &Path, destination: &Path) -> io::Result<()> {
    fs::create_dir_all(destination)?;
    let mut pending = vec![(source.to_path_buf(), destination.to_path_buf())];
    // Directory modes are applied last: a read-only directory could not be
    // filled otherwise (without root).
    let mut directory_modes = vec![(destination.to_path_buf(), fs::metadata(source)?.permissions())];
    while let Some((from_dir, to_dir)) = pending.pop() {
        for entry in fs::read_dir(&from_dir)? {
            let entry = entry?;
            let from = entry.path();
            let to = to_dir.join(entry.file_name());
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                match fs::create_dir(&to) {
                    Err(err) if err.kind() != io::ErrorKind::AlreadyExists => return Err(err),
                    _ => {}
                }
                directory_modes.push((to.clone(), fs::symlink_metadata(&from)?.permissions()));
                pending.push((from, to));
            } else if file_type.is_symlink() {
                let _ = fs::remove_file(&to);
                symlink(fs::read_link(&from)?, &to)?;
            } else if file_type.is_file() {
                copy_file(&from, &to)?;
            }
            // Sockets, FIFOs and devices have no place in an artifact.
        }
    }
    for (directory, permissions) in directory_modes.into_iter().rev() {
        fs::set_permissions(directory, permissions)?;
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> io::Result<()> {
    let source = File::open(from)?;
    let permissions = source.metadata()?.permissions();
    let _ = fs::remove_file(to);
    let target = File::create(to)?;
    // SAFETY: FICLONE takes the source descriptor as its argument and
    // touches no memory of ours; both descriptors are open.
    let cloned = unsafe { libc::ioctl(target.as_raw_fd(), libc::FICLONE, source.as_raw_fd()) } == 0;
    drop(target);
    if !cloned {
        // std::fs::copy uses copy_file_range, itself copy-on-write on some filesystems.
        fs::copy(from, to)?;
    }
    fs::set_permissions(to, permissions)
}

/// Removes a tree, first making writable any directory the step made
/// read-only (Go's module cache does), which would stop a non-root removal.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_dirs_writable(path);
            match fs::remove_dir_all(path) {
                Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        }
    }
}

fn make_dirs_writable(root: &Path) {
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if let Ok(metadata) = fs::symlink_metadata(&dir)
            && metadata.is_dir()
        {
            let mut permissions = metadata.permissions();
            permissions.set_mode(permissions.mode() | 0o700);
            let _ = fs::set_permissions(&dir, permissions);
            if let Ok(entries) = fs::read_dir(&dir) {
                pending.extend(entries.flatten().map(|entry| entry.path()));
            }
        }
    }
}

/// Gives every entry of the tree (symlinks themselves, not their targets)
/// to `uid:gid`, so a step run as that user can write its inputs and outputs.
pub fn chown_tree(root: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
        // SAFETY: c_path is a valid NUL-terminated string for the duration of the call.
        if unsafe { libc::lchown(c_path.as_ptr(), uid, gid) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if fs::symlink_metadata(&path)?.is_dir() {
            for entry in fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    Ok(())
}

/// Moves a directory to `to`, replacing whatever is there.
pub fn replace_dir(from: &Path, to: &Path) -> io::Result<()> {
    remove_tree(to)?;
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::rename(from, to)
}
