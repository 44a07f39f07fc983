//! The secret cache (`--secret-cache-*`): answers a lookup it has seen
//! lately without asking the manager, found and not-found answers alike,
//! each for its own duration (and a found secret no longer than its lease).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Secret;

/// How the cache behaves; disabled unless `--secret-cache-enabled`, as in Concourse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheOptions {
    pub enabled: bool,
    /// How long a found secret is kept (`--secret-cache-duration`).
    pub duration: Duration,
    /// How long "not found" is kept (`--secret-cache-duration-notfound`).
    pub not_found_duration: Duration,
}

impl Default for CacheOptions {
    fn default() -> CacheOptions {
        CacheOptions { enabled: false, duration: Duration::from_secs(60), not_found_duration: Duration::from_secs(10) }
    }
}

/// Which lookup an answer belongs to: the same var of another team or
/// pipeline may be another secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub team: String,
    pub pipeline: Option<String>,
    pub path: String,
}

struct Entry {
    answer: Option<Secret>,
    until: Instant,
}

/// Past this many entries, expired ones are dropped on the next insert.
const PRUNE_ABOVE: usize = 1024;

pub struct SecretCache {
    options: CacheOptions,
    entries: Mutex<HashMap<CacheKey, Entry>>,
}

impl SecretCache {
    pub fn new(options: CacheOptions) -> SecretCache {
        SecretCache { options, entries: Mutex::new(HashMap::new()) }
    }

    /// The remembered answer: `Some(None)` is a remembered "not found".
    pub fn get(&self, key: &CacheKey) -> Option<Option<Secret>> {
        if !self.options.enabled {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.get(key).filter(|entry| entry.until > Instant::now()).map(|entry| entry.answer.clone())
    }

    pub fn put(&self, key: CacheKey, answer: Option<Secret>) {
        if !self.options.enabled {
            return;
        }
        let now = Instant::now();
        let until = match &answer {
            Some(secret) => {
                let kept = now + self.options.duration;
                secret.expires_at.map_or(kept, |expires| expires.min(kept))
            }
            None => now + self.options.not_found_duration,
        };
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= PRUNE_ABOVE {
            entries.retain(|_, entry| entry.until > now);
        }
        entries.insert(key, Entry { answer, until });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(path: &str) -> CacheKey {
        CacheKey { team: "main".into(), pipeline: Some("p".into()), path: path.into() }
    }

    fn cache(duration_ms: u64, not_found_ms: u64) -> SecretCache {
        SecretCache::new(CacheOptions {
            enabled: true,
            duration: Duration::from_millis(duration_ms),
            not_found_duration: Duration::from_millis(not_found_ms),
        })
    }

    #[test]
    fn found_and_not_found_answers_are_kept_for_their_own_durations() {
        let cache = cache(10_000, 30);
        cache.put(key("a"), Some(Secret::new(json!("x"))));
        cache.put(key("missing"), None);
        assert_eq!(cache.get(&key("a")), Some(Some(Secret::new(json!("x")))));
        assert_eq!(cache.get(&key("missing")), Some(None));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(cache.get(&key("missing")), None, "not found is forgotten sooner");
        assert!(cache.get(&key("a")).is_some());
    }

    #[test]
    fn a_secret_is_kept_no_longer_than_its_lease() {
        let cache = cache(10_000, 10_000);
        let expires_at = Some(Instant::now() + Duration::from_millis(20));
        cache.put(key("leased"), Some(Secret { value: json!("x"), expires_at }));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(&key("leased")), None);
    }

    #[test]
    fn a_disabled_cache_remembers_nothing_and_other_teams_do_not_share() {
        let disabled = SecretCache::new(CacheOptions::default());
        disabled.put(key("a"), Some(Secret::new(json!("x"))));
        assert_eq!(disabled.get(&key("a")), None);
        let cache = cache(10_000, 10_000);
        cache.put(key("a"), Some(Secret::new(json!("x"))));
        assert_eq!(cache.get(&CacheKey { team: "other".into(), ..key("a") }), None);
    }
}
