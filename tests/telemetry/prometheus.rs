//! A real Prometheus (Debian's `prometheus` package, installed by
//! `scripts/install-test-deps.sh`) scraping atc every second with exemplar
//! storage on. Stopped when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`host:port`, path `/metrics`) and waits until it is ready.
    pub async fn scraping(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: atc\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--enable-feature=exemplar-storage")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `prometheus` ({e}); scripts/install-test-deps.sh installs it (Debian package prometheus)")
            });
        let prometheus = Prometheus { child, url: format!("http://127.0.0.1:{port}"), _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = reqwest::get(format!("{}/-/ready", prometheus.url)).await
                && response.status().is_success()
            {
                return prometheus;
            }
            assert!(Instant::now() < deadline, "Prometheus was not ready within 30s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The trace ids of the exemplars Prometheus stored for `series` in the last ten minutes.
    pub async fn exemplar_trace_ids(&self, series: &str) -> Vec<String> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let body: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query_exemplars", self.url))
            .query(&[
                ("query", series.to_string()),
                ("start", (now - 600).to_string()),
                ("end", (now + 60).to_string()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut ids = Vec::new();
        for result in body["data"].as_array().into_iter().flatten() {
            for exemplar in result["exemplars"].as_array().into_iter().flatten() {
                if let Some(id) = exemplar["labels"]["trace_id"].as_str() {
                    ids.push(id.to_string());
                }
            }
        }
        ids
    }
}

/// `promtool check metrics` on `text`: `Ok` or promtool's complaint.
pub fn promtool_check(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `promtool` ({e}); it comes with the Debian package prometheus"));
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if output.status.success() { Ok(()) } else { Err(said) }
}
