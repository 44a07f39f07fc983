//! One step's process, started so that it outlives atc: a small shell
//! supervises it, in a process group of its own (so it can be signalled as
//! one, and a Ctrl-C at atc's terminal does not reach it). The process
//! reads its stdin from a file and writes its output straight to files in
//! the step's directory; when it exits, the shell writes its exit code
//! beside them and kills whatever the process left behind in its group.
//! Nothing of this needs atc to be alive, so a restarted atc reads the
//! output from where it was and the exit code once it is there. Reading and
//! signalling are in `mod.rs` and below.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::step_files::{ProcessGroup, StepFiles};
use super::user::HostUser;
use crate::runtime::RuntimeError;
use crate::telemetry::propagation;
use crate::telemetry::spans::{ProcessSpan, RuntimeProcess};

/// The supervising shell's script: `$0` is the exit file, the rest the
/// command. `kill -9 0` ends the group, the shell included, once the code
/// is written: whatever the process left running goes with it.
const SUPERVISOR_SCRIPT: &str = r#"exit_file=$0; "$@"; echo $? > "$exit_file"; kill -9 0"#;
const SUPERVISOR_SHELL: &str = "/bin/sh";

pub struct Launch {
    pub program: PathBuf,
    /// The program as the step named it (`/opt/resource/in`, `ci/test.sh`):
    /// what messages show, rather than where it is on this host.
    pub name: String,
    pub args: Vec<String>,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub user: Option<HostUser>,
}

/// Starts the process of a laid-out step whose stdin file (if any) and
/// stderr file (with the runtime's notices) are written. Blocking.
pub fn spawn(launch: &Launch, files: &StepFiles) -> Result<ProcessGroup, RuntimeError> {
    check_executable(launch)?;
    let stdin = match File::open(files.stdin()) {
        Ok(file) => Stdio::from(file),
        Err(_) => Stdio::null(),
    };
    let stdout = File::create(files.stdout())?;
    let stderr = OpenOptions::new().append(true).create(true).open(files.stderr())?;
    let mut command = tokio::process::Command::new(SUPERVISOR_SHELL);
    command
        .arg("-c")
        .arg(SUPERVISOR_SCRIPT)
        .arg(files.exit())
        .arg(&launch.program)
        .args(&launch.args)
        .current_dir(&launch.dir)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        // Dropping the handle neither kills nor leaks it: tokio reaps the
        // shell when it exits (after a restart, init does).
        .kill_on_drop(false);
    // Without a switch of user the standard library starts the shell with
    // posix_spawn, which does not copy atc's page tables as fork does: most
    // of a trivial step's start-up cost.
    if let Some(user) = &launch.user {
        user.run_as(&mut command);
    }
    let child = command.spawn().map_err(|err| {
        tracing::warn!(program = %launch.program.display(), error = %err, "cannot start a step's process");
        RuntimeError::Setup(format!("cannot run {}: {err}", launch.name))
    })?;
    let pgid =
        child.id().ok_or_else(|| RuntimeError::Setup("the step's process ended before it was seen".into()))? as i32;
    let group = ProcessGroup { pgid, started: start_time(pgid).unwrap_or(0) };
    files.save_process(group)?;
    Ok(group)
}

/// The shell would only say "not found" in the step's log (naming the
/// program's place on this host) and exit 127: a program that cannot run is
/// the step's setup error, said at once, as `execve` would say it.
fn check_executable(launch: &Launch) -> Result<(), RuntimeError> {
    let cannot_run = |err: std::io::Error| RuntimeError::Setup(format!("cannot run {}: {err}", launch.name));
    let program = if launch.program.components().count() > 1 {
        Some(launch.program.clone())
    } else {
        let path = launch.env.iter().rev().find(|(key, _)| key == "PATH").map(|(_, value)| value.as_str());
        path.unwrap_or_default().split(':').map(|dir| Path::new(dir).join(&launch.program)).find(|p| is_executable(p))
    };
    let program = program
        .filter(|p| is_executable(p))
        .ok_or_else(|| cannot_run(std::io::Error::from_raw_os_error(libc::ENOENT)))?;
    let mut head = [0u8; 256];
    let read = {
        use std::io::Read;
        File::open(&program).and_then(|mut file| file.read(&mut head)).map_err(cannot_run)?
    };
    let head = &head[..read];
    if head.starts_with(b"\x7fELF") {
        return Ok(());
    }
    let Some(line) = head.strip_prefix(b"#!") else {
        return Err(cannot_run(std::io::Error::from_raw_os_error(libc::ENOEXEC)));
    };
    let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
    let interpreter = String::from_utf8_lossy(line);
    let interpreter = interpreter.split_whitespace().next().unwrap_or_default();
    if is_executable(Path::new(interpreter)) {
        Ok(())
    } else {
        Err(cannot_run(std::io::Error::from_raw_os_error(libc::ENOENT)))
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// When process `pid` started, in clock ticks after boot; `None` when there
/// is no such process.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the group's leader (the supervising shell) is still there, as
/// itself: after a restart its id may have been given to another process.
pub fn is_alive(group: ProcessGroup) -> bool {
    start_time(group.pgid).is_some_and(|started| started == group.started || group.started == 0)
}

/// Stops the group: SIGTERM, then SIGKILL after `grace` to whatever is left
/// of it (the shell dies of the SIGTERM at once; what the step started may
/// not). Returns once the group is empty, or a bounded while after SIGKILL.
pub async fn stop(group: ProcessGroup, grace: Duration) {
    if !is_alive(group) {
        // Its leader is gone and with it our claim on the id: nothing to stop.
        return;
    }
    signal_group(group.pgid, libc::SIGTERM);
    if !wait_until_empty(group.pgid, grace).await {
        signal_group(group.pgid, libc::SIGKILL);
        wait_until_empty(group.pgid, Duration::from_secs(5)).await;
    }
}

pub(super) fn signal_group(pgid: i32, signal: libc::c_int) {
    // SAFETY: killpg has no memory effects; a group that is already gone gives ESRCH.
    unsafe {
        libc::killpg(pgid, signal);
    }
}

/// Waits until no process is left in the group but zombies. While a group
/// has members its id is not given to another process, so polling it after
/// the leader died still names the step's processes.
async fn wait_until_empty(pgid: i32, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if !group_has_live_members(pgid) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether a process other than a zombie is in group `pgid`.
fn group_has_live_members(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.flatten().filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok()).any(|pid| {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
        let Some(fields) = stat.rfind(')').map(|end| stat[end + 1..].split_whitespace().collect::<Vec<_>>()) else {
            return false;
        };
        // Fields after the name: state, ppid, pgrp, ...
        fields.first() != Some(&"Z") && fields.get(2).and_then(|pgrp| pgrp.parse::<i32>().ok()) == Some(pgid)
    })
}

/// The `runtime.process` span of the process `launch` started as `pid`,
/// under the step span the engine handed it in `TRACEPARENT`; none without
/// one. It ends when atc sees the exit (an atc that restarted meanwhile has
/// lost it).
pub fn process_span(launch: &Launch, pid: i32) -> ProcessSpan {
    let command = launch.program.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    RuntimeProcess { pid, command }.start(&propagation::context_from_environment(&launch.env))
}
