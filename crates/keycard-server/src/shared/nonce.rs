//! The in-memory nonce store: `(token, nonce, timestamp)` is single use. Entries are kept in
//! time buckets and dropped a bucket at a time once they can no longer pass the timestamp check,
//! so memory is bounded by the window times the request rate.

use std::hash::{BuildHasher, DefaultHasher, Hasher, RandomState};
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

/// Entries are 64-bit keyed hashes of `(scope, nonce, timestamp)`, the scope (the token) by its
/// [`scope_digest`]: 8 bytes each (about 10 to 20 with the table's slack; `examples/scale.rs`
/// measures it) instead of the strings, with a key chosen per process so no client can aim for
/// a collision. A replay always hashes the same and is always refused; a collision can only
/// refuse a fresh request, with odds of about entries / 2^64 (10 million entries: 1 in 2
/// trillion requests).
pub struct NonceStore {
    window: i64,
    shards: Vec<Mutex<Shard>>,
    key: RandomState,
}

/// One shard's time buckets, and the oldest bucket that can still hold a live entry.
///
/// The bucket used last is held in the shard itself, and the next request nearly always
/// uses it again (clients' clocks agree within seconds): looking it up reads the line the
/// lock just brought in. In a list apart, it was a cache miss of its own on every request,
/// about half of the nonce prefetch's time (the 256 shards' lists are hundreds of kilobytes
/// at full load, with a bucket per 10 s of the window each). The other buckets are a short
/// list, not a map: the timestamp check bounds them to the window's (about 60 of 10 s each).
/// (A `HashMap` hashed the bucket number with `SipHash` twice per request.)
struct Shard {
    oldest_live: i64,
    /// The bucket used last, if still live.
    recent: Option<(i64, KeySet)>,
    others: Vec<(i64, KeySet)>,
    /// The largest table of the buckets expired last, kept for the next present-time bucket.
    /// Under steady load a bucket expires as a new one begins, of the same size: reusing the
    /// table saves the allocator's round trip to the system, where freed memory comes back
    /// as fresh pages that fault and are zeroed on first touch (slowly on a VM that hands
    /// freed memory back to its host).
    spare: Option<KeySet>,
}

impl Default for Shard {
    fn default() -> Self {
        Self {
            oldest_live: i64::MIN,
            recent: None,
            others: Vec::new(),
            spare: None,
        }
    }
}

impl Shard {
    /// The entries of `bucket`, made if absent; `current` says it is the present time's.
    /// The present time's bucket is made as large as the largest live one: a table that
    /// grows doubles, moving every entry on the request path, and all shards would double
    /// together. Sized from the last one, it does not grow at all while the rate holds.
    /// Buckets of other times (clients with skewed clocks) start small, so a few such
    /// requests never cost a full table.
    fn bucket(&mut self, bucket: i64, current: bool) -> &mut KeySet {
        if !self.use_recent(bucket) {
            let keys = if current {
                KeySet::reuse_or_make(self.spare.take(), self.largest_len())
            } else {
                KeySet::with_capacity(0)
            };
            if let Some(previous) = self.recent.replace((bucket, keys)) {
                self.others.push(previous);
            }
        }
        let recent = self
            .recent
            .get_or_insert_with(|| (bucket, KeySet::with_capacity(0)));
        &mut recent.1
    }

    /// The bucket's entries, if it exists.
    fn find(&mut self, bucket: i64) -> Option<&KeySet> {
        self.use_recent(bucket)
            .then_some(self.recent.as_ref())
            .flatten()
            .map(|(_, keys)| keys)
    }

    /// Makes `bucket` the recent one if it exists (swapped with the one there); whether it
    /// does.
    fn use_recent(&mut self, bucket: i64) -> bool {
        if self.recent.as_ref().is_some_and(|(b, _)| *b == bucket) {
            return true;
        }
        let Some(index) = self.others.iter().position(|(b, _)| *b == bucket) else {
            return false;
        };
        let found = self.others.swap_remove(index);
        if let Some(previous) = self.recent.replace(found) {
            self.others.push(previous);
        }
        true
    }

