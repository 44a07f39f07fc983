//! `run.user`: which host account a step runs as. Switching accounts needs
//! root; when it cannot be done, the step says why in its own log.

use std::ffi::{CStr, CString};

/// A host account a step can run as.
#[derive(Debug, Clone)]
pub struct HostUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    /// Supplementary groups, resolved before the fork: the child may only
    /// make async-signal-safe calls, and reading /etc/group is not one.
    pub groups: Vec<u32>,
}

impl HostUser {
    /// Makes `command` run as this account. Only root can; code between fork
    /// and exec does it, so such a command is forked rather than spawned.
    pub fn run_as(&self, command: &mut tokio::process::Command) {
        let (uid, gid, groups) = (self.uid, self.gid, self.groups.clone());
        // SAFETY: the closure runs between fork and exec and only makes
        // async-signal-safe system calls on data prepared before the fork.
        unsafe {
            command.pre_exec(move || {
                if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// The outcome of resolving a step's user.
pub enum UserChoice {
    /// Run as atc's own account.
    Current,
    /// Switch to this account (atc runs as root).
    Switch(HostUser),
    /// The request cannot be honoured; run as atc's account and log why.
    Unavailable(String),
}

/// Blocking: reads the password database.
pub fn choose(requested: Option<&str>) -> UserChoice {
    let Some(requested) = requested.filter(|name| !name.is_empty()) else {
        return UserChoice::Current;
    };
    let current = current_user_name();
    if current.as_deref() == Some(requested) {
        return UserChoice::Current;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let current = current.unwrap_or_else(|| "its own account".to_string());
        return UserChoice::Unavailable(format!(
            "atc: user '{requested}' is not used: atc does not run as root, so the step runs as {current}"
        ));
    }
    match lookup_by_name(requested) {
        Some(user) => UserChoice::Switch(user),
        None => UserChoice::Unavailable(format!(
            "atc: user '{requested}' does not exist on this host; the step runs as root"
        )),
    }
}

pub fn current_user() -> Option<HostUser> {
    // SAFETY: geteuid has no preconditions.
    lookup(Lookup::Uid(unsafe { libc::geteuid() }))
}

fn current_user_name() -> Option<String> {
    current_user().map(|user| user.name)
}

pub fn lookup_by_name(name: &str) -> Option<HostUser> {
    match name.parse::<u32>() {
        Ok(uid) => lookup(Lookup::Uid(uid)),
        Err(_) => lookup(Lookup::Name(CString::new(name).ok()?)),
    }
}

enum Lookup {
    Name(CString),
    Uid(u32),
}

fn lookup(by: Lookup) -> Option<HostUser> {
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value to be filled in.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and the buffer length is
    // the buffer's; the results point into `buffer`, read before it drops.
    let status = unsafe {
        match &by {
            Lookup::Name(name) => {
                libc::getpwnam_r(name.as_ptr(), &mut entry, buffer.as_mut_ptr(), buffer.len(), &mut result)
            }
            Lookup::Uid(uid) => libc::getpwuid_r(*uid, &mut entry, buffer.as_mut_ptr(), buffer.len(), &mut result),
        }
    };
    if status != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success pw_name and pw_dir are NUL-terminated strings in `buffer`.
    let (name, home) = unsafe {
        (
            CStr::from_ptr(entry.pw_name).to_string_lossy().into_owned(),
            CStr::from_ptr(entry.pw_dir).to_string_lossy().into_owned(),
        )
    };
    let groups = supplementary_groups(&name, entry.pw_gid);
    Some(HostUser { name, uid: entry.pw_uid, gid: entry.pw_gid, home, groups })
}

fn supplementary_groups(name: &str, gid: u32) -> Vec<u32> {
    let Ok(c_name) = CString::new(name) else { return vec![gid] };
    let mut groups = vec![0 as libc::gid_t; 64];
    loop {
        let mut count = groups.len() as libc::c_int;
        // SAFETY: `groups` has room for `count` entries; c_name is NUL-terminated.
        let found = unsafe { libc::getgrouplist(c_name.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if found >= 0 {
            groups.truncate(count as usize);
            return groups;
        }
        if groups.len() >= 65_536 {
            return vec![gid];
        }
        groups.resize((count as usize).max(groups.len() * 2), 0);
    }
}
