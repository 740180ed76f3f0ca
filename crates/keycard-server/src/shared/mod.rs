//! Replay and concurrency state: the nonces already used and the concurrency slots held. On one
//! node it lives in this process ([`nonce`], [`slots`]); when several nodes serve the same
//! directory it lives on Redis ([`on_redis`]), so a replay sent to another node is still a
//! replay and an account's limit holds across nodes. The pipeline asks one question of either:
//! [`SharedState::admit`].

pub mod nonce;
pub mod on_redis;
pub mod slots;

use std::sync::Arc;

use crate::config::ServerConfig;

pub enum SharedState {
    /// This process only (the embedded default).
    Local {
        nonces: nonce::NonceStore,
        slots: slots::Slots,
    },
    /// Redis, shared by every node.
    Redis(Arc<on_redis::RedisState>),
}

/// One use of a nonce: `(scope, nonce, timestamp)` must be new.
pub struct NonceUse<'a> {
    pub scope: Scope<'a>,
    pub nonce: &'a str,
    pub timestamp: i64,
    pub now: i64,
}

/// What a nonce is unique within: the token (or the consumer or request token on the
/// three-step flow's first steps).
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub text: &'a str,
    /// [`nonce::scope_digest`] of `text`: this process's store keys nonces by it.
    pub digest: u64,
}

impl<'a> Scope<'a> {
    /// The scope named by `text`, digested now (a cached token keeps its digest instead).
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            digest: nonce::scope_digest(text),
        }
    }
}

/// A concurrency pool and its limit.
#[derive(Clone, Copy)]
pub struct Pool<'a> {
    pub name: &'a str,
    pub limit: u32,
}

/// What [`SharedState::admit`] decided.
pub enum Admission {
    /// The nonce was new (and is now used); the slot, when one was asked for.
    Fresh(Option<Slot>),
    /// The nonce was used before.
    Replay,
    /// The nonce was new (and is now used) but the pool is full.
    PoolFull,
    /// Redis lost its data (restarted or flushed) less than a timestamp window ago: a request
    /// timestamped before the floor that sets may have been accepted already and its nonce is
    /// forgotten, so it is refused (fail closed) until clients' timestamps pass the floor.
    StateReset,
}

/// The shared state could not be reached: the caller must refuse (fail closed).
#[derive(Debug)]
pub struct Unreachable(pub String);

/// A held concurrency slot; dropping it gives it back.
pub enum Slot {
    Local(slots::LocalSlot),
    Lease(on_redis::Lease),
}

impl SharedState {
    /// From the settings: Redis when `redis_url` is set, else this process.
    pub fn from_config(config: &ServerConfig) -> anyhow::Result<Self> {
        Ok(match &config.redis_url {
            Some(url) => Self::Redis(on_redis::RedisState::connect(url, config)?),
            None => Self::Local {
                nonces: nonce::NonceStore::new(config.timestamp_window),
                slots: slots::Slots::default(),
            },
        })
    }

    /// Makes ready for [`admit`](Self::admit)ting `nonce`, before the checks that come
    /// first: in this process, the key's slot is asked of the memory (a cache miss at full
    /// load) while they run. The key returned spares `admit` making it again.
    pub fn prepare(&self, nonce: &NonceUse<'_>) -> Option<nonce::NonceKey> {
        match self {
            Self::Local { nonces, .. } => {
                let key = nonces.key(nonce.scope.digest, nonce.nonce, nonce.timestamp);
                nonces.prefetch(&key);
                Some(key)
            }
            Self::Redis(_) => None,
        }
    }

    /// Uses the nonce and, when `pool` is given and the nonce was new, takes a slot from it,
    /// in one step (on Redis, one round trip). Call only after the signature verified, so
    /// unauthenticated traffic cannot fill the store or burn a client's nonces. `prepared`
    /// is [`prepare`](Self::prepare)'s key for the same scope and nonce; it is used only if
    /// made with the same timestamp.
    pub async fn admit(
        &self,
        nonce: &NonceUse<'_>,
        prepared: Option<nonce::NonceKey>,
        pool: Option<Pool<'_>>,
    ) -> Result<Admission, Unreachable> {
        match self {
            Self::Local { nonces, slots } => {
                let key = prepared
                    .filter(|key| key.timestamp() == nonce.timestamp)
                    .unwrap_or_else(|| {
                        nonces.key(nonce.scope.digest, nonce.nonce, nonce.timestamp)
                    });
                if !nonces.consume_key(&key, nonce.now) {
                    return Ok(Admission::Replay);
                }
                Ok(match pool {
                    None => Admission::Fresh(None),
                    Some(pool) => slots
                        .acquire(pool.name, pool.limit)
                        .map_or(Admission::PoolFull, |slot| {
                            Admission::Fresh(Some(Slot::Local(slot)))
                        }),
                })
            }
            // Boxed: a round trip's future is large, and the local state's requests should
            // not carry it.
            Self::Redis(redis) => Box::pin(redis.admit(nonce, pool)).await,
        }
    }

    /// Whether the state can be used now (for `/readyz`).
    pub async fn check(&self) -> Result<(), Unreachable> {
        match self {
            Self::Local { .. } => Ok(()),
            Self::Redis(redis) => redis.ping().await,
        }
    }

    /// Nonces held in this process (`None` on Redis, which holds them itself).
    pub fn local_nonces(&self) -> Option<usize> {
        match self {
            Self::Local { nonces, .. } => Some(nonces.len()),
            Self::Redis(_) => None,
        }
    }

    /// Slots this node holds now, by pool, for metrics.
    pub fn slots_held(&self) -> Vec<(String, u32)> {
        match self {
            Self::Local { slots, .. } => slots.snapshot(),
            Self::Redis(redis) => redis.held_by_pool(),
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Local { .. } => "memory",
            Self::Redis(_) => "redis",
        }
    }
}

/// A mutex's guard; a poisoned lock only means a panic elsewhere while holding it, and the
/// maps it guards are still whole.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> SharedState {
        SharedState::Local {
            nonces: nonce::NonceStore::new(300),
            slots: slots::Slots::default(),
        }
    }

    fn use_at(timestamp: i64) -> NonceUse<'static> {
        NonceUse {
            scope: Scope::new("token"),
            nonce: "nonce",
            timestamp,
            now: 1000,
        }
    }

    async fn fresh(
        state: &SharedState,
        nonce: &NonceUse<'_>,
        prepared: Option<nonce::NonceKey>,
    ) -> bool {
        matches!(
            state.admit(nonce, prepared, None).await,
            Ok(Admission::Fresh(None))
        )
    }

    #[tokio::test]
    async fn a_prepared_key_counts_only_for_its_own_timestamp() {
        let state = local();
        let prepared = state.prepare(&use_at(1000));
        // Prepared for 1000, admitted at 1001: the use of 1001 is recorded, not 1000's.
        assert!(fresh(&state, &use_at(1001), prepared).await);
        assert!(fresh(&state, &use_at(1000), None).await);
        assert!(!fresh(&state, &use_at(1001), None).await, "1001 was used");
        let prepared = state.prepare(&use_at(1000));
        assert!(
            !fresh(&state, &use_at(1000), prepared).await,
            "a replay, prepared or not"
        );
    }
}
