//! Replay and concurrency state on Redis, shared by every node.
//!
//! - A nonce use is `SET key 1 NX EX ttl`: atomic, so of two nodes given the same request only
//!   one succeeds. The key is a SHA-256 of `(scope, nonce, timestamp)` (fixed size, no client
//!   bytes in key names); it lives until the timestamp leaves the window.
//! - A concurrency slot is a lease: a member of the pool's sorted set scored with its expiry
//!   (Redis's clock, so node clocks do not matter). Expired leases are dropped before counting,
//!   so a node that dies gives its slots back within the lease time. This node renews the leases
//!   it holds every third of the lease time and removes each when its response is done.
//! - A dataset that lost its nonces (Redis restarted without them, or was flushed) has lost its
//!   `epoch` key too. The script then sets a floor one timestamp window past Redis's clock and
//!   refuses (503) every request timestamped at or before it: any of them may have been
//!   accepted already, even from a client whose clock runs ahead. Logins resume on their own
//!   once clients' timestamps pass the floor. To avoid the hold, run Redis so that it keeps
//!   everything or nothing (AOF with `appendfsync always`, no RDB snapshots); on a first
//!   deployment, when nothing was ever accepted, `SET <prefix>epoch 0` skips it
//!   (docs/deploy.md).
//! - Both happen in one script, one round trip per request. Every call has a deadline; when
//!   Redis cannot be reached in time the caller refuses the request (fail closed), and the
//!   connection manager reconnects on its own.
//!
//! - The three-step flow's pending request tokens ([`crate::flow`]) are plain keys with an
//!   expiry (`put_counted`, which also keeps a sorted set of an integration's pending keys
//!   to bound them; `fetch`; `take` = `GETDEL`; `swap_if` = compare and swap), sealed by the
//!   caller.
//!
//! Single Redis server (or a failover pair): the script touches two keys, which Redis Cluster
//! would refuse unless they shared a hash slot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::{Admission, NonceUse, Pool, Slot, Unreachable, lock};
use crate::config::ServerConfig;

/// KEYS: nonce, epoch, pool (optional). ARGV: nonce ttl (s), request timestamp, window (s),
/// then with a pool: limit, lease member, lease (ms). Returns 0 replay, 1 admitted, 2 pool full (the nonce is used
/// in both), 3 refused: the dataset was reset within the window (see [`Admission::StateReset`]).
const ADMIT: &str = r"
local t = redis.call('TIME')
local floor = redis.call('GET', KEYS[2])
if not floor then
  floor = t[1] + tonumber(ARGV[3])
  redis.call('SET', KEYS[2], floor)
end
if tonumber(ARGV[2]) <= tonumber(floor) then return 3 end
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
if #KEYS < 3 then return 1 end
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[4]) then return 2 end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[6]), ARGV[5])
redis.call('PEXPIRE', KEYS[3], 2 * tonumber(ARGV[6]))
return 1
";

/// KEYS: key, count set. ARGV: value, ttl (ms), limit. Sets the key with its expiry unless the
/// set's live members (scored by expiry, Redis's clock) already number the limit; the key
/// joins them. Returns 1 set, 0 refused.
const PUT_COUNTED: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), KEYS[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
";

/// KEYS: key. ARGV: expected value, new value. Compare and swap, keeping the expiry.
const SWAP: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
";

/// ARGV: lease (ms), then pool key and member pairs. Extends the leases still present.
const RENEW: &str = r"
local t = redis.call('TIME')
local expiry = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  if redis.call('ZADD', ARGV[i], 'XX', 'CH', expiry, ARGV[i + 1]) == 1 then
    redis.call('PEXPIRE', ARGV[i], 2 * tonumber(ARGV[1]))
  end
end
return 1
";

/// Leases this node holds: id → (pool key, pool name).
type HeldLeases = HashMap<u64, (Arc<str>, Arc<str>)>;

pub struct RedisState {
    connection: ConnectionManager,
    prefix: String,
    /// Holds the time this Redis dataset began (see [`Admission::StateReset`]).
    epoch_key: String,
    window: i64,
    lease_ms: u64,
    deadline: Duration,
    /// This process's random id: lease members are `<node>:<n>`.
    node: String,
    next_lease: AtomicU64,
    /// Leases this node holds: id → (pool key, pool name), for renewal and metrics.
    held: Arc<Mutex<HeldLeases>>,
    releases: mpsc::UnboundedSender<u64>,
    admit: Script,
    swap: Script,
    put_counted: Script,
}

/// A slot held on Redis; dropping it removes the lease (in the background, in batches).
pub struct Lease {
    id: u64,
    releases: mpsc::UnboundedSender<u64>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        // The releaser is gone only at shutdown; then the lease expires on its own.
        let _ = self.releases.send(self.id);
    }
}

