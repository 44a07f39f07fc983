//! Test binaries have no global teardown: what a test binary starts once
//! (a database cluster, a Vault server) is cleaned up by a watcher that
//! outlives it.

use std::process::{Command, Stdio};

/// Runs the shell command `cleanup` once this test process has exited.
pub fn run_when_this_process_exits(cleanup: &str) {
    let script = format!("while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; {cleanup}", pid = std::process::id());
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}
