//! The apps behind recently used keys, kept in memory for a few seconds so that a warm
//! instance authenticates without a store round trip. A revoked key, a deleted or disabled
//! app, or a changed configuration is seen by every instance within the cache's lifetime
//! (at most [`MAX_TTL`]); a key that does not exist is never cached, so a new key works at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::domain::{Grant, KeyHash, Timestamp};

/// The longest an app may be served from memory after it was read.
pub const MAX_TTL: Duration = Duration::from_secs(10);
/// Entries at most; when full, expired entries go first, then the oldest.
const CAPACITY: usize = 1024;

#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<KeyHash, (Grant, Timestamp)>>,
}

impl KeyCache {
    /// Keeps apps for `ttl`, capped at [`MAX_TTL`]; zero turns the cache off.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl: ttl.min(MAX_TTL), entries: Mutex::new(HashMap::new()) }
    }

    pub fn off() -> Self {
        Self::new(Duration::ZERO)
    }

    fn fresh(&self, read_at: Timestamp, now: Timestamp) -> bool {
        let age = now.micros().saturating_sub(read_at.micros());
        age >= 0 && (age as u128) < self.ttl.as_micros()
    }

    /// What `key` grants, if it was read less than the lifetime ago.
    pub(crate) fn get(&self, key: &KeyHash, now: Timestamp) -> Option<Grant> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.get(key).filter(|(_, read_at)| self.fresh(*read_at, now)).map(|(app, _)| app.clone())
    }

    /// Remembers what `key` granted, read at `now`.
    pub(crate) fn put(&self, key: &KeyHash, grant: &Grant, now: Timestamp) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= CAPACITY && !entries.contains_key(key) {
            entries.retain(|_, (_, read_at)| self.fresh(*read_at, now));
            if entries.len() >= CAPACITY {
                let oldest = entries.iter().min_by_key(|(_, (_, read_at))| *read_at).map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(key.clone(), (grant.clone(), now));
    }

    /// Forgets `key` (this instance revoked it).
    pub fn forget(&self, key: &KeyHash) {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{App, AppConfig, AppId, AppMode, KeyRole};

    fn app() -> Grant {
        let app = App {
            id: AppId::from_uuid(uuid::Uuid::new_v4()),
            name: "a".into(),
            mode: AppMode::Chat,
            config: AppConfig::default(),
            created_at: Timestamp::from_micros(0),
        };
        Grant { app, role: KeyRole::App, last_used_at: None, shown: None }
    }

    #[test]
    fn apps_are_served_for_the_lifetime_only() {
        let cache = KeyCache::new(Duration::from_secs(60));
        assert_eq!(cache.ttl, MAX_TTL, "capped");
        let key = crate::domain::ApiKey::presented("app-x").hash();
        let t0 = Timestamp::from_micros(1_000_000);
        assert!(cache.get(&key, t0).is_none());
        cache.put(&key, &app(), t0);
        assert!(cache.get(&key, Timestamp::from_micros(t0.micros() + 9_999_999)).is_some());
        assert!(cache.get(&key, Timestamp::from_micros(t0.micros() + 10_000_000)).is_none(), "expired");
        cache.forget(&key);
        assert!(cache.get(&key, t0).is_none(), "forgotten");
        let off = KeyCache::off();
        off.put(&key, &app(), t0);
        assert!(off.get(&key, t0).is_none());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = KeyCache::new(MAX_TTL);
        let t0 = Timestamp::from_micros(0);
        for i in 0..CAPACITY + 10 {
            let key = crate::domain::ApiKey::presented(&format!("app-{i}")).hash();
            cache.put(&key, &app(), Timestamp::from_micros(t0.micros() + i as i64));
        }
        assert_eq!(cache.entries.lock().unwrap().len(), CAPACITY);
    }
}
