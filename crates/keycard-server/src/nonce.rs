//! The in-memory nonce store: `(token, nonce, timestamp)` is single use. Entries are kept in
//! time buckets and dropped a bucket at a time once they can no longer pass the timestamp check,
//! so memory is bounded by the window times the request rate.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

const SHARDS: usize = 16;
/// Seconds per bucket.
const BUCKET: i64 = 10;

/// Entries are 128-bit keyed hashes of `(token, nonce, timestamp)`: 16 bytes each instead of
/// the strings, with keys chosen per process so no client can aim for a collision.
pub struct NonceStore {
    window: i64,
    shards: Vec<Mutex<HashMap<i64, HashSet<u128>>>>,
    keys: (RandomState, RandomState),
}

impl NonceStore {
    pub fn new(window: i64) -> Self {
        Self {
            window,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            keys: (RandomState::new(), RandomState::new()),
        }
    }

    /// Records the use; false when it was already used. Call only after the signature verified,
    /// so unauthenticated traffic cannot fill the store or burn a client's nonces.
    pub fn consume(&self, token: &str, nonce: &str, timestamp: i64, now: i64) -> bool {
        let entry = (token, nonce, timestamp);
        let (high, low) = (self.keys.0.hash_one(entry), self.keys.1.hash_one(entry));
        let key = (u128::from(high) << 64) | u128::from(low);
        let shard_index = usize::try_from(low % SHARDS as u64).unwrap_or(0);
        let Some(shard) = self.shards.get(shard_index) else {
            return false;
        };
        let mut shard = shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Timestamps older than the window are refused before this point; drop their buckets.
        let oldest_live = (now - self.window).div_euclid(BUCKET) - 1;
        shard.retain(|bucket, _| *bucket >= oldest_live);
        let bucket = timestamp.div_euclid(BUCKET);
        if shard.values().any(|set| set.contains(&key)) {
            return false;
        }
        shard.entry(bucket).or_default().insert(key)
    }

    /// Drops the buckets that left the window, in every shard (`consume` does it for its own).
    pub fn purge(&self, now: i64) {
        let oldest_live = (now - self.window).div_euclid(BUCKET) - 1;
        for shard in &self.shards {
            shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .retain(|bucket, _| *bucket >= oldest_live);
        }
    }

    /// Entries held, for metrics and tests.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .values()
                    .map(HashSet::len)
                    .sum::<usize>()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_use_and_bounded() {
        let store = NonceStore::new(300);
        assert!(store.consume("t", "nonce1", 1000, 1000));
        assert!(!store.consume("t", "nonce1", 1000, 1001));
        assert!(
            store.consume("t", "nonce1", 1001, 1001),
            "another timestamp is another use"
        );
        assert!(
            store.consume("u", "nonce1", 1000, 1001),
            "another token is another use"
        );
        // Much later, old buckets are gone.
        assert!(store.consume("t", "other", 5000, 5000));
        store.purge(5000);
        assert_eq!(store.len(), 1);
    }
}