impl RedisState {
    /// Prepares the connection (made on first use, so a node starts while Redis is away and
    /// refuses until it is back) and starts the lease renewer and releaser.
    pub fn connect(
        url: &crate::config::RedisUrl,
        config: &ServerConfig,
    ) -> anyhow::Result<Arc<Self>> {
        let client = redis::Client::open(url.expose())
            .map_err(|error| anyhow::anyhow!("the Redis URL is not valid: {:?}", error.kind()))?;
        let deadline = Duration::from_millis(config.redis_timeout_ms.max(1));
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(deadline))
            .set_response_timeout(Some(deadline))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|error| anyhow::anyhow!("cannot prepare the Redis connection: {error}"))?;
        let (releases, finished) = mpsc::unbounded_channel();
        let node = keycard_store::crypto::random_hex(8)
            .map_err(|error| anyhow::anyhow!("no randomness for the node id: {error}"))?;
        let state = Arc::new(Self {
            connection,
            prefix: config.redis_prefix.clone(),
            epoch_key: format!("{}epoch", config.redis_prefix),
            window: config.timestamp_window,
            lease_ms: config.slot_lease_ms.max(30),
            deadline,
            node,
            next_lease: AtomicU64::new(0),
            held: Arc::default(),
            releases,
            admit: Script::new(ADMIT),
            swap: Script::new(SWAP),
            put_counted: Script::new(PUT_COUNTED),
        });
        tokio::spawn(release(
            state.connection.clone(),
            Arc::clone(&state.held),
            finished,
            state.node.clone(),
        ));
        tokio::spawn(renew(
            state.connection.clone(),
            Arc::downgrade(&state.held),
            state.lease_ms,
            state.node.clone(),
        ));
        tokio::spawn(warn_of_eviction(Arc::downgrade(&state)));
        Ok(state)
    }

    /// Redis's `maxmemory-policy`; `None` when Redis does not say (unreachable, or a managed
    /// service that disables `CONFIG`).
    pub async fn eviction_policy(&self) -> Option<String> {
        let mut connection = self.connection.clone();
        let answer: Vec<String> = self
            .bounded(
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("maxmemory-policy")
                    .query_async(&mut connection),
            )
            .await
            .ok()?;
        answer.into_iter().nth(1)
    }

    pub async fn admit(
        &self,
        nonce: &NonceUse<'_>,
        pool: Option<Pool<'_>>,
    ) -> Result<Admission, Unreachable> {
        let ttl = nonce_ttl(nonce.timestamp, self.window, nonce.now);
        let mut call = self.admit.prepare_invoke();
        let timestamp = nonce.timestamp.to_be_bytes();
        call.key(self.hashed_key(
            "n",
            &[
                nonce.scope.text.as_bytes(),
                nonce.nonce.as_bytes(),
                &timestamp,
            ],
        ))
        .key(&self.epoch_key)
        .arg(ttl)
        .arg(nonce.timestamp)
        .arg(self.window);
        // The lease is held (and renewed) from before the call, behind a guard whose drop
        // removes it: when the call fails, times out or is dropped (the client went away)
        // after Redis ran the script, the lease is released, not left to fill the pool until
        // it expires. Removing a lease that was never added is harmless (and follows the
        // script on the same connection).
        let lease = pool.map(|pool| {
            let id = self.next_lease.fetch_add(1, Ordering::Relaxed);
            let key: Arc<str> = format!("{}slots:{}", self.prefix, pool.name).into();
            call.key(&*key)
                .arg(pool.limit)
                .arg(member(&self.node, id))
                .arg(self.lease_ms);
            self.held_map().insert(id, (key, pool.name.into()));
            Lease {
                id,
                releases: self.releases.clone(),
            }
        });
        let mut connection = self.connection.clone();
        let answer: i64 = self.bounded(call.invoke_async(&mut connection)).await?;
        Ok(match (answer, lease) {
            (0, _) => Admission::Replay,
            (2, _) => Admission::PoolFull,
            (3, _) => Admission::StateReset,
            (_, None) => Admission::Fresh(None),
            (_, Some(lease)) => Admission::Fresh(Some(Slot::Lease(lease))),
        })
    }

    pub async fn ping(&self) -> Result<(), Unreachable> {
        let mut connection = self.connection.clone();
        let _: String = self
            .bounded(redis::cmd("PING").query_async(&mut connection))
            .await?;
        Ok(())
    }

    /// The key `<prefix><kind>:<16 bytes of SHA-256 over parts>`, each part length-prefixed:
    /// fixed size, and no client bytes end up in key names.
    pub fn hashed_key(&self, kind: &str, parts: &[&[u8]]) -> Vec<u8> {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        let digest = hasher.finalize();
        let mut key = Vec::with_capacity(self.prefix.len() + kind.len() + 1 + 16);
        key.extend_from_slice(self.prefix.as_bytes());
        key.extend_from_slice(kind.as_bytes());
        key.push(b':');
        key.extend_from_slice(&digest[..16]);
        key
    }

    /// `SET key value PX ttl_ms` unless `count_key`'s live members (a sorted set scored by
    /// expiry, Redis's clock) already number `limit`; the key joins them. Whether it was set.
    pub async fn put_counted(
        &self,
        key: &[u8],
        value: &[u8],
        ttl_ms: u64,
        count_key: &[u8],
        limit: usize,
    ) -> Result<bool, Unreachable> {
        let mut connection = self.connection.clone();
        let mut call = self.put_counted.prepare_invoke();
        call.key(key)
            .key(count_key)
            .arg(value)
            .arg(ttl_ms.max(1))
            .arg(limit);
        let set: i64 = self.bounded(call.invoke_async(&mut connection)).await?;
        Ok(set == 1)
    }

    /// Takes `member` out of the sorted set `count_key` ([`RedisState::put_counted`]).
    pub async fn uncount(&self, count_key: &[u8], member: &[u8]) -> Result<(), Unreachable> {
        let mut connection = self.connection.clone();
        let command = redis::cmd("ZREM").arg(count_key).arg(member).clone();
        self.bounded(command.query_async::<i64>(&mut connection))
            .await
            .map(drop)
    }

    /// `GET key`.
    pub async fn fetch(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Unreachable> {
        let mut connection = self.connection.clone();
        let command = redis::cmd("GET").arg(key).clone();
        self.bounded(command.query_async(&mut connection)).await
    }

    /// `GETDEL key`: the value, gone for everyone else.
    pub async fn take(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Unreachable> {
        let mut connection = self.connection.clone();
        let command = redis::cmd("GETDEL").arg(key).clone();
        self.bounded(command.query_async(&mut connection)).await
    }

    /// Replaces the value only if it is still `old` (keeping its expiry): compare and swap.
    pub async fn swap_if(&self, key: &[u8], old: &[u8], new: &[u8]) -> Result<bool, Unreachable> {
        let mut connection = self.connection.clone();
        let mut call = self.swap.prepare_invoke();
        call.key(key).arg(old).arg(new);
        let swapped: i64 = self.bounded(call.invoke_async(&mut connection)).await?;
        Ok(swapped == 1)
    }

    /// Leases held by this node, by pool name.
    pub fn held_by_pool(&self) -> Vec<(String, u32)> {
        let mut counts: HashMap<String, u32> = HashMap::new();
        for (_, name) in self.held_map().values() {
            *counts.entry(name.to_string()).or_default() += 1;
        }
        let mut pools: Vec<_> = counts.into_iter().collect();
        pools.sort();
        pools
    }

    fn held_map(&self) -> std::sync::MutexGuard<'_, HeldLeases> {
        lock(&self.held)
    }

    /// Runs a Redis call with this node's deadline; any failure means "unreachable".
    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, Unreachable> {
        match tokio::time::timeout(self.deadline, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Unreachable(describe(&error))),
            Err(_) => Err(Unreachable(format!(
                "no answer from Redis within {} ms",
                self.deadline.as_millis()
            ))),
        }
    }
}