    fn largest_len(&self) -> usize {
        self.buckets().map(KeySet::len).max().unwrap_or(0)
    }

    fn buckets(&self) -> impl Iterator<Item = &KeySet> {
        self.recent.iter().chain(&self.others).map(|(_, keys)| keys)
    }

    /// Drops the buckets older than `oldest_live` (only when that moved: once per bucket),
    /// keeping the largest one's table as the spare (the previous spare, unused, is dropped).
    fn expire(&mut self, oldest_live: i64) {
        if oldest_live > self.oldest_live {
            self.oldest_live = oldest_live;
            let mut expired = Vec::new();
            self.others.retain_mut(|(bucket, keys)| {
                let live = *bucket >= oldest_live;
                if !live {
                    expired.push(std::mem::take(keys));
                }
                live
            });
            if let Some((_, keys)) = self.recent.take_if(|(b, _)| *b < oldest_live) {
                expired.push(keys);
            }
            self.spare = expired.into_iter().max_by_key(KeySet::slot_count);
        }
    }
}

/// A set of nonzero 64-bit keys, which are uniformly distributed keyed hashes already: a
/// key's low bits are its slot, and a full slot sends it on to the next (linear probing).
/// Keys are never removed (a bucket is dropped whole).
///
/// Not a `HashSet`: its table keeps a control byte per slot apart from the slots, so an
/// insert into a table larger than the cache missed it twice, once in each; here a key is
/// found or placed in one line. The store's tables are that large at full load: all of one
/// bucket's entries (hundreds of thousands) take random places.
#[derive(Default)]
struct KeySet {
    /// A power of two in length (or empty); 0 marks a free slot.
    slots: Vec<u64>,
    len: usize,
}

impl KeySet {
    /// A table that holds `capacity` keys without growing.
    fn with_capacity(capacity: usize) -> Self {
        Self::with_slots(Self::slots_for(capacity))
    }

    /// The table length that holds `capacity` keys at most 7/8 full.
    fn slots_for(capacity: usize) -> usize {
        if capacity == 0 {
            0
        } else {
            (capacity * 8).div_ceil(7).next_power_of_two()
        }
    }

    /// A table that holds `capacity` keys without growing: `spare`, emptied, when it is that
    /// large and no more than twice that (a table much larger than the load needs is let go).
    fn reuse_or_make(spare: Option<Self>, capacity: usize) -> Self {
        let wanted = Self::slots_for(capacity);
        match spare {
            Some(mut keys) if wanted > 0 && (wanted..=2 * wanted).contains(&keys.slots.len()) => {
                keys.slots.fill(0);
                keys.len = 0;
                keys
            }
            _ => Self::with_slots(wanted),
        }
    }

    fn with_slots(slots: usize) -> Self {
        Self {
            slots: vec![0; slots],
            len: 0,
        }
    }

