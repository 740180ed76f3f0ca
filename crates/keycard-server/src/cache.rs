//! The credential cache: what the hot path reads instead of the database. Entries load from
//! the store on first use; a directory change drops what it touches (a generation counter keeps
//! a load that raced with a change from being cached). This process's changes are applied on
//! the next read, other processes' as PostgreSQL notifies them, and a polled directory version
//! drops everything should an event be missed; nothing is cached before that poll's first read,
//! the baseline it compares with. Secrets live here only as prepared HMAC keys.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use keycard_core::{
    AccessToken, Account, AccountId, ChangeEvent, EntityKind, Integration, IntegrationState, Role,
    Secret, TokenState, UnixTime, User,
};
use keycard_oauth1::{SignatureMethod, SigningKey};
use keycard_store::{ChangeListener, Remote, Store, StoreError};
use once_cell::race::OnceBox;
use tokio::sync::{broadcast, oneshot, watch};

use crate::counters::Counter;
use crate::shared::Scope;
use crate::shared::nonce::scope_digest;

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
    /// `token_id`'s [`scope_digest`], made once rather than on every request.
    nonce_digest: u64,
    pub name: Box<str>,
    pub state: TokenState,
    pub expires_at: Option<UnixTime>,
}

impl CachedToken {
    /// The scope the token's nonces are unique within.
    pub fn nonce_scope(&self) -> Scope<'_> {
        Scope {
            text: &self.token_id,
            digest: self.nonce_digest,
        }
    }
}

