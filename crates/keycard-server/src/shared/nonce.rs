//! The in-memory nonce store: `(token, nonce, timestamp)` is single use. Entries are kept in
//! time buckets and dropped a bucket at a time once they can no longer pass the timestamp check,
//! so memory is bounded by the window times the request rate.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Mutex;

use super::lock;

/// Many shards, so that their tables, filling at the same rate, do not all double at once: with
/// 16, one bucket's tables double within tens of milliseconds of each other (a burst of
/// rehashing on the request path); with 256 each moves a sixteenth as much, and the random
/// differences between shards spread the doublings out. (A suspected cause of millisecond
/// stalls at 80% load; the load benchmark did not show a clear change either way.)
const SHARDS: usize = 256;
/// Seconds per bucket.
const BUCKET: i64 = 10;

/// Entries are 64-bit keyed hashes of `(token, nonce, timestamp)`: 8 bytes each (about 10 to 20
/// with the table's slack; `examples/scale.rs` measures it) instead of the strings, with a key
/// chosen per process so no client can aim for a collision. A replay always hashes the same and
/// is always refused; a collision can only refuse a fresh request, with odds of about
/// entries / 2^64 (10 million entries: 1 in 2 trillion requests).
pub struct NonceStore {
    window: i64,
    shards: Vec<Mutex<Shard>>,
    key: RandomState,
}

type Entries = HashSet<u64, BuildHasherDefault<AlreadyHashed>>;

/// One shard's time buckets, and the oldest bucket that can still hold a live entry.
struct Shard {
    oldest_live: i64,
    buckets: HashMap<i64, Entries>,
}

impl Default for Shard {
    fn default() -> Self {
        Self {
            oldest_live: i64::MIN,
            buckets: HashMap::new(),
        }
    }
}

impl Shard {
    /// The bucket's entries. The current time's bucket is made as large as the largest live
    /// one: a table that grows doubles, moving every entry on the request path, and all shards
    /// would double together. Sized from the last one, it does not grow at all while the rate
    /// holds. Buckets of other times (clients with skewed clocks) start small, so a few such
    /// requests never cost a full table.
    fn bucket(&mut self, bucket: i64, current: bool) -> &mut Entries {
        let capacity = if current && !self.buckets.contains_key(&bucket) {
            self.buckets.values().map(Entries::len).max().unwrap_or(0)
        } else {
            0
        };
        self.buckets.entry(bucket).or_insert_with(|| {
            Entries::with_capacity_and_hasher(capacity, BuildHasherDefault::default())
        })
    }

    /// Drops the buckets older than `oldest_live` (only when that moved: once per bucket).
    fn expire(&mut self, oldest_live: i64) {
        if oldest_live > self.oldest_live {
            self.oldest_live = oldest_live;
            self.buckets.retain(|bucket, _| *bucket >= oldest_live);
        }
    }
}

/// The entries are uniformly distributed keyed hashes already: hashing them again would only
/// cost time.
#[derive(Default)]
struct AlreadyHashed(u64);

impl Hasher for AlreadyHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

impl NonceStore {
    pub fn new(window: i64) -> Self {
        Self {
            window,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            key: RandomState::new(),
        }
    }

    /// Records the use; false when it was already used. Call only after the signature verified,
    /// so unauthenticated traffic cannot fill the store or burn a client's nonces.
    pub fn consume(&self, token: &str, nonce: &str, timestamp: i64, now: i64) -> bool {
        let key = self.key.hash_one((token, nonce, timestamp));
        // Bits 32..40 pick the shard: the table itself uses the low bits (slot) and the top 7
        // (tag), so a shard's keys still vary in both.
        let shard_index = usize::try_from((key >> 32) % SHARDS as u64).unwrap_or(0);
        let Some(shard) = self.shards.get(shard_index) else {
            return false;
        };
        let mut shard = lock(shard);
        // Timestamps older than the window are refused before this point; drop their buckets.
        shard.expire((now - self.window).div_euclid(BUCKET) - 1);
        // A replay carries the same timestamp, so it lands in the same bucket.
        let bucket = timestamp.div_euclid(BUCKET);
        shard
            .bucket(bucket, bucket == now.div_euclid(BUCKET))
            .insert(key)
    }

    /// Drops the buckets that left the window, in every shard (`consume` does it for its own).
    pub fn purge(&self, now: i64) {
        let oldest_live = (now - self.window).div_euclid(BUCKET) - 1;
        for shard in &self.shards {
            lock(shard).expire(oldest_live);
        }
    }

    /// Entries held, for metrics and tests.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| lock(s).buckets.values().map(Entries::len).sum::<usize>())
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

    #[test]
    fn a_new_bucket_starts_as_large_as_the_largest_live_one() {
        let mut shard = Shard::default();
        for key in 0..1000 {
            assert!(shard.bucket(5, true).insert(key));
        }
        assert!(shard.bucket(6, true).is_empty());
        assert!(shard.bucket(6, true).capacity() >= 1000);
        assert!(
            shard.bucket(20, false).capacity() < 1000,
            "a skewed clock's bucket starts small"
        );
        assert!(
            !shard.bucket(5, false).insert(7),
            "the old bucket keeps its entries"
        );
    }
}