    /// Adds `key` (nonzero); false when it was there already.
    fn insert(&mut self, key: u64) -> bool {
        // Kept at most 7/8 full, so a free slot always ends a probe.
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        // The slot index is masked, so it is always in bounds.
        #[allow(clippy::cast_possible_truncation)]
        let mut at = key as usize & mask;
        loop {
            match self.slots[at] {
                0 => {
                    self.slots[at] = key;
                    self.len += 1;
                    return true;
                }
                held if held == key => return false,
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Prefetches the line of `key`'s first slot (most keys are found or placed there).
    fn prefetch(&self, key: u64) {
        // An empty table has nothing to fetch.
        if let Some(mask) = self.slots.len().checked_sub(1) {
            // Masked, so in bounds.
            #[allow(clippy::cast_possible_truncation)]
            let at = key as usize & mask;
            prefetch_index::prefetch_index(&self.slots, at);
        }
    }

    /// Doubles the table, placing every key again.
    fn grow(&mut self) {
        let old = std::mem::replace(self, Self::with_slots((self.slots.len() * 2).max(8)));
        for key in old.slots.into_iter().filter(|&key| key != 0) {
            self.insert(key);
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn slot_count(&self) -> usize {
        self.slots.len()
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.slots.len() * 7 / 8
    }
}

/// A nonce's scope (a token's public id) as 64 bits, for [`NonceStore::key`]: made once per
/// token where the token is cached, since hashing the 64-character id into every request's
/// key cost about 200 instructions a request (counted). Not keyed: scopes are ids the server
/// made, so no client chooses one to collide with another, and the key over
/// `(digest, nonce, timestamp)` that clients' nonces go into is.
pub fn scope_digest(scope: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(scope.as_bytes());
    hasher.finish()
}

/// A use's keyed hash and the timestamp it was made with (which picks the bucket).
pub struct NonceKey {
    hash: u64,
    timestamp: i64,
}

impl NonceKey {
    /// The timestamp the key was made with.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }
}

/// Bits 32..40 pick the shard: the table itself uses the low bits, so a shard's keys still vary
/// in those.
fn shard_index(hash: u64) -> usize {
    usize::try_from((hash >> 32) % SHARDS as u64).unwrap_or(0)
}

impl NonceStore {
    pub fn new(window: i64) -> Self {
        Self {
            window,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            key: RandomState::new(),
        }
    }

    /// The key of `(scope, nonce, timestamp)`, `scope` given by its [`scope_digest`], for
    /// [`prefetch`](Self::prefetch) and [`consume_key`](Self::consume_key).
    pub fn key(&self, scope: u64, nonce: &str, timestamp: i64) -> NonceKey {
        // Two writes: the fixed-size fields, then the nonce. The message stays unambiguous
        // (SipHash mixes its length in), and each write has a fixed cost: hashing the tuple
        // wrote four times (its `str` ends with a marker byte).
        let mut fixed = [0u8; 16];
        fixed[..8].copy_from_slice(&scope.to_le_bytes());
        fixed[8..].copy_from_slice(&timestamp.to_le_bytes());
        let mut hasher = self.key.build_hasher();
        hasher.write(&fixed);
        hasher.write(nonce.as_bytes());
        NonceKey {
            // Never 0, the free slot's mark (0 and 1 are one key: odds of 2^-63 for a collision).
            hash: hasher.finish().max(1),
            timestamp,
        }
    }

    /// Asks the CPU for the memory where `key` would be found, without changing anything. At
    /// full load the tables are megabytes touched at random, so the slot is a cache miss:
    /// asked for before the signature is checked, it is in the cache when the key is consumed.
    pub fn prefetch(&self, key: &NonceKey) {
        let Some(shard) = self.shards.get(shard_index(key.hash)) else {
            return;
        };
        let bucket = key.timestamp.div_euclid(BUCKET);
        if let Some(keys) = lock(shard).find(bucket) {
            keys.prefetch(key.hash);
        }
    }

    /// Records the use; false when it was already used. Call only after the signature verified,
    /// so unauthenticated traffic cannot fill the store or burn a client's nonces.
    pub fn consume(&self, scope: &str, nonce: &str, timestamp: i64, now: i64) -> bool {
        self.consume_key(&self.key(scope_digest(scope), nonce, timestamp), now)
    }

    /// [`consume`](Self::consume) with the key already made.
    pub fn consume_key(&self, key: &NonceKey, now: i64) -> bool {
        let Some(shard) = self.shards.get(shard_index(key.hash)) else {
            return false;
        };
        let mut shard = lock(shard);
        // Timestamps older than the window are refused before this point; drop their buckets.
        shard.expire((now - self.window).div_euclid(BUCKET) - 1);
        // A replay carries the same timestamp, so it lands in the same bucket.
        let bucket = key.timestamp.div_euclid(BUCKET);
        if bucket < shard.oldest_live {
            // Dropped already: this request's clock was read before the newest one this shard
            // has seen (a request that waited on the directory, or a clock stepped back), and
            // its timestamp has left the window since. Made again, the bucket would be empty
            // and a replay would pass: refused as used.
            return false;
        }
        shard
            .bucket(bucket, bucket == now.div_euclid(BUCKET))
            .insert(key.hash)
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
            .map(|s| lock(s).buckets().map(KeySet::len).sum::<usize>())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scope's digest depends on its text alone (a cached token's and one made on the spot
    /// agree), and tokens' ids, which differ, digest differently.
    #[test]
    fn a_scope_digest_depends_on_its_text_alone() {
        let id = "a".repeat(64);
        assert_eq!(scope_digest(&id), scope_digest(&id.clone()));
        let digests: std::collections::HashSet<u64> = (0..10_000)
            .map(|n| scope_digest(&format!("{n:064x}")))
            .collect();
        assert_eq!(digests.len(), 10_000);
        let store = NonceStore::new(300);
        assert!(store.consume(&id, "n", 1000, 1000));
        assert!(!store.consume_key(&store.key(scope_digest(&id), "n", 1000), 1000));
    }

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

    /// A request whose clock was read long before it reached the store (it waited on the
    /// directory) still passed the window check with that old reading; its bucket had been
    /// dropped meanwhile, and made again empty it let the replay through. Before, this
    /// replay was accepted.
    #[test]
    fn a_replay_with_a_stale_clock_reading_is_refused_after_its_bucket_was_dropped() {
        let store = NonceStore::new(300);
        assert!(store.consume("t", "n", 1000, 1000));
        store.purge(1400);
        assert!(!store.consume("t", "n", 1000, 1290), "the replay");
        // Nothing was made again for it.
        assert_eq!(store.len(), 0);
        // A timestamp still in the window of the newest reading is stored as ever.
        assert!(store.consume("t", "m", 1200, 1400));
    }

    #[test]
    fn a_key_set_finds_every_key_it_holds_through_collisions_wraps_and_growth() {
        let mut keys = KeySet::with_capacity(0);
        // Keys sharing their low bits take the same first slot and probe on, past the end of
        // the table and round to its start.
        let colliding: Vec<u64> = (1..=40).map(|i| (i << 32) | 0xffff_ffff).collect();
        for &key in &colliding {
            assert!(keys.insert(key), "a new key is added");
        }
        for spread in (1..5_000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1) {
            keys.insert(spread);
        }
        for &key in &colliding {
            assert!(
                !keys.insert(key),
                "a held key is found after the table grew"
            );
        }
        for spread in (1..5_000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1) {
            assert!(!keys.insert(spread));
        }
        assert_eq!(keys.len(), 40 + 4_999);
    }

    #[test]
    fn a_key_set_doubles_when_it_grows() {
        let mut keys = KeySet::with_capacity(0);
        let mut sizes = vec![];
        for key in 1..=1_000 {
            keys.insert(key);
            if sizes.last() != Some(&keys.slots.len()) {
                sizes.push(keys.slots.len());
            }
        }
        assert_eq!(sizes, [8, 16, 32, 64, 128, 256, 512, 1024, 2048]);
    }

    #[test]
    fn a_key_set_made_for_n_keys_takes_them_without_growing() {
        let mut keys = KeySet::with_capacity(1_000);
        let slots = keys.slots.len();
        for key in 1..=1_000 {
            assert!(keys.insert(key));
        }
        assert_eq!(keys.slots.len(), slots);
        assert!(keys.insert(1_001) && keys.len() == 1_001);
    }

    #[test]
    fn a_new_bucket_starts_as_large_as_the_largest_live_one() {
        let mut shard = Shard::default();
        for key in 0..1000 {
            assert!(shard.bucket(5, true).insert(key));
        }
        assert_eq!(shard.bucket(6, true).len(), 0);
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

    /// Under steady load the bucket that expires and the one that begins are the same size:
    /// the new one takes the old one's table, emptied, instead of fresh memory.
    #[test]
    fn a_new_bucket_reuses_the_table_of_the_one_that_expired() {
        let mut shard = Shard::default();
        for key in 1..=1000 {
            assert!(shard.bucket(5, true).insert(key));
        }
        for key in 1..=1000 {
            assert!(
                shard.bucket(6, true).insert(key),
                "another bucket, another use"
            );
        }
        let expiring = shard
            .recent
            .iter()
            .chain(&shard.others)
            .find(|(bucket, _)| *bucket == 5)
            .map(|(_, keys)| keys.slots.as_ptr())
            .expect("bucket 5 is live");
        shard.expire(6);
        assert!(shard.find(5).is_none(), "bucket 5 expired");
        let keys = shard.bucket(7, true);
        assert_eq!(
            keys.slots.as_ptr(),
            expiring,
            "bucket 7 took bucket 5's table"
        );
        assert_eq!(keys.len(), 0);
        for key in 1..=1000 {
            assert!(
                keys.insert(key),
                "an emptied table holds none of the old keys"
            );
        }
        assert!(shard.spare.is_none());

        // A spare far larger than the load now needs is let go, and so is an unused one at the
        // next expiry.
        let mut shard = Shard::default();
        for key in 1..=10_000 {
            shard.bucket(5, true).insert(key);
        }
        shard.expire(6);
        let large = shard.spare.as_ref().map(KeySet::slot_count);
        assert!(large >= Some(10_000));
        assert_eq!(
            shard.bucket(8, true).slot_count(),
            0,
            "no live bucket to size from"
        );
        assert!(shard.spare.is_none(), "the spare was let go");
        assert_eq!(
            KeySet::reuse_or_make(Some(KeySet::with_capacity(10_000)), 100).slot_count(),
            KeySet::slots_for(100)
        );
        assert_eq!(
            KeySet::reuse_or_make(Some(KeySet::with_capacity(200)), 100).slot_count(),
            KeySet::slots_for(200),
            "twice as large is kept"
        );
    }

    #[test]
    fn the_bucket_used_last_is_held_apart_and_found_and_expired_like_the_others() {
        let mut shard = Shard::default();
        let recent = |shard: &Shard| shard.recent.as_ref().map(|(b, _)| *b);
        // A skewed clock makes a later bucket first; the present time's comes next.
        assert!(shard.bucket(9, false).insert(90));
        assert!(shard.bucket(5, true).insert(50));
        assert_eq!(recent(&shard), Some(5));
        // Found among the others, a bucket becomes the recent one, entries and all.
        assert!(!shard.bucket(9, true).insert(90), "its entry was kept");
        assert_eq!(recent(&shard), Some(9));
        assert!(shard.find(5).is_some() && recent(&shard) == Some(5));
        assert!(shard.find(7).is_none() && recent(&shard) == Some(5));
        assert!(!shard.bucket(5, false).insert(50));
        assert_eq!(shard.buckets().map(KeySet::len).sum::<usize>(), 2);
        shard.expire(6);
        assert!(shard.find(5).is_none() && shard.find(9).is_some());
        shard.expire(10);
        assert!(shard.recent.is_none() && shard.find(9).is_none());
        assert!(
            shard.bucket(12, true).insert(90),
            "a new bucket after all expired"
        );
    }

    #[test]
    fn a_prefetched_key_is_the_same_use_as_its_strings() {
        let store = NonceStore::new(300);
        let key = store.key(scope_digest("t"), "nonce1", 1000);
        // Before any bucket exists, and after: prefetching changes nothing.
        store.prefetch(&key);
        assert!(store.consume_key(&key, 1000));
        store.prefetch(&key);
        assert_eq!(store.len(), 1);
        assert!(
            !store.consume("t", "nonce1", 1000, 1001),
            "a replay by its strings"
        );
        assert!(
            !store.consume_key(&store.key(scope_digest("t"), "nonce1", 1000), 1001),
            "and by its key"
        );
        assert!(store.consume_key(&store.key(scope_digest("t"), "nonce1", 1001), 1001));
        assert_eq!(key.timestamp(), 1000);
    }
}