/// How much longer than its timestamp's window a nonce is kept: a request is accepted while
/// the clock of the node it reaches says its timestamp is in the window, so the key must
/// outlive the window on the slowest node's clock, and on a request that read the clock
/// early and waited (on the directory, say) before it reached Redis. Nodes' clocks must agree
/// within this (docs/deploy.md). Before, keys outlived the window by 1 s on the clock of the
/// node that stored them: a replay sent to a node 1 s behind just after that was accepted.
const NODE_CLOCK_MARGIN_SECS: i64 = 60;

/// The lifetime (s) of the nonce key of a request with `timestamp`, accepted at `now`.
fn nonce_ttl(timestamp: i64, window: i64, now: i64) -> i64 {
    (timestamp + window - now).max(0) + NODE_CLOCK_MARGIN_SECS
}

/// Whether a `maxmemory-policy` may drop nonce keys before they expire: every policy but
/// `noeviction` (the `volatile-*` ones pick among keys with an expiry, which every nonce has).
fn evicts_nonces(policy: &str) -> bool {
    policy != "noeviction"
}

/// Once Redis answers, says loudly when it may evict nonces: a replay of an evicted one would
/// be accepted (docs/deploy.md, "No eviction"). Tries for a minute, then gives up quietly.
async fn warn_of_eviction(state: Weak<RedisState>) {
    for _ in 0..60 {
        let Some(redis) = state.upgrade() else { return };
        if redis.ping().await.is_ok() {
            match redis.eviction_policy().await {
                Some(policy) if evicts_nonces(&policy) => tracing::error!(
                    %policy,
                    "Redis may evict nonces before they expire (maxmemory-policy {policy}), and a replay of an evicted one would be accepted: set maxmemory-policy noeviction"
                ),
                Some(_) => {}
                None => tracing::info!(
                    "Redis does not say its maxmemory-policy: make sure it is noeviction"
                ),
            }
            return;
        }
        drop(redis);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn member(node: &str, id: u64) -> String {
    format!("{node}:{id}")
}

/// The error without anything from the URL (a password could be there).
fn describe(error: &RedisError) -> String {
    format!(
        "Redis {:?}: {}",
        error.kind(),
        error.detail().unwrap_or("unavailable")
    )
}

/// Removes finished leases, many per round trip. A lease whose removal fails expires on its
/// own (it is no longer renewed).
async fn release(
    connection: ConnectionManager,
    held: Arc<Mutex<HeldLeases>>,
    mut released: mpsc::UnboundedReceiver<u64>,
    node: String,
) {
    let mut ids = Vec::with_capacity(256);
    while released.recv_many(&mut ids, 256).await > 0 {
        let mut pipe = redis::pipe();
        {
            let mut held = lock(&held);
            for id in ids.drain(..) {
                if let Some((key, _)) = held.remove(&id) {
                    pipe.zrem(&*key, member(&node, id)).ignore();
                }
            }
        }
        let mut connection = connection.clone();
        if let Err(error) = pipe.query_async::<()>(&mut connection).await {
            tracing::warn!(error = %describe(&error), "cannot release concurrency leases; they expire on their own");
        }
    }
}

/// Extends the leases this node holds, every third of the lease time, until the state is gone.
async fn renew(
    connection: ConnectionManager,
    held: Weak<Mutex<HeldLeases>>,
    lease_ms: u64,
    node: String,
) {
    let script = Script::new(RENEW);
    let mut ticker = tokio::time::interval(Duration::from_millis(lease_ms / 3));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(held) = held.upgrade() else { return };
        let mut call = script.prepare_invoke();
        call.arg(lease_ms);
        let mut any = false;
        for (id, (key, _)) in lock(&held).iter() {
            call.arg(&**key).arg(member(&node, *id));
            any = true;
        }
        drop(held);
        if !any {
            continue;
        }
        let mut connection = connection.clone();
        if let Err(error) = call.invoke_async::<i64>(&mut connection).await {
            tracing::warn!(error = %describe(&error), "cannot renew concurrency leases");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::Scope;

    /// A counted key is set only while its set has room; one taken out frees its place.
    #[tokio::test]
    async fn counted_keys_stop_at_their_limit() {
        let url = std::env::var("KEYCARD_TEST_REDIS_URL").expect(
            "KEYCARD_TEST_REDIS_URL is not set: run the tests with scripts/test, which starts a throwaway Redis",
        );
        let prefix = format!("kc-test-{}:", keycard_store::crypto::random_hex(6).unwrap());
        let config = ServerConfig {
            redis_prefix: prefix.clone(),
            ..ServerConfig::default()
        };
        let state = RedisState::connect(&crate::config::RedisUrl::new(url), &config).unwrap();
        let count = format!("{prefix}count");
        let keys: Vec<String> = (0..3).map(|n| format!("{prefix}key{n}")).collect();
        let put =
            |n: usize| state.put_counted(keys[n].as_bytes(), b"v", 60_000, count.as_bytes(), 2);
        assert!(put(0).await.unwrap());
        assert!(put(1).await.unwrap());
        assert!(!put(2).await.unwrap(), "the set is full");
        assert_eq!(
            state.fetch(keys[2].as_bytes()).await.unwrap(),
            None,
            "nothing set"
        );
        state
            .uncount(count.as_bytes(), keys[0].as_bytes())
            .await
            .unwrap();
        assert!(put(2).await.unwrap());
        assert_eq!(
            state.fetch(keys[2].as_bytes()).await.unwrap(),
            Some(b"v".to_vec())
        );
    }

    /// Only `noeviction` keeps every nonce until it expires; the test Redis says its policy.
    #[tokio::test]
    async fn the_eviction_policy_is_read_and_judged() {
        assert!(!evicts_nonces("noeviction"));
        for policy in [
            "volatile-lru",
            "allkeys-lru",
            "volatile-ttl",
            "allkeys-random",
        ] {
            assert!(evicts_nonces(policy), "{policy}");
        }
        let url = std::env::var("KEYCARD_TEST_REDIS_URL").expect(
            "KEYCARD_TEST_REDIS_URL is not set: run the tests with scripts/test, which starts a throwaway Redis",
        );
        let state =
            RedisState::connect(&crate::config::RedisUrl::new(url), &ServerConfig::default())
                .unwrap();
        let policy = state.eviction_policy().await;
        assert_eq!(policy.as_deref(), Some("noeviction"), "Redis's default");
    }

    /// A lease whose admission was given up (the client went away) while Redis was running
    /// the script is released, not held until it expires: a pool of 1 admits the next
    /// request. Before, the lease was recorded only when the answer came, so a dropped call
    /// left it in the pool for `slot_lease_ms`, and resetting HTTP/2 streams could fill an
    /// account's pool for everyone.
    #[tokio::test]
    async fn a_lease_given_up_during_the_call_is_released() {
        let url = std::env::var("KEYCARD_TEST_REDIS_URL").expect(
            "KEYCARD_TEST_REDIS_URL is not set: run the tests with scripts/test, which starts a throwaway Redis",
        );
        let prefix = format!("kc-test-{}:", keycard_store::crypto::random_hex(6).unwrap());
        let config = ServerConfig {
            redis_prefix: prefix.clone(),
            redis_timeout_ms: 5_000,
            slot_lease_ms: 60_000,
            ..ServerConfig::default()
        };
        let state =
            RedisState::connect(&crate::config::RedisUrl::new(url.clone()), &config).unwrap();
        let client = redis::Client::open(url).unwrap();
        let mut admin = client.get_multiplexed_async_connection().await.unwrap();
        let () = redis::cmd("SET")
            .arg(format!("{prefix}epoch"))
            .arg(0)
            .query_async(&mut admin)
            .await
            .unwrap();
        let pool = || {
            Some(Pool {
                name: "acct",
                limit: 1,
            })
        };
        let use_of = |nonce| NonceUse {
            scope: Scope::new("token"),
            nonce,
            timestamp: 1_000,
            now: 1_000,
        };
        // Loads the script, so the paused call below is the script itself.
        let first = state.admit(&use_of("warm"), pool()).await.unwrap();
        assert!(matches!(first, Admission::Fresh(Some(_))));
        drop(first);
        tokio::time::sleep(Duration::from_millis(200)).await;

        let () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(400)
            .arg("WRITE")
            .query_async(&mut admin)
            .await
            .unwrap();
        let given_up = tokio::time::timeout(
            Duration::from_millis(100),
            state.admit(&use_of("dropped"), pool()),
        )
        .await;
        assert!(given_up.is_err(), "the call was still waiting on the pause");
        // The script runs when the pause ends; the release follows it.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let next = state.admit(&use_of("next"), pool()).await.unwrap();
        assert!(
            matches!(next, Admission::Fresh(Some(_))),
            "the pool was left full"
        );
    }

    /// The key outlives the window on a node whose clock is up to the margin behind, and on
    /// a request that read the clock that long before reaching Redis.
    #[test]
    fn a_nonce_outlives_its_window_on_a_node_a_minute_behind() {
        let (window, stored_at) = (300, 1_000_000);
        for timestamp in [stored_at - window, stored_at, stored_at + window] {
            let expires = stored_at + nonce_ttl(timestamp, window, stored_at);
            // The last moment any node accepts the timestamp, on a clock 59 s behind.
            let last_accepted = timestamp + window + 59;
            assert!(expires > last_accepted, "timestamp {timestamp}");
        }
    }
}
