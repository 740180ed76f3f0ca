//! The three-step authorization flow's pending requests: a request token from
//! `/rest/requesttoken`, then the user's login and Allow on `authorizetoken.nl`, then one
//! exchange on `/rest/accesstoken`. They live minutes and are single use. One node keeps them
//! in memory; nodes that share Redis keep them there, sealed under the master key, so each
//! step may reach a different node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keycard_core::{AccountId, Secret};
use keycard_store::Store;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::shared::on_redis::RedisState;
use crate::shared::{SharedState, Unreachable, lock};

/// A request token on its way to becoming an access token.
#[derive(Clone)]
pub struct Pending {
    pub account: AccountId,
    pub integration_id: i64,
    pub consumer_key: String,
    pub secret: Secret,
    pub callback: String,
    pub expires_at: i64,
    pub stage: Stage,
}

#[derive(Clone, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for the user to log in on the authorize page.
    Issued,
    /// Logged in; the consent form must come back with this session value.
    LoggedIn { user_id: i64, session: Secret },
    /// Allowed: the verifier the callback carried, for the user and role chosen.
    Allowed {
        user_id: i64,
        role_id: i64,
        verifier: Secret,
    },
    /// Denied by the user.
    Denied,
}

pub enum PendingFlows {
    Local(Mutex<LocalFlows>),
    /// On Redis: sealed by the store (XChaCha20-Poly1305 under the master key every node has).
    Shared {
        redis: Arc<RedisState>,
        store: Store,
    },
}

/// One node's pending requests, swept of expired ones when they have doubled since the last
/// sweep, or (at most once a second) when an integration is at its bound: a sweep on every insert (as before) made each new request token cost a pass over
/// all of them under the lock, quadratic in a burst. Memory stays bounded by the rate of new
/// request tokens times their lifetime (`request_token_ttl`).
#[derive(Default)]
pub struct LocalFlows {
    pending: HashMap<String, Pending>,
    /// How many were left after the last sweep, and when (in seconds) it ran.
    swept_to: usize,
    swept_at: Option<i64>,
    /// Pending requests by integration, expired ones included until the next sweep.
    per_integration: HashMap<i64, usize>,
}

/// Below this many pending requests there is no sweep (expired ones are refused when read).
const SWEEP_FLOOR: usize = 1024;

/// The most request tokens one integration may have waiting for their authorization: a
/// browser flow needs one at a time, and without a bound one integration's credentials could
/// fill this node's memory (or Redis's) for `request_token_ttl`.
pub const PENDING_PER_INTEGRATION: usize = 1000;

impl LocalFlows {
    /// Keeps `pending` unless its integration already has [`PENDING_PER_INTEGRATION`]
    /// waiting; whether it was kept.
    fn insert(&mut self, token: &str, pending: Pending, now: i64) -> bool {
        let integration = pending.integration_id;
        let full = |flows: &Self| {
            flows
                .per_integration
                .get(&integration)
                .copied()
                .unwrap_or(0)
                >= PENDING_PER_INTEGRATION
        };
        // A full integration's request sweeps only once a second: a second sweep in the same
        // second frees nothing more (expiry is in whole seconds), and a sweep on every refused
        // request would let one integration at its bound make each one a pass over all.
        let full_and_unswept = || full(self) && self.swept_at.is_none_or(|at| at < now);
        if self.pending.len() >= 2 * self.swept_to.max(SWEEP_FLOOR) || full_and_unswept() {
            self.sweep(now);
        }
        if full(self) {
            return false;
        }
        *self.per_integration.entry(integration).or_default() += 1;
        if let Some(replaced) = self.pending.insert(token.to_owned(), pending) {
            self.forget(replaced.integration_id);
        }
        true
    }

    fn remove(&mut self, token: &str) -> Option<Pending> {
        let removed = self.pending.remove(token)?;
        self.forget(removed.integration_id);
        Some(removed)
    }

