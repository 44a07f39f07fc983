//! The real `atc` binary as a child process: `atc quickstart` with the
//! flags under test, in a temp data directory, killed if a test fails.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ATC: &str = env!("CARGO_BIN_EXE_atc");

pub struct Atc {
    child: Child,
    pub url: String,
    pub metrics_url: String,
    /// The generated local user's password (user `admin`).
    pub password: String,
    _data_dir: Option<tempfile::TempDir>,
}

impl Atc {
    /// Starts `atc quickstart` with `args` and `env` (nothing else from the
    /// test's CONCOURSE_* or OTEL_* environment) and waits for its banner.
    pub fn quickstart(args: &[&str], env: &[(&str, &str)]) -> Atc {
        let data_dir = tempfile::tempdir().unwrap();
        let mut atc = Atc::quickstart_in(data_dir.path(), args, env);
        atc._data_dir = Some(data_dir);
        atc
    }

    /// [`Atc::quickstart`] on a data directory the caller keeps (to start
    /// atc again on the same data).
    pub fn quickstart_in(data_dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Atc {
        Atc::start(data_dir, args, env, Stdio::inherit())
    }

    /// [`Atc::quickstart`] keeping what atc logs (its stderr) for the test.
    pub fn quickstart_logged(args: &[&str], env: &[(&str, &str)]) -> (Atc, ServerLog) {
        let data_dir = tempfile::tempdir().unwrap();
        let mut atc = Atc::start(data_dir.path(), args, env, Stdio::piped());
        atc._data_dir = Some(data_dir);
        let log = ServerLog::default();
        let mut stderr = atc.child.stderr.take().unwrap();
        let kept = log.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            while let Ok(read @ 1..) = stderr.read(&mut buffer) {
                kept.0.lock().unwrap().extend_from_slice(&buffer[..read]);
            }
        });
        (atc, log)
    }

    fn start(data_dir: &std::path::Path, args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Atc {
        let mut command = Command::new(ATC);
        command
            .args(["quickstart", "--data-dir", data_dir.to_str().unwrap()])
            .args(["--bind-port", "0", "--prometheus-bind-port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (key, _) in std::env::vars() {
            if key.starts_with("CONCOURSE_") || key.starts_with("OTEL_") {
                command.env_remove(key);
            }
        }
        command.envs(env.iter().copied());
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut url, mut metrics_url, mut password) = (None, None, String::new());
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some(rest) = line.strip_prefix("atc is ready at ") {
                url = rest.split_whitespace().next().map(str::to_string);
            } else if let Some((_, rest)) = line.split_once("password: ") {
                password = rest.trim().to_string();
            } else if let Some(rest) = line.strip_prefix("Prometheus metrics at ") {
                metrics_url = Some(rest.trim().to_string());
            } else if line.contains("trigger-job") {
                break;
            }
        }
        let (Some(url), Some(metrics_url)) = (url, metrics_url) else {
            let _ = child.kill();
            panic!("atc quickstart {args:?} did not print its banner");
        };
        // Keep draining stdout so atc never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Atc { child, url, metrics_url, password, _data_dir: None }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills atc without warning (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Stops atc as an operator would (SIGTERM) and returns how long it took to exit.
    pub fn terminate(mut self) -> Duration {
        let started = Instant::now();
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM failed");
        let deadline = started + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "atc exited with {status}");
                return started.elapsed();
            }
            assert!(Instant::now() < deadline, "atc did not exit within 30s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `/metrics` text as a classic-format scraper sees it.
    pub async fn scrape(&self) -> String {
        reqwest::get(&self.metrics_url).await.unwrap().text().await.unwrap()
    }

    /// The value of one sample line of `/metrics` (`name{labels}`), 0 when absent.
    pub async fn sample(&self, series: &str) -> f64 {
        let text = self.scrape().await;
        text.lines()
            .filter(|line| line.starts_with(series))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// Everything atc wrote to its stderr so far.
#[derive(Clone, Default)]
pub struct ServerLog(Arc<Mutex<Vec<u8>>>);

impl ServerLog {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Drop for Atc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
