//! The credential cache: what the hot path reads instead of the database. Entries load from
//! the store on first use and the whole cache is dropped on every directory change event (a
//! generation counter keeps a load that raced with a change from being cached). Secrets live
//! here only as prepared HMAC keys.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use keycard_core::{
    AccessToken, Account, AccountId, Integration, IntegrationState, Role, Secret, TokenState,
    UnixTime, User,
};
use keycard_oauth1::{SignatureMethod, SigningKey};
use keycard_store::{Store, StoreError};

/// An integration and its consumer secret (for the request-token step's `cs&` key).
pub struct IntegrationEntry {
    pub integration: Integration,
    pub account: Account,
    consumer_secret: Secret,
    /// The concurrency pool this integration draws from (`integration:<id>` when it has its
    /// own limit, else `account:<id>`, the unallocated pool), named once at load.
    pub pool: String,
    /// That pool's limit.
    pub pool_limit: u32,
}

impl IntegrationEntry {
    /// The key `enc(cs)&enc(token_secret)` for `method`.
    pub fn key(&self, method: SignatureMethod, token_secret: &str) -> SigningKey {
        SigningKey::oauth(method, self.consumer_secret.expose(), token_secret)
    }

    /// Whether the raw SOAP TokenPassport key `cs&ts` differs from the OAuth key
    /// `enc(cs)&enc(ts)`: only when a secret has characters that percent-encoding changes.
    fn passport_differs(&self, token_secret: &str) -> bool {
        let plain = |s: &str| s.bytes().all(keycard_oauth1::encode::is_unreserved);
        !(plain(self.consumer_secret.expose()) && plain(token_secret))
    }

    /// The raw SOAP TokenPassport key `cs&ts`.
    pub fn passport_key(&self, method: SignatureMethod, token_secret: &str) -> SigningKey {
        let mut raw = zeroize::Zeroizing::new(self.consumer_secret.expose().as_bytes().to_vec());
        raw.push(b'&');
        raw.extend_from_slice(token_secret.as_bytes());
        SigningKey::raw(method, &raw)
    }
}

/// The parts of an access token that authentication reads; the rest (creator, last use, …)
/// stays in the directory. A million of these are held at once, so every byte counts.
pub struct CachedToken {
    pub id: i64,
    pub integration_id: i64,
    /// The public half (64 hex), also the cache's key.
    pub token_id: Box<str>,
    pub name: Box<str>,
    pub state: TokenState,
    pub expires_at: Option<UnixTime>,
}

impl From<AccessToken> for CachedToken {
    fn from(token: AccessToken) -> Self {
        Self {
            id: token.id,
            integration_id: token.integration_id,
            token_id: token.token_id.into_boxed_str(),
            name: token.name.into_boxed_str(),
            state: token.state,
            expires_at: token.expires_at,
        }
    }
}

/// Everything about one token that authentication needs, with the keyed HMAC prepared. Users
/// and roles are shared between the tokens that name them: a million tokens of one integration
/// user hold one copy (memory per cached token is measured by `examples/scale.rs`).
pub struct TokenEntry {
    pub token: CachedToken,
    pub user: Arc<User>,
    pub role: Arc<Role>,
    /// HMAC-SHA256 keyed with `cs&ts`, cloned per request.
    pub key: SigningKey,
    /// HMAC-SHA1, only when legacy signatures are allowed (boxed: most servers never have one).
    pub legacy_key: Option<Box<SigningKey>>,
    /// The token secret, kept only when the SOAP passport key `cs&ts` differs from `key`'s
    /// `enc(cs)&enc(ts)`. Generated secrets are hex, so it is normally `None` and the entry
    /// holds no copy of the secret at all.
    passport_secret: Option<Secret>,
}

