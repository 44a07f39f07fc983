//! A warning that can repeat many times a second (every failed export while
//! a collector is down) is logged at most once per interval, with how many
//! times it happened since.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RateLimitedWarning {
    what: &'static str,
    interval: Duration,
    last_logged: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl RateLimitedWarning {
    pub const fn new(what: &'static str, interval: Duration) -> RateLimitedWarning {
        RateLimitedWarning { what, interval, last_logged: Mutex::new(None), suppressed: AtomicU64::new(0) }
    }

    /// Logs `detail` unless this warning was logged less than an interval ago.
    /// Returns whether it logged.
    pub fn warn(&self, detail: &dyn std::fmt::Display) -> bool {
        let now = Instant::now();
        {
            let Ok(mut last) = self.last_logged.try_lock() else {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                return false;
            };
            if last.is_some_and(|at| now.duration_since(at) < self.interval) {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            *last = Some(now);
        }
        let repeats = self.suppressed.swap(0, Ordering::Relaxed);
        if repeats > 0 {
            tracing::warn!(repeats_since_last_warning = repeats, "{}: {detail}", self.what);
        } else {
            tracing::warn!("{}: {detail}", self.what);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_once_per_interval() {
        let warning = RateLimitedWarning::new("export failed", Duration::from_secs(3600));
        assert!(warning.warn(&"connection refused"));
        assert!(!warning.warn(&"connection refused"));
        assert!(!warning.warn(&"connection refused"));
        assert_eq!(warning.suppressed.load(Ordering::Relaxed), 2);

        let quick = RateLimitedWarning::new("export failed", Duration::ZERO);
        assert!(quick.warn(&"a"));
        assert!(quick.warn(&"b"));
    }
}