    fn forget(&mut self, integration: i64) {
        if let Some(count) = self.per_integration.get_mut(&integration) {
            *count = count.saturating_sub(1);
        }
    }

    /// Drops the expired requests and counts the rest again.
    fn sweep(&mut self, now: i64) {
        self.pending.retain(|_, p| p.expires_at > now);
        self.swept_to = self.pending.len();
        self.swept_at = Some(now);
        self.per_integration.clear();
        for pending in self.pending.values() {
            *self
                .per_integration
                .entry(pending.integration_id)
                .or_default() += 1;
        }
    }
}

impl PendingFlows {
    /// Where `shared` keeps its state.
    pub fn new(shared: &SharedState, store: &Store) -> Self {
        match shared {
            SharedState::Local { .. } => Self::Local(Mutex::default()),
            SharedState::Redis(redis) => Self::Shared {
                redis: redis.clone(),
                store: store.clone(),
            },
        }
    }

    /// Keeps a new pending request; `false` when its integration already has
    /// [`PENDING_PER_INTEGRATION`] waiting (nothing kept).
    pub async fn insert(
        &self,
        token: &str,
        pending: Pending,
        now: i64,
    ) -> Result<bool, Unreachable> {
        match self {
            Self::Local(flows) => Ok(lock(flows).insert(token, pending, now)),
            Self::Shared { redis, store } => {
                let ttl_ms = u64::try_from((pending.expires_at - now).max(1)).unwrap_or(1) * 1000;
                let sealed = seal(store, token, &pending)?;
                redis
                    .put_counted(
                        &redis.hashed_key("flow", &[token.as_bytes()]),
                        &sealed,
                        ttl_ms,
                        &pending_key(redis, pending.integration_id),
                        PENDING_PER_INTEGRATION,
                    )
                    .await
            }
        }
    }

    /// The pending request, unless unknown or expired.
    pub async fn get(&self, token: &str, now: i64) -> Result<Option<Pending>, Unreachable> {
        match self {
            Self::Local(flows) => Ok(lock(flows)
                .pending
                .get(token)
                .filter(|p| p.expires_at > now)
                .cloned()),
            Self::Shared { redis, store } => {
                let sealed = redis
                    .fetch(&redis.hashed_key("flow", &[token.as_bytes()]))
                    .await?;
                Ok(sealed
                    .and_then(|sealed| open(store, token, &sealed))
                    .filter(|p| p.expires_at > now))
            }
        }
    }

    /// Moves the request to `next` if it is still at `from` (the page's steps, in order).
    pub async fn advance(
        &self,
        token: &str,
        from: &Stage,
        next: Stage,
        now: i64,
    ) -> Result<bool, Unreachable> {
        match self {
            Self::Local(flows) => Ok(match lock(flows).pending.get_mut(token) {
                Some(p) if p.expires_at > now && &p.stage == from => {
                    p.stage = next;
                    true
                }
                _ => false,
            }),
            Self::Shared { redis, store } => {
                let key = redis.hashed_key("flow", &[token.as_bytes()]);
                let Some(sealed) = redis.fetch(&key).await? else {
                    return Ok(false);
                };
                let Some(mut pending) = open(store, token, &sealed) else {
                    return Ok(false);
                };
                if pending.expires_at <= now || &pending.stage != from {
                    return Ok(false);
                }
                pending.stage = next;
                // Another node may have moved it meanwhile: only swap what was read.
                redis
                    .swap_if(&key, &sealed, &seal(store, token, &pending)?)
                    .await
            }
        }
    }

    /// Removes the request for its one exchange; `None` when unknown, expired or already
    /// taken (by any node).
    pub async fn take(&self, token: &str, now: i64) -> Result<Option<Pending>, Unreachable> {
        match self {
            Self::Local(flows) => Ok(lock(flows).remove(token).filter(|p| p.expires_at > now)),
            Self::Shared { redis, store } => {
                let key = redis.hashed_key("flow", &[token.as_bytes()]);
                let exchanged = redis
                    .take(&key)
                    .await?
                    .and_then(|sealed| open(store, token, &sealed));
                if let Some(pending) = &exchanged {
                    // No longer waiting: it stops counting against its integration at once.
                    redis
                        .uncount(&pending_key(redis, pending.integration_id), &key)
                        .await?;
                }
                Ok(exchanged.filter(|p| p.expires_at > now))
            }
        }
    }
}

