//! One bounded cache with a time to live, for the dashboard's review answers and SSM
//! reads: an entry is served until it is `ttl` old; expired entries are swept on insert
//! (at most once per tenth of the TTL), and a full cache forgets everything rather than
//! grow.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    entries: HashMap<K, (Instant, V)>,
    swept: Instant,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        TtlCache {
            ttl,
            capacity,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    /// The value and when it was stored, while younger than the TTL.
    pub fn get(&self, key: &K) -> Option<(Instant, V)> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(at, v)| (*at, v.clone()))
    }

    pub fn put(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let ttl = self.ttl;
        if inner.swept.elapsed() >= ttl / 10 {
            inner.entries.retain(|_, (at, _)| at.elapsed() < ttl);
            inner.swept = Instant::now();
        }
        if inner.entries.len() >= self.capacity {
            inner.entries.clear();
        }
        inner.entries.insert(key, (Instant::now(), value));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_are_swept_and_the_cache_stays_bounded() {
        let cache = TtlCache::new(Duration::from_millis(50), 3);
        cache.put("a", 1);
        assert_eq!(cache.get(&"a").map(|(_, v)| v), Some(1));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(&"a"), None, "expired");
        cache.put("b", 2);
        assert_eq!(cache.len(), 1, "the expired entry was swept on insert");
        cache.put("c", 3);
        cache.put("d", 4);
        cache.put("e", 5);
        assert!(cache.len() <= 3, "bounded");
        assert_eq!(cache.get(&"e").map(|(_, v)| v), Some(5));
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let off = TtlCache::new(Duration::ZERO, 10);
        off.put("k", 1);
        assert_eq!(off.get(&"k"), None);
    }
}
