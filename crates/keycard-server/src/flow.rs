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
/// sweep: a sweep on every insert (as before) made each new request token cost a pass over
/// all of them under the lock, quadratic in a burst. Memory stays bounded by the rate of new
/// request tokens times their lifetime (`request_token_ttl`).
#[derive(Default)]
pub struct LocalFlows {
    pending: HashMap<String, Pending>,
    /// How many were left after the last sweep.
    swept_to: usize,
}

/// Below this many pending requests there is no sweep (expired ones are refused when read).
const SWEEP_FLOOR: usize = 1024;

impl LocalFlows {
    fn insert(&mut self, token: &str, pending: Pending, now: i64) {
        if self.pending.len() >= 2 * self.swept_to.max(SWEEP_FLOOR) {
            self.pending.retain(|_, p| p.expires_at > now);
            self.swept_to = self.pending.len();
        }
        self.pending.insert(token.to_owned(), pending);
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

    pub async fn insert(&self, token: &str, pending: Pending, now: i64) -> Result<(), Unreachable> {
        match self {
            Self::Local(flows) => {
                lock(flows).insert(token, pending, now);
                Ok(())
            }
            Self::Shared { redis, store } => {
                let ttl_ms = u64::try_from((pending.expires_at - now).max(1)).unwrap_or(1) * 1000;
                let sealed = seal(store, token, &pending)?;
                redis
                    .put(
                        &redis.hashed_key("flow", &[token.as_bytes()]),
                        &sealed,
                        ttl_ms,
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
            Self::Local(flows) => Ok(lock(flows)
                .pending
                .remove(token)
                .filter(|p| p.expires_at > now)),
            Self::Shared { redis, store } => {
                let sealed = redis
                    .take(&redis.hashed_key("flow", &[token.as_bytes()]))
                    .await?;
                Ok(sealed
                    .and_then(|sealed| open(store, token, &sealed))
                    .filter(|p| p.expires_at > now))
            }
        }
    }
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

    /// Expired requests are swept when the map has doubled since the last sweep, not on every
    /// insert; live ones are kept; the map stays within twice what the last sweep left.
    #[test]
    fn expired_requests_are_swept_when_the_map_has_doubled() {
        let mut flows = LocalFlows::default();
        for n in 0..2 * SWEEP_FLOOR {
            flows.insert(&format!("old{n}"), pending(100), 50);
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
            flows.insert(&format!("new{n}"), pending(1_000), 500);
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