/// The sorted set of an integration's pending requests on Redis (scored by expiry).
fn pending_key(redis: &RedisState, integration: i64) -> Vec<u8> {
    redis.hashed_key("flows-of", &[&integration.to_be_bytes()[..]])
}

/// What Redis holds, before sealing.
#[derive(Serialize, Deserialize)]
struct Stored {
    account: String,
    integration_id: i64,
    consumer_key: String,
    secret: String,
    callback: String,
    expires_at: i64,
    stage: StoredStage,
}

#[derive(Serialize, Deserialize)]
enum StoredStage {
    Issued,
    LoggedIn {
        user_id: i64,
        session: String,
    },
    Allowed {
        user_id: i64,
        role_id: i64,
        verifier: String,
    },
    Denied,
}

fn aad(token: &str) -> String {
    format!("flow:{token}")
}

fn seal(store: &Store, token: &str, pending: &Pending) -> Result<Vec<u8>, Unreachable> {
    let stage = match &pending.stage {
        Stage::Issued => StoredStage::Issued,
        Stage::LoggedIn { user_id, session } => StoredStage::LoggedIn {
            user_id: *user_id,
            session: session.expose().to_owned(),
        },
        Stage::Allowed {
            user_id,
            role_id,
            verifier,
        } => StoredStage::Allowed {
            user_id: *user_id,
            role_id: *role_id,
            verifier: verifier.expose().to_owned(),
        },
        Stage::Denied => StoredStage::Denied,
    };
    let stored = Stored {
        account: pending.account.to_string(),
        integration_id: pending.integration_id,
        consumer_key: pending.consumer_key.clone(),
        secret: pending.secret.expose().to_owned(),
        callback: pending.callback.clone(),
        expires_at: pending.expires_at,
        stage,
    };
    let plain = Zeroizing::new(
        serde_json::to_vec(&stored)
            .map_err(|e| Unreachable(format!("cannot encode a flow: {e}")))?,
    );
    wipe(stored);
    store
        .seal_transient(&plain, &aad(token))
        .map_err(|e| Unreachable(format!("cannot seal a flow: {e}")))
}

/// `None` for anything that does not open under this token (wrong token, tampering, a key
/// this node lacks): the request is then unknown, as it should be.
fn open(store: &Store, token: &str, sealed: &[u8]) -> Option<Pending> {
    let plain = store.open_transient(sealed, &aad(token)).ok()?;
    let stored: Stored = serde_json::from_slice(&plain).ok()?;
    let stage = match &stored.stage {
        StoredStage::Issued => Stage::Issued,
        StoredStage::LoggedIn { user_id, session } => Stage::LoggedIn {
            user_id: *user_id,
            session: Secret::new(session.clone()),
        },
        StoredStage::Allowed {
            user_id,
            role_id,
            verifier,
        } => Stage::Allowed {
            user_id: *user_id,
            role_id: *role_id,
            verifier: Secret::new(verifier.clone()),
        },
        StoredStage::Denied => Stage::Denied,
    };
    let pending = Pending {
        account: AccountId::parse(&stored.account).ok()?,
        integration_id: stored.integration_id,
        consumer_key: stored.consumer_key.clone(),
        secret: Secret::new(stored.secret.clone()),
        callback: stored.callback.clone(),
        expires_at: stored.expires_at,
        stage,
    };
    wipe(stored);
    Some(pending)
}