impl TokenEntry {
    /// The key a SOAP TokenPassport with `method` is signed with: `cs&ts` raw.
    pub fn passport_key<'a>(
        &'a self,
        integration: &IntegrationEntry,
        method: SignatureMethod,
    ) -> std::borrow::Cow<'a, SigningKey> {
        match &self.passport_secret {
            Some(secret) => {
                std::borrow::Cow::Owned(integration.passport_key(method, secret.expose()))
            }
            None => std::borrow::Cow::Borrowed(self.oauth_key(method)),
        }
    }

    /// The key an OAuth header with `method` is signed with: `enc(cs)&enc(ts)`. SHA-1 has a key
    /// only where legacy signatures are allowed (the method step refuses it elsewhere).
    pub fn oauth_key(&self, method: SignatureMethod) -> &SigningKey {
        match method {
            SignatureMethod::HmacSha256 => &self.key,
            SignatureMethod::HmacSha1 => self.legacy_key.as_deref().unwrap_or(&self.key),
        }
    }
}

#[derive(Default)]
struct Maps {
    integrations: HashMap<String, Arc<IntegrationEntry>>,
    /// Keyed by the entry's own token id (no second copy of the 64-character key).
    tokens: TokenTable,
    accounts: HashMap<AccountId, Arc<Account>>,
    users: HashMap<i64, Arc<User>>,
    roles: HashMap<i64, Arc<Role>>,
}

/// Token entries in a hash table keyed by their own `token.token_id`.
#[derive(Default)]
struct TokenTable {
    table: hashbrown::HashTable<Arc<TokenEntry>>,
    hasher: std::hash::RandomState,
}

impl TokenTable {
    fn get(&self, token_id: &str) -> Option<&Arc<TokenEntry>> {
        let hash = self.hasher.hash_one(token_id);
        self.table.find(hash, |e| &*e.token.token_id == token_id)
    }

    fn insert(&mut self, entry: Arc<TokenEntry>) {
        let hash = self.hasher.hash_one(&*entry.token.token_id);
        match self.table.entry(
            hash,
            |e| e.token.token_id == entry.token.token_id,
            |e| self.hasher.hash_one(&*e.token.token_id),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut found) => *found.get_mut() = entry,
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert(entry);
            }
        }
    }
}

