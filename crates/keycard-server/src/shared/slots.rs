//! Concurrency slots in this process: a counter per pool (an integration with its own limit, or
//! the account's unallocated pool). A slot is a guard: dropping it (response done, or client
//! gone and the handler dropped) gives it back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::lock;

#[derive(Default)]
pub struct Slots {
    /// Pool names are the server's own (`integration:<id>`, `account:<id>`), so a fast hasher
    /// (foldhash, seeded per process) is safe where `SipHash` cost a few hundred instructions.
    pools: Mutex<HashMap<String, Arc<AtomicU32>, foldhash::fast::RandomState>>,
}

/// A held slot.
pub struct LocalSlot {
    counter: Arc<AtomicU32>,
}

impl Drop for LocalSlot {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Slots {
    /// Takes a slot from `pool` if fewer than `limit` are in use.
    pub fn acquire(&self, pool: &str, limit: u32) -> Option<LocalSlot> {
        let counter = {
            let mut pools = lock(&self.pools);
            // Look up before inserting: `entry` would allocate the key on every request.
            match pools.get(pool) {
                Some(counter) => counter.clone(),
                None => pools.entry(pool.to_owned()).or_default().clone(),
            }
        };
        let mut current = counter.load(Ordering::Acquire);
        loop {
            if current >= limit {
                return None;
            }
            match counter.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(LocalSlot { counter }),
                Err(actual) => current = actual,
            }
        }
    }

    pub fn in_use(&self, pool: &str) -> u32 {
        lock(&self.pools)
            .get(pool)
            .map_or(0, |c| c.load(Ordering::Acquire))
    }

    /// Every pool seen and its slots in use now, for metrics.
    pub fn snapshot(&self) -> Vec<(String, u32)> {
        let mut pools: Vec<(String, u32)> = lock(&self.pools)
            .iter()
            .map(|(pool, c)| (pool.clone(), c.load(Ordering::Acquire)))
            .collect();
        pools.sort();
        pools
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_returns() {
        let slots = Slots::default();
        let held: Vec<LocalSlot> = (0..5).map(|_| slots.acquire("a", 5).unwrap()).collect();
        assert!(slots.acquire("a", 5).is_none());
        assert!(slots.acquire("b", 5).is_some());
        drop(held);
        assert_eq!(slots.in_use("a"), 0);
        assert!(slots.acquire("a", 5).is_some());
    }
}