/// Zeroizes the secrets of a decoded or encoded flow before it is dropped.
fn wipe(mut stored: Stored) {
    use zeroize::Zeroize;
    stored.secret.zeroize();
    match &mut stored.stage {
        StoredStage::LoggedIn { session: value, .. }
        | StoredStage::Allowed {
            verifier: value, ..
        } => value.zeroize(),
        StoredStage::Issued | StoredStage::Denied => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(expires_at: i64) -> Pending {
        Pending {
            account: AccountId::parse("1234567").unwrap(),
            integration_id: 1,
            consumer_key: "ck".into(),
            secret: Secret::new("s".to_owned()),
            callback: "http://localhost/callback".into(),
            expires_at,
            stage: Stage::Issued,
        }
    }

    fn of(integration_id: i64, expires_at: i64) -> Pending {
        Pending {
            integration_id,
            ..pending(expires_at)
        }
    }

    /// One integration may have `PENDING_PER_INTEGRATION` request tokens waiting; another is
    /// not held back by it, and one taken or expired frees a place. Before, there was no
    /// bound: one integration's credentials could fill the node's memory for the token TTL.
    #[test]
    fn an_integration_has_a_bounded_number_of_requests_waiting() {
        let mut flows = LocalFlows::default();
        for n in 0..PENDING_PER_INTEGRATION {
            assert!(flows.insert(&format!("a{n}"), of(1, 1_000), 500), "{n}");
        }
        assert!(!flows.insert("one more", of(1, 1_000), 500));
        assert!(!flows.pending.contains_key("one more"));
        assert!(flows.insert("other integration", of(2, 1_000), 500));
        assert!(flows.remove("a7").is_some());
        assert!(flows.insert("in a7's place", of(1, 1_000), 500));
        assert!(!flows.insert("full again", of(1, 1_000), 500));
        // Once they expire, the integration may ask again (a sweep counts them afresh).
        assert!(flows.insert("later", of(1, 5_000), 1_000));
        assert_eq!(flows.per_integration.get(&1), Some(&1));
    }

    /// An integration at its bound sweeps at most once a second: its refused requests do not
    /// each cost a pass over every pending request (before, each one did).
    #[test]
    fn a_full_integration_sweeps_once_a_second() {
        let mut flows = LocalFlows::default();
        for n in 0..PENDING_PER_INTEGRATION {
            assert!(flows.insert(&format!("a{n}"), of(1, 1_000), 500));
        }
        assert!(!flows.insert("refused", of(1, 1_000), 500), "full: swept");
        // Already expired: only a sweep removes it.
        assert!(flows.insert("stale", of(2, 500), 500));
        assert!(!flows.insert("refused again", of(1, 1_000), 500));
        assert!(
            flows.pending.contains_key("stale"),
            "no second sweep in the same second"
        );
        assert!(!flows.insert("a second later", of(1, 1_000), 501));
        assert!(!flows.pending.contains_key("stale"), "swept a second later");
    }

    /// Expired requests are swept when the map has doubled since the last sweep, not on every
    /// insert; live ones are kept; the map stays within twice what the last sweep left.
    #[test]
    fn expired_requests_are_swept_when_the_map_has_doubled() {
        let mut flows = LocalFlows::default();
        // Spread over integrations, each under its own bound.
        let spread = |n: usize| i64::try_from(n % 16).unwrap();
        for n in 0..2 * SWEEP_FLOOR {
            flows.insert(&format!("old{n}"), of(spread(n), 100), 50);
        }
        assert_eq!(
            flows.pending.len(),
            2 * SWEEP_FLOOR,
            "no sweep below twice the floor"
        );
        flows.insert("live", pending(1_000), 500);
        assert_eq!(
            (flows.swept_to, flows.pending.len()),
            (0, 1),
            "the expired went"
        );
        for n in 0..10_000 {
            assert!(flows.insert(&format!("new{n}"), of(spread(n), 1_000), 500));
            assert!(flows.pending.len() <= 2 * flows.swept_to.max(SWEEP_FLOOR));
        }
        assert_eq!(flows.pending.len(), 10_001, "the live are kept");
        assert!(
            flows.swept_to >= 4096,
            "sweeps grew apart: {}",
            flows.swept_to
        );
    }
}
