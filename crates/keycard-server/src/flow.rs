//! The three-step authorization flow's pending requests: a request token from
//! `/rest/requesttoken`, then the user's login and Allow on `authorizetoken.nl`, then one
//! exchange on `/rest/accesstoken`. Kept in memory: they live minutes and are single use.

use std::collections::HashMap;
use std::sync::Mutex;

use keycard_core::{AccountId, Secret};

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

#[derive(Default)]
pub struct PendingFlows {
    map: Mutex<HashMap<String, Pending>>,
}

impl PendingFlows {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn insert(&self, token: String, pending: Pending, now: i64) {
        let mut map = self.lock();
        map.retain(|_, p| p.expires_at > now);
        map.insert(token, pending);
    }

    /// The pending request, unless unknown or expired.
    pub fn get(&self, token: &str, now: i64) -> Option<Pending> {
        self.lock()
            .get(token)
            .filter(|p| p.expires_at > now)
            .cloned()
    }

    /// Moves the request to `next` if it is still at `from` (the page's steps, in order).
    pub fn advance(&self, token: &str, from: &Stage, next: Stage, now: i64) -> bool {
        let mut map = self.lock();
        match map.get_mut(token) {
            Some(p) if p.expires_at > now && &p.stage == from => {
                p.stage = next;
                true
            }
            _ => false,
        }
    }

    /// Removes the request for its one exchange (or one failed attempt at it).
    pub fn take(&self, token: &str) -> Option<Pending> {
        self.lock().remove(token)
    }
}