pub struct CredentialCache {
    store: Store,
    maps: RwLock<Maps>,
    generation: AtomicU64,
    /// `Store::local_changes` when the cache was last dropped.
    seen_changes: AtomicU64,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

impl CredentialCache {
    /// Creates the cache. It drops itself whole when this process committed a change (checked
    /// on every read, so the very next request sees it) and when the directory's version moved
    /// (a change made by another process or node), polled every `resync`.
    pub fn new(store: &Store, resync: Duration) -> Arc<Self> {
        let cache = Arc::new(Self {
            store: store.clone(),
            maps: RwLock::new(Maps::default()),
            generation: AtomicU64::new(0),
            seen_changes: AtomicU64::new(store.local_changes()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        });
        tokio::spawn(watch_version(store.clone(), Arc::downgrade(&cache), resync));
        cache
    }

    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let mut maps = self
            .maps
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *maps = Maps::default();
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        let changes = self.store.local_changes();
        if self.seen_changes.swap(changes, Ordering::SeqCst) != changes {
            self.invalidate();
        }
        self.maps
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn insert(&self, generation: u64, fill: impl FnOnce(&mut Maps)) {
        let mut maps = self
            .maps
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.generation.load(Ordering::SeqCst) == generation {
            fill(&mut maps);
        }
    }

    pub async fn account(&self, id: &AccountId) -> Result<Option<Arc<Account>>, StoreError> {
        if let Some(found) = self.read().accounts.get(id) {
            return Ok(Some(found.clone()));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        match self.store.account(id).await {
            Ok(account) => {
                let account = Arc::new(account);
                self.insert(generation, |m| {
                    m.accounts.insert(id.clone(), account.clone());
                });
                Ok(Some(account))
            }
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    pub async fn integration(
        &self,
        consumer_key: &str,
    ) -> Result<Option<Arc<IntegrationEntry>>, StoreError> {
        if let Some(found) = self.read().integrations.get(consumer_key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(found.clone()));
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let generation = self.generation.load(Ordering::SeqCst);
        let Some((integration, consumer_secret)) =
            self.store.integration_by_consumer_key(consumer_key).await?
        else {
            return Ok(None);
        };
        let account = self.store.account(&integration.account).await?;
        let pool_limit = if let Some(limit) = integration.concurrency_limit {
            limit
        } else {
            let allocated: u32 = self
                .store
                .integrations(&integration.account)
                .await?
                .iter()
                .filter(|i| i.state != IntegrationState::Deleted)
                .filter_map(|i| i.concurrency_limit)
                .sum();
            account.concurrency_limit().saturating_sub(allocated).max(1)
        };
        let pool = match integration.concurrency_limit {
            Some(_) => format!("integration:{}", integration.id),
            None => format!("account:{}", integration.account),
        };
        let entry = Arc::new(IntegrationEntry {
            integration,
            account,
            consumer_secret,
            pool,
            pool_limit,
        });
        self.insert(generation, |m| {
            m.integrations
                .insert(consumer_key.to_owned(), entry.clone());
        });
        Ok(Some(entry))
    }

    /// The token with this id, with its user and role as they are now, keyed for `integration`.
    pub async fn token(
        &self,
        integration: &IntegrationEntry,
        token_id: &str,
        legacy: bool,
    ) -> Result<Option<Arc<TokenEntry>>, StoreError> {
        if let Some(found) = self.read().tokens.get(token_id) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(found.clone()));
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let generation = self.generation.load(Ordering::SeqCst);
        let Some((token, token_secret)) = self.store.token_by_token_id(token_id).await? else {
            return Ok(None);
        };
        // A token of another account is no token of this integration's (the cached entry
        // does not keep the account).
        if token.account != integration.integration.account {
            return Ok(None);
        }
        let user = self.user(&token.account, token.user_id, generation).await?;
        let role = self.role(&token.account, token.role_id, generation).await?;
        let entry = Arc::new(TokenEntry {
            token: CachedToken::from(token),
            key: integration.key(SignatureMethod::HmacSha256, token_secret.expose()),
            legacy_key: legacy.then(|| {
                Box::new(integration.key(SignatureMethod::HmacSha1, token_secret.expose()))
            }),
            user,
            role,
            passport_secret: integration
                .passport_differs(token_secret.expose())
                .then_some(token_secret),
        });
        // Keyed with this integration's secret: only cache when the token belongs to it.
        if entry.token.integration_id == integration.integration.id {
            self.insert(generation, |m| {
                m.tokens.insert(entry.clone());
            });
        }
        Ok(Some(entry))
    }
}

impl CredentialCache {
    /// A user as cached for `generation` (shared by the tokens that name it).
    async fn user(
        &self,
        account: &AccountId,
        id: i64,
        generation: u64,
    ) -> Result<Arc<User>, StoreError> {
        if let Some(found) = self.read().users.get(&id) {
            return Ok(found.clone());
        }
        let user = Arc::new(self.store.user(account, &id.to_string()).await?);
        self.insert(generation, |m| {
            m.users.insert(id, user.clone());
        });
        Ok(user)
    }

    /// A role as cached for `generation` (shared by the tokens that name it).
    async fn role(
        &self,
        account: &AccountId,
        id: i64,
        generation: u64,
    ) -> Result<Arc<Role>, StoreError> {
        if let Some(found) = self.read().roles.get(&id) {
            return Ok(found.clone());
        }
        let role = Arc::new(self.store.role(account, &id.to_string()).await?);
        self.insert(generation, |m| {
            m.roles.insert(id, role.clone());
        });
        Ok(role)
    }
}

/// Polls the directory version; a change seen there drops the cache. A failed read keeps the
/// cache (credentials go on verifying while the database is away) and tries again.
async fn watch_version(store: Store, cache: Weak<CredentialCache>, every: Duration) {
    let mut seen = None;
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(cache) = cache.upgrade() else { return };
        match store.directory_version().await {
            Ok(version) => {
                if seen.is_some_and(|seen| seen != version) {
                    cache.invalidate();
                }
                seen = Some(version);
            }
            Err(error) => tracing::warn!(%error, "cannot read the directory version"),
        }
    }
}