impl From<AccessToken> for CachedToken {
    fn from(token: AccessToken) -> Self {
        Self {
            id: token.id,
            integration_id: token.integration_id,
            nonce_digest: scope_digest(&token.token_id),
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
    /// tokeninfo's answer, made on the token's first tokeninfo call ([`Self::answer`]).
    answer: OnceBox<Answer>,
}

/// An answer made from a token's entry and its integration's and account's, kept with the
/// token: entries never change once made (a change replaces them), so the answer stays right
/// for as long as it is used with those very two. It holds them by weak reference: their
/// allocation lives on, so no later entry can take the address it is compared with.
struct Answer {
    integration: Weak<IntegrationEntry>,
    account: Weak<Account>,
    body: Bytes,
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

    /// The answer `make` gives for this token with `integration` and `account`, made once: on
    /// tokeninfo, the busiest answer, it was about 2,000 instructions a request. Made again at
    /// every call (not kept) when the entries are not those the kept answer was made from,
    /// which only a token entry that outlives its integration's or account's can see.
    pub fn answer(
        &self,
        integration: &Arc<IntegrationEntry>,
        account: &Arc<Account>,
        make: impl FnOnce() -> Vec<u8>,
    ) -> Bytes {
        let kept = self.answer.get();
        let made_from_these = kept.filter(|kept| {
            std::ptr::eq(kept.integration.as_ptr(), Arc::as_ptr(integration))
                && std::ptr::eq(kept.account.as_ptr(), Arc::as_ptr(account))
        });
        if let Some(kept) = made_from_these {
            return kept.body.clone();
        }
        let body = Bytes::from(make());
        if kept.is_none() {
            // Another request may have kept its answer first; either is right for its entries.
            let _ = self.answer.set(Box::new(Answer {
                integration: Arc::downgrade(integration),
                account: Arc::downgrade(account),
                body: body.clone(),
            }));
        }
        body
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

/// The cache's hasher: foldhash, seeded per process, where the standard `SipHash` cost about
/// 1,000 instructions a request over the lookups. `SipHash`'s guarantee against chosen
/// collisions is not needed here: only entries read from the directory are ever inserted, so
/// a client's keys can only be looked up, never fill a bucket.
type CacheHasher = foldhash::fast::RandomState;
type CacheMap<K, V> = HashMap<K, V, CacheHasher>;

#[derive(Default)]
struct Maps {
    integrations: CacheMap<String, Arc<IntegrationEntry>>,
    /// Keyed by the entry's own token id (no second copy of the 64-character key).
    tokens: TokenTable,
    accounts: CacheMap<AccountId, Arc<Account>>,
    users: CacheMap<i64, Arc<User>>,
    roles: CacheMap<i64, Arc<Role>>,
}

/// Token entries in a hash table keyed by their own `token.token_id`.
#[derive(Default)]
struct TokenTable {
    table: hashbrown::HashTable<Arc<TokenEntry>>,
    hasher: CacheHasher,
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

    fn retain(&mut self, keep: impl FnMut(&mut Arc<TokenEntry>) -> bool) {
        self.table.retain(keep);
    }

    fn len(&self) -> usize {
        self.table.len()
    }
}

/// What a batch of change events touches, gathered so one pass over the tokens serves them all
/// (deleting an integration sends an event per revoked token).
#[derive(Default)]
struct Touched {
    /// Something only a full drop covers (an account, the master key, an unreadable event).
    everything: bool,
    tokens: HashSet<i64>,
    users: HashSet<i64>,
    roles: HashSet<i64>,
    integrations: HashSet<i64>,
    /// Accounts whose integrations all go: siblings' unallocated pool limits depend on each
    /// other, and a credentials reset names the integration by its old consumer key.
    integration_accounts: HashSet<AccountId>,
}

impl Touched {
    fn add(&mut self, event: &ChangeEvent) {
        let id = event.entity_id.parse::<i64>().ok();
        match (event.entity, id) {
            (EntityKind::Token, Some(id)) => {
                self.tokens.insert(id);
            }
            (EntityKind::User, Some(id)) => {
                self.users.insert(id);
            }
            (EntityKind::Role, Some(id)) => {
                self.roles.insert(id);
            }
            (EntityKind::Integration, id) => match &event.account {
                Some(account) => {
                    self.integrations.extend(id);
                    self.integration_accounts.insert(account.clone());
                }
                None => self.everything = true,
            },
            _ => self.everything = true,
        }
    }

    /// Drops what is touched from `maps`.
    fn remove_from(&self, maps: &mut Maps) {
        if self.everything {
            *maps = Maps::default();
            return;
        }
        maps.users.retain(|id, _| !self.users.contains(id));
        maps.roles.retain(|id, _| !self.roles.contains(id));
        let mut integrations = self.integrations.clone();
        maps.integrations.retain(|_, entry| {
            let touched = self
                .integration_accounts
                .contains(&entry.integration.account);
            if touched {
                integrations.insert(entry.integration.id);
            }
            !touched
        });
        if self.tokens.is_empty()
            && self.users.is_empty()
            && self.roles.is_empty()
            && integrations.is_empty()
        {
            return;
        }
        maps.tokens.retain(|entry| {
            !(self.tokens.contains(&entry.token.id)
                || self.users.contains(&entry.user.id)
                || self.roles.contains(&entry.role.id)
                || integrations.contains(&entry.token.integration_id))
        });
    }
}

/// When the version poll last read the directory, for the pipeline's grace period. Atomics:
/// every request reads it, the poll writes it a few times a second.
struct Reachability {
    created: Instant,
    /// Milliseconds from `created` to the last successful poll.
    last_success_ms: AtomicU64,
    latest_failed: std::sync::atomic::AtomicBool,
}

pub struct CredentialCache {
    store: Store,
    maps: RwLock<Maps>,
    generation: AtomicU64,
    /// Whether the version poll has read its baseline. Until then nothing is cached: an entry
    /// loaded before that read could predate a change the baseline already counts.
    caching: watch::Sender<bool>,
    /// `Store::local_changes` whose events have been applied.
    seen_changes: AtomicU64,
    /// This process's change events, applied when `local_changes` moves.
    local_events: Mutex<broadcast::Receiver<ChangeEvent>>,
    reachability: Reachability,
    /// Dropped with the cache, which stops the change listener's task.
    _stop_listening: oneshot::Sender<()>,
    /// Per thread: an atomic add per lookup was two of a request's atomic read-modify-writes.
    pub hits: Counter,
    pub misses: Counter,
}

impl CredentialCache {
    /// Creates the cache. It drops what a change touches: this process's changes on the very
    /// next read, other processes' when PostgreSQL notifies them (a task listens), and
    /// everything when the directory's version moved, polled every `resync` as the safety net
    /// for a missed notification.
    pub fn new(store: &Store, resync: Duration) -> Arc<Self> {
        let (stop, stopped) = oneshot::channel();
        let cache = Arc::new(Self {
            store: store.clone(),
            maps: RwLock::new(Maps::default()),
            generation: AtomicU64::new(0),
            caching: watch::Sender::new(false),
            seen_changes: AtomicU64::new(store.local_changes()),
            local_events: Mutex::new(store.subscribe()),
            reachability: Reachability {
                created: Instant::now(),
                last_success_ms: AtomicU64::new(0),
                latest_failed: std::sync::atomic::AtomicBool::new(false),
            },
            _stop_listening: stop,
            hits: Counter::default(),
            misses: Counter::default(),
        });
        tokio::spawn(watch_version(store.clone(), Arc::downgrade(&cache), resync));
        tokio::spawn(listen_remote(
            store.clone(),
            Arc::downgrade(&cache),
            stopped,
        ));
        cache
    }

    /// Returns once entries are cached, after the version poll's first read (tests, which
    /// count what is cached; a server just loads uncached until then).
    pub async fn until_caching(&self) {
        let mut caching = self.caching.subscribe();
        // The sender lives as long as `self`: waiting cannot fail.
        let _ = caching.wait_for(|caching| *caching).await;
    }

    /// The version poll read its baseline: loads from now on are cached. Loads that began
    /// before it may have read what a change then replaced; the generation keeps them out.
    fn start_caching(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.caching.send_replace(true);
    }

    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let mut maps = self.write();
        *maps = Maps::default();
    }

    /// Drops what `event` touches: a token; a user or role with its tokens; every integration
    /// of the account with their tokens; everything for an account or the master key.
    pub fn invalidate_entity(&self, event: &ChangeEvent) {
        self.invalidate_entities(std::slice::from_ref(event));
    }

    /// [`Self::invalidate_entity`] for many events, in one pass.
    pub fn invalidate_entities(&self, events: &[ChangeEvent]) {
        // First, so a load that read the directory before the change is not cached after it.
        self.generation.fetch_add(1, Ordering::SeqCst);
        let mut touched = Touched::default();
        for event in events {
            touched.add(event);
        }
        // A rotation elsewhere: the keys to seal and open with are in the key file now (the
        // secrets are reloaded below; pending authorizations are sealed under the new key).
        if events.iter().any(|e| e.entity == EntityKind::MasterKey) {
            self.store.follow_key_file();
        }
        touched.remove_from(&mut self.write());
    }

    /// How many tokens are cached (tests, metrics).
    pub fn cached_tokens(&self) -> usize {
        self.read().tokens.len()
    }

    /// How long the directory has been unreachable: `None` while the latest version poll
    /// succeeded, else the time since the last one that did (or since the cache was created).
    pub fn directory_unreachable_for(&self) -> Option<Duration> {
        let reachability = &self.reachability;
        if !reachability.latest_failed.load(Ordering::Acquire) {
            return None;
        }
        let last = Duration::from_millis(reachability.last_success_ms.load(Ordering::Acquire));
        Some(reachability.created.elapsed().saturating_sub(last))
    }

    fn directory_read(&self, succeeded: bool) {
        let reachability = &self.reachability;
        if succeeded {
            let since = reachability.created.elapsed().as_millis();
            reachability
                .last_success_ms
                .store(u64::try_from(since).unwrap_or(u64::MAX), Ordering::Release);
        }
        reachability
            .latest_failed
            .store(!succeeded, Ordering::Release);
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.apply_local_changes();
        self.maps
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies the events of changes this process committed since the last read, so the very
    /// next request after a change sees it. `Store::commit` sends its events before it moves
    /// the counter, so they are queued by the time the new count is seen.
    fn apply_local_changes(&self) {
        if self.seen_changes.load(Ordering::SeqCst) == self.store.local_changes() {
            return;
        }
        let mut events = self
            .local_events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Read again under the lock: another reader may have applied them meanwhile. The count
        // is stored only once applied, so a concurrent reader waits here rather than going on.
        let changes = self.store.local_changes();
        if self.seen_changes.load(Ordering::SeqCst) == changes {
            return;
        }
        match drain(&mut events) {
            Some(events) => self.invalidate_entities(&events),
            None => self.invalidate(),
        }
        self.seen_changes.store(changes, Ordering::SeqCst);
    }

    fn insert(&self, generation: u64, fill: impl FnOnce(&mut Maps)) {
        let mut maps = self
            .maps
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *self.caching.borrow() && self.generation.load(Ordering::SeqCst) == generation {
            fill(&mut maps);
        }
    }

    pub async fn account(&self, id: &AccountId) -> Result<Option<Arc<Account>>, StoreError> {
        if let Some(found) = self.read().accounts.get(id) {
            return Ok(Some(found.clone()));
        }
        // The store's futures are large and a miss is rare: boxed, they stay out of every
        // request's future (which is moved, and boxed by the router, on every request).
        Box::pin(self.load_account(id)).await
    }

    async fn load_account(&self, id: &AccountId) -> Result<Option<Arc<Account>>, StoreError> {
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

    /// A request's account, integration and token when all three are cached, found under one
    /// read of the maps: a read takes and gives back their lock, two atomic read-modify-writes,
    /// where the three lookups one by one took three. `None` when any is missing: the caller
    /// then looks each up on its own (and loads what is missing).
    pub fn cached_principal(
        &self,
        account: &AccountId,
        consumer_key: &str,
        token_id: &str,
    ) -> Option<(Arc<Account>, Arc<IntegrationEntry>, Arc<TokenEntry>)> {
        let found = {
            let maps = self.read();
            (
                maps.accounts.get(account)?.clone(),
                maps.integrations.get(consumer_key)?.clone(),
                maps.tokens.get(token_id)?.clone(),
            )
        };
        // Counted as the one-by-one lookups count: the integration's and the token's.
        self.hits.add(2);
        Some(found)
    }

    pub async fn integration(
        &self,
        consumer_key: &str,
    ) -> Result<Option<Arc<IntegrationEntry>>, StoreError> {
        if let Some(found) = self.read().integrations.get(consumer_key) {
            self.hits.add(1);
            return Ok(Some(found.clone()));
        }
        self.misses.add(1);
        Box::pin(self.load_integration(consumer_key)).await
    }

    async fn load_integration(
        &self,
        consumer_key: &str,
    ) -> Result<Option<Arc<IntegrationEntry>>, StoreError> {
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
            self.hits.add(1);
            return Ok(Some(found.clone()));
        }
        self.misses.add(1);
        Box::pin(self.load_token(integration, token_id, legacy)).await
    }

    async fn load_token(
        &self,
        integration: &IntegrationEntry,
        token_id: &str,
        legacy: bool,
    ) -> Result<Option<Arc<TokenEntry>>, StoreError> {
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
            answer: OnceBox::new(),
        });
        // Keyed with this integration's secret: only cache when the token belongs to it and
        // the entry is still the cached one (a credentials reset may have replaced it).
        if entry.token.integration_id == integration.integration.id {
            self.insert(generation, |m| {
                let current = m
                    .integrations
                    .get(&*integration.integration.consumer_key)
                    .is_some_and(|cached| std::ptr::eq(Arc::as_ptr(cached), integration));
                if current {
                    m.tokens.insert(entry.clone());
                }
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

/// Everything queued in `events`; `None` when some were lost (the channel lagged).
fn drain(events: &mut broadcast::Receiver<ChangeEvent>) -> Option<Vec<ChangeEvent>> {
    let mut drained = Vec::new();
    let mut complete = true;
    loop {
        match events.try_recv() {
            Ok(event) => drained.push(event),
            Err(broadcast::error::TryRecvError::Empty) => break,
            Err(broadcast::error::TryRecvError::Lagged(_)) => complete = false,
            Err(broadcast::error::TryRecvError::Closed) => return None,
        }
    }
    complete.then_some(drained)
}

/// Polls the directory version; a change seen there drops what it touched (the changes the
/// directory logged since the last poll), or the whole cache when the log no longer holds
/// them all. The first read is the baseline, and caching starts with it. A failed read keeps
/// the cache (credentials go on verifying while the database is away), is timed for the
/// pipeline's grace period, and is tried again.
///
/// It dropped the whole cache on every change before: any directory write, issuetoken and
/// revoketoken among them (which clients make), emptied every node's cache.
async fn watch_version(store: Store, cache: Weak<CredentialCache>, every: Duration) {
    let mut seen = None;
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(cache) = cache.upgrade() else { return };
        // A database that went away can leave the read waiting on the pool for its whole
        // acquire timeout: an answer later than this counts as a failure (grace period).
        let deadline = every.max(Duration::from_secs(1));
        let read = async {
            match seen {
                None => store
                    .directory_version()
                    .await
                    .map(|v| (v, Some(Vec::new()))),
                Some(seen) => store.changes_since(seen).await,
            }
        };
        match tokio::time::timeout(deadline, read).await {
            Ok(Ok((version, changes))) => {
                cache.directory_read(true);
                match (seen, changes) {
                    (None, _) => cache.start_caching(),
                    (Some(seen), _) if seen == version => {}
                    (Some(_), Some(events)) => cache.invalidate_entities(&events),
                    (Some(_), None) => cache.invalidate(),
                }
                seen = Some(version);
            }
            Ok(Err(error)) => {
                cache.directory_read(false);
                tracing::warn!(%error, "cannot read the directory version");
            }
            Err(_) => {
                cache.directory_read(false);
                tracing::warn!(
                    after_ms = deadline.as_millis(),
                    "no answer from the directory"
                );
            }
        }
    }
}

/// Applies other processes' changes as PostgreSQL notifies them (nothing to do on SQLite).
/// Ends when the cache is dropped.
async fn listen_remote(store: Store, cache: Weak<CredentialCache>, stopped: oneshot::Receiver<()>) {
    tokio::select! {
        () = follow_remote(store, cache) => {}
        _ = stopped => {}
    }
}

async fn follow_remote(store: Store, cache: Weak<CredentialCache>) {
    let Some(mut listener) = open_listener(&store).await else {
        return;
    };
    // Anything cached before listening began may have missed a change.
    let mut remote = Remote::Resync;
    loop {
        let Some(cache) = cache.upgrade() else { return };
        match remote {
            Remote::Changed(events) => cache.invalidate_entities(&events),
            Remote::Resync => cache.invalidate(),
        }
        drop(cache);
        remote = listener.next().await;
    }
}

/// The store's change listener, retrying while the database is unreachable; `None` on SQLite.
async fn open_listener(store: &Store) -> Option<ChangeListener> {
    let mut backoff = Duration::from_millis(50);
    loop {
        match store.listen_changes().await {
            Ok(listener) => return listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for directory changes; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}
