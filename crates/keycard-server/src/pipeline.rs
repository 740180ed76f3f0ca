//! The one authentication pipeline for every surface, in NetSuite's order:
//! parse → account → integration → token → user/role → signature method → signature →
//! timestamp → nonce → IP rule → concurrency slot → permission.
//!
//! Every attempt, success or failure, becomes one login record with NetSuite's Detail code and
//! keycard's diagnosis for the owner. Unknown consumers and tokens still pay for one HMAC, so
//! timing does not tell them apart from known ones.

use std::borrow::Cow;
use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use axum::response::Response;
use keycard_core::token::check_usable;
use keycard_core::{
    Account, AccountId, Feature, IntegrationState, Level, LoginRecord, SetupPermission, Text,
    Unusable,
};
use keycard_oauth1::rules::{Rules, check_version, parse_timestamp};
use keycard_oauth1::signature::check_body_hash;
use keycard_oauth1::{
    AuthorizationHeader, IncomingRequest, OAuthError, Protocol, RequestTarget, SignatureMethod,
    SigningKey, TokenPassport,
};
use serde_json::{Value, json};

use crate::AppState;
use crate::cache::{IntegrationEntry, TokenEntry};
use crate::flow::Stage;
use crate::request_id::RequestId;
use crate::respond::{ClientError, Surface, error_response};
use crate::routing::{HostRoute, realm_hint, route_host};
use crate::shared::nonce::NonceKey;
use crate::shared::{Admission, NonceUse, Pool, Scope, Slot, Unreachable};

/// What arrived, as the HTTP layer read it.
pub struct RequestFacts<'a> {
    pub request_id: RequestId,
    pub method: &'a str,
    /// The scheme the client used (configured, or from a trusted proxy).
    pub scheme: &'a str,
    /// The `Host` the client used (with port, if any).
    pub authority: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
    pub peer: IpAddr,
    /// `peer` as the audit trail stores it.
    pub peer_text: &'a Text,
    pub surface: Surface,
}

impl RequestFacts<'_> {
    /// The path and query, as the record keeps them.
    pub fn uri(&self) -> Text {
        let mut uri = Text::from(self.path);
        if let Some(query) = self.query {
            uri.push('?');
            uri.push_str(query);
        }
        uri
    }
}

/// What the operation needs beyond a valid login.
#[derive(Debug, Clone)]
pub enum Need {
    /// Token endpoints: any authenticated token.
    Login,
    /// A RESTlet: not a Web Services Only role.
    Restlet,
    /// REST web services on a record type at a level.
    RestRecord { record: String, level: Level },
    /// REST web services, administrator only (governance limits).
    RestAdministrator,
    /// SOAP web services, on a record type at a level when the operation touches one.
    Soap { record: Option<(String, Level)> },
}

/// A request that passed every check. Holding it holds the concurrency slot.
pub struct Principal {
    pub account: Arc<Account>,
    pub integration: Arc<IntegrationEntry>,
    pub token: Arc<TokenEntry>,
    pub request_id: RequestId,
    _slot: Slot,
}

/// Why a request was refused: what the client sees and what the owner reads.
struct Refusal {
    error: ClientError,
    detail: &'static str,
    diagnosis: Value,
}

fn refuse(error: ClientError, detail: &'static str, diagnosis: Value) -> Refusal {
    Refusal {
        error,
        detail,
        diagnosis,
    }
}

fn login_failed(detail: &'static str, diagnosis: Value) -> Refusal {
    refuse(ClientError::InvalidLogin, detail, diagnosis)
}

/// What the record names, filled in as the pipeline learns it, and when the attempt is judged:
/// the clock is read once per attempt, so the token's expiry, the timestamp window, the nonce
/// and the record agree on the time (and a request pays for one read, not one per step).
#[derive(Default)]
struct Known {
    at: i64,
    realm: Option<Text>,
    account: Option<Text>,
    integration: Option<Text>,
    token: Option<Text>,
    user: Option<Text>,
    role: Option<Text>,
}

impl Known {
    fn at(now: i64) -> Self {
        Self {
            at: now,
            ..Self::default()
        }
    }
}

/// A key no token has, for equal timing on unknown credentials.
static DECOY_KEY: LazyLock<SigningKey> =
    LazyLock::new(|| SigningKey::oauth(SignatureMethod::HmacSha256, "decoy", "decoy"));

pub async fn authenticate(
    state: &AppState,
    facts: &RequestFacts<'_>,
    need: &Need,
) -> Result<Principal, Response> {
    let mut known = Known::at(state.now());
    let header = parse_header(facts).and_then(|header| {
        known.realm = header.realm().map(Text::from);
        require_params(&header, &REQUIRED).map(|()| header)
    });
    // Matched by value, so that no result but the header is kept across the await.
    let outcome = match header {
        Ok(header) => run(state, facts, &presented(&header), need, &mut known).await,
        Err(refusal) => Err(refusal),
    };
    finish(state, facts, known, outcome).await
}

/// The same pipeline for credentials the request carries elsewhere (a SOAP `tokenPassport`).
pub async fn authenticate_presented(
    state: &AppState,
    facts: &RequestFacts<'_>,
    presented: &Presented<'_>,
    need: &Need,
) -> Result<Principal, Response> {
    let mut known = Known {
        realm: presented.realm.map(Text::from),
        ..Known::at(state.now())
    };
    let outcome = run(state, facts, presented, need, &mut known).await;
    finish(state, facts, known, outcome).await
}

/// Logs and audits the attempt, then answers a refusal in the surface's shape. Takes what the
/// pipeline learnt by value: its names move into the record.
///
/// An async block, not an async fn, which would keep `known` and `outcome` twice in its
/// future (224 bytes, copied on every request).
#[allow(clippy::manual_async_fn)]
fn finish<'a, T>(
    state: &'a AppState,
    facts: &'a RequestFacts<'_>,
    known: Known,
    mut outcome: Result<T, Refusal>,
) -> impl Future<Output = Result<T, Response>> + 'a
where
    T: 'a,
{
    async move {
        let (status, detail, diagnosis) = match &mut outcome {
            Ok(_) => ("Success", "", Value::Null),
            Err(refusal) => ("Failure", refusal.detail, refusal.diagnosis.take()),
        };
        if outcome.is_ok() {
            tracing::debug!(request_id = %facts.request_id, surface = facts.surface.as_str(), account = known.account.as_deref(), integration = known.integration.as_deref(), "login accepted");
        } else {
            tracing::info!(request_id = %facts.request_id, surface = facts.surface.as_str(), account = known.account.as_deref(), integration = known.integration.as_deref(), token = known.token.as_deref(), detail, "login refused");
        }
        // The realm a refusal names: the account's id when known, else what the client sent.
        let realm = match &outcome {
            Ok(_) => None,
            Err(_) => known.account.clone().or_else(|| known.realm.clone()),
        };
        let record = LoginRecord {
            at: known.at,
            request_id: facts.request_id.as_str().into(),
            ip: facts.peer_text.clone(),
            account: known.account,
            integration: known.integration,
            token_name: known.token,
            user: known.user,
            role: known.role,
            surface: Text::const_new(facts.surface.as_str()),
            request_uri: facts.uri(),
            status: Text::const_new(status),
            detail: Text::const_new(detail),
            diagnosis,
        };
        // Waits when the queue is full (back-pressure); fails only if the writer is gone.
        if state.audit.send(record).await.is_err() {
            return Err(error_response(
                facts.surface,
                ClientError::Unavailable,
                None,
                &facts.request_id,
            ));
        }
        outcome.map_err(|refusal| {
            error_response(
                facts.surface,
                refusal.error,
                realm.as_deref(),
                &facts.request_id,
            )
        })
    }
}

/// NetSuite names a few Detail codes differently on RESTlets and on web services.
fn nonce_used(surface: Surface) -> &'static str {
    match surface {
        Surface::Rest | Surface::Soap(_) => "NonceUsed",
        Surface::Restlet | Surface::Token => "nonce_used",
    }
}

fn nonce_rejected(surface: Surface) -> &'static str {
    match surface {
        Surface::Rest | Surface::Soap(_) => "NonceRejected",
        Surface::Restlet | Surface::Token => "nonce_rejected",
    }
}

/// The credentials a request presents: from an `OAuth` header or a SOAP `tokenPassport`.
pub struct Presented<'a> {
    /// `realm` of the header; `account` of a passport.
    pub realm: Option<&'a str>,
    pub consumer_key: &'a str,
    pub token: &'a str,
    pub nonce: &'a str,
    pub timestamp: &'a str,
    pub method: &'a str,
    pub signature: &'a str,
    pub version: Option<&'a str>,
    pub proof: Proof<'a>,
}

/// What the signature covers.
pub enum Proof<'a> {
    /// The OAuth base string: method, URL and every signed parameter.
    Header(&'a AuthorizationHeader<'a>),
    /// `account&consumerKey&token&nonce&timestamp`, keyed `cs&ts` (SOAP).
    Passport,
}

const REQUIRED: [Protocol; 6] = [
    Protocol::ConsumerKey,
    Protocol::Token,
    Protocol::Nonce,
    Protocol::Timestamp,
    Protocol::SignatureMethod,
    Protocol::Signature,
];

/// Step 1 for header-signed requests: the `OAuth` header, parsed.
fn parse_header<'a>(facts: &RequestFacts<'a>) -> Result<AuthorizationHeader<'a>, Refusal> {
    let Some(authorization) = facts.authorization else {
        return Err(login_failed(
            "MissingRequiredParameter",
            json!({ "problem": "no Authorization header" }),
        ));
    };
    AuthorizationHeader::parse(authorization).map_err(|error| match error {
        OAuthError::WrongScheme { .. } => login_failed(
            "MissingRequiredParameter",
            json!({ "problem": "the Authorization header is not `OAuth …` (Token-based Authentication)" }),
        ),
        other => refuse(
            ClientError::BadRequest("The Authorization header is malformed."),
            "MalformedRequest",
            json!({ "problem": other.to_string(), "code": other.code() }),
        ),
    })
}

fn require_params<'p>(
    header: &AuthorizationHeader<'_>,
    params: impl IntoIterator<Item = &'p Protocol>,
) -> Result<(), Refusal> {
    let missing: Vec<&str> = params
        .into_iter()
        .filter(|&&param| header.protocol(param).is_none())
        .map(|param| param.name())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(login_failed(
            "MissingRequiredParameter",
            json!({ "missing": missing }),
        ))
    }
}

fn presented<'a>(header: &'a AuthorizationHeader<'a>) -> Presented<'a> {
    let param = |param| header.protocol(param).unwrap_or_default();
    Presented {
        realm: header.realm(),
        consumer_key: param(Protocol::ConsumerKey),
        token: param(Protocol::Token),
        nonce: param(Protocol::Nonce),
        timestamp: param(Protocol::Timestamp),
        method: param(Protocol::SignatureMethod),
        signature: param(Protocol::Signature),
        version: header.protocol(Protocol::Version),
        proof: Proof::Header(header),
    }
}

/// The account the host names, else the one the realm names (either form, for the diagnosis).
fn named_account(
    state: &AppState,
    facts: &RequestFacts<'_>,
    realm: Option<&str>,
) -> Option<AccountId> {
    let host = crate::routing::host_without_port(facts.authority);
    match route_host(&state.config, host) {
        HostRoute::Account { slug } => AccountId::from_host_slug(slug).ok(),
        HostRoute::Shared => realm.and_then(|realm| {
            AccountId::parse(realm)
                .or_else(|_| AccountId::from_host_slug(realm))
                .ok()
        }),
    }
}

/// The integration and token a request names, when they were found with its account.
type FoundWithAccount = Option<(Arc<IntegrationEntry>, Arc<TokenEntry>)>;

/// Step 2: the account exists, the realm names it correctly, and it has TBA. When the
/// integration and token are cached too, they are taken in the same look at the cache, for
/// steps 3 and 4.
async fn account_step(
    state: &AppState,
    facts: &RequestFacts<'_>,
    p: &Presented<'_>,
    known: &mut Known,
) -> Result<(Arc<Account>, FoundWithAccount), Refusal> {
    let Some(account_id) = named_account(state, facts, p.realm) else {
        return Err(login_failed(
            "InvalidAccount",
            json!({ "problem": "no account: call the account's host ({slug}.restlets.api.<domain>) or send realm=\"<account id>\"", "realm": p.realm }),
        ));
    };
    known.account = Some(account_id.as_str().into());
    if let Some((account, integration, token)) =
        state
            .cache
            .cached_principal(&account_id, p.consumer_key, p.token)
    {
        admits(p, &account)?;
        return Ok((account, Some((integration, token))));
    }
    let Some(account) = state
        .cache
        .account(&account_id)
        .await
        .map_err(unavailable)?
    else {
        return Err(login_failed(
            "InvalidAccount",
            json!({ "problem": format!("account {account_id} does not exist") }),
        ));
    };
    admits(p, &account)?;
    Ok((account, None))
}

/// The realm names the account in its exact form, and the account has TBA.
fn admits(p: &Presented<'_>, account: &Account) -> Result<(), Refusal> {
    if let Some(hint) = p.realm.and_then(|realm| realm_hint(realm, &account.id)) {
        return Err(login_failed("InvalidAccount", json!({ "realm": hint })));
    }
    if !account.has(Feature::TokenBasedAuthentication) {
        return Err(login_failed(
            "FeatureDisabled",
            json!({ "problem": "the account does not have Token-Based Authentication enabled" }),
        ));
    }
    Ok(())
}

/// Step 3: the integration is known in this account, Enabled, with TBA checked.
async fn integration_step(
    state: &AppState,
    p: &Presented<'_>,
    account: &Account,
    found: Option<Arc<IntegrationEntry>>,
    known: &mut Known,
) -> Result<Arc<IntegrationEntry>, Refusal> {
    let integration = match found {
        Some(found) => Some(found),
        None => state
            .cache
            .integration(p.consumer_key)
            .await
            .map_err(unavailable)?,
    };
    let Some(integration) = integration.filter(|i| i.integration.account == account.id) else {
        let _ = DECOY_KEY.verify(b"decoy", p.signature);
        return Err(login_failed(
            "consumer_key_unknown",
            json!({ "problem": "no integration record has this consumer key in this account" }),
        ));
    };
    known.integration = Some(integration.integration.name.as_str().into());
    if integration.integration.state != IntegrationState::Enabled {
        return Err(login_failed(
            "consumer_key_refused",
            json!({ "problem": format!("the integration is {}", integration.integration.state.label()) }),
        ));
    }
    if !integration.integration.flags.tba {
        return Err(login_failed(
            "consumer_key_refused",
            json!({ "problem": "the integration does not have Token-based Authentication checked" }),
        ));
    }
    Ok(integration)
}

/// Step 4: the token is known, belongs to the integration, and is usable with its user and role.
async fn token_step(
    state: &AppState,
    p: &Presented<'_>,
    account: &Account,
    integration: &IntegrationEntry,
    found: Option<Arc<TokenEntry>>,
    known: &mut Known,
) -> Result<Arc<TokenEntry>, Refusal> {
    let token = match found {
        Some(found) => Some(found),
        None => state
            .cache
            .token(integration, p.token, state.config.allow_legacy_sha1)
            .await
            .map_err(unavailable)?,
    };
    let Some(token) = token.filter(|t| {
        t.token.integration_id == integration.integration.id
            && integration.integration.account == account.id
    }) else {
        let _ = DECOY_KEY.verify(b"decoy", p.signature);
        return Err(login_failed(
            "InvalidToken",
            json!({ "problem": "no token with this id belongs to this integration" }),
        ));
    };
    // Copied inline when short (most names are), without an allocation.
    known.token = Some(token.token.name.as_ref().into());
    known.user = Some(token.user.email.as_str().into());
    known.role = Some(token.role.name.as_str().into());
    if let Err(unusable) = check_usable(
        &token.token.state,
        token.token.expires_at,
        &integration.integration,
        &token.user,
        &token.role,
        known.at,
    ) {
        let detail = match unusable {
            Unusable::TokenInactive | Unusable::TokenRevoked | Unusable::TokenExpired => {
                "InvalidToken"
            }
            Unusable::IntegrationNotEnabled | Unusable::IntegrationTbaDisabled => {
                "consumer_key_refused"
            }
            Unusable::UserNotActive | Unusable::RoleNotHeld | Unusable::RoleCannotUseTokens => {
                "EntityOrRoleDisabled"
            }
        };
        return Err(login_failed(
            detail,
            json!({ "problem": unusable.to_string(), "code": unusable.code() }),
        ));
    }
    Ok(token)
}

/// Step 5: the signature method (and `oauth_version`) are ones we accept.
fn method_step(state: &AppState, p: &Presented<'_>) -> Result<SignatureMethod, Refusal> {
    let method =
        SignatureMethod::parse(p.method, state.config.allow_legacy_sha1).map_err(|error| {
            login_failed(
                "UnsupportedSignatureMethod",
                json!({ "problem": error.to_string() }),
            )
        })?;
    check_version(p.version).map_err(|_| {
        login_failed(
            "version_rejected",
            json!({ "problem": "oauth_version must be 1.0 or absent" }),
        )
    })?;
    Ok(method)
}

thread_local! {
    /// The base string's buffer, reused by the requests a thread verifies (one allocation
    /// less per request).
    static BASE_STRING: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The most a reused base-string buffer keeps between requests, in bytes.
const BASE_STRING_KEPT: usize = 16 * 1024;

/// Step 6: the signature, over what the client sent, with the key the credentials give.
fn signature_step(
    facts: &RequestFacts<'_>,
    p: &Presented<'_>,
    key: &SigningKey,
    account: &Account,
    now: i64,
) -> Result<(), Refusal> {
    let header = match &p.proof {
        Proof::Header(header) => *header,
        Proof::Passport => {
            let passport = TokenPassport {
                account: p.realm.unwrap_or_default(),
                consumer_key: p.consumer_key,
                token: p.token,
                nonce: p.nonce,
                timestamp: p.timestamp,
            };
            return key.verify(passport.base_string().as_bytes(), p.signature).map_err(|error| {
                login_failed(
                    "InvalidSignature",
                    json!({ "problem": error.to_string(), "signed": "account&consumerKey&token&nonce&timestamp (raw values), keyed consumerSecret&tokenSecret", "clock_skew_secs": parse_timestamp(p.timestamp).ok().map(|ts| ts - now) }),
                )
            });
        }
    };
    let target = RequestTarget::from_authority(
        facts.method,
        facts.scheme,
        facts.authority,
        facts.path,
        facts.query,
    )
    .map_err(|error| {
        refuse(
            ClientError::BadRequest("The request URL is malformed."),
            "MalformedRequest",
            json!({ "problem": error.to_string() }),
        )
    })?;
    let form_body = facts
        .content_type
        .filter(|ct| keycard_oauth1::is_form_content_type(ct))
        .map(|_| facts.body);
    let request = IncomingRequest {
        target,
        header,
        form_body,
    };
    let verified = BASE_STRING.with_borrow_mut(|buffer| {
        let verified = request.verify_signature(key, buffer);
        // A huge form body's base string does not keep its memory for good.
        if buffer.capacity() > BASE_STRING_KEPT {
            *buffer = Vec::new();
        }
        verified
    });
    if let Err(error) = verified {
        return Err(login_failed(
            "InvalidSignature",
            signature_diagnosis(&request, &error, header, account, now),
        ));
    }
    if let Some(hash) = header.protocol(Protocol::BodyHash) {
        if form_body.is_none() && check_body_hash(hash, facts.body).is_err() {
            return Err(login_failed(
                "InvalidSignature",
                json!({ "problem": "oauth_body_hash does not match the body (SHA-1 of the bytes sent, base64)", "body_bytes": facts.body.len() }),
            ));
        }
    }
    Ok(())
}

/// Step 7: the timestamp (`parsed` from `p`'s by [`parse_timestamp`]) is in the window and the
/// nonce well formed; returns the timestamp. Runs only after the signature verified.
fn freshness_step(
    state: &AppState,
    surface: Surface,
    p: &Presented<'_>,
    parsed: Result<i64, OAuthError>,
    now: i64,
) -> Result<i64, Refusal> {
    let rules = Rules {
        timestamp_window_secs: state.config.timestamp_window.unsigned_abs(),
        allow_legacy_sha1: state.config.allow_legacy_sha1,
        ..Rules::default()
    };
    let checked = parsed.and_then(|seconds| rules.check_timestamp_window(seconds, now));
    let timestamp = checked.map_err(|error| match error {
        OAuthError::TimestampOutOfWindow { skew_secs, window_secs } => login_failed(
            "InvalidTimestamp",
            json!({ "clock_skew_secs": skew_secs, "window_secs": window_secs, "problem": format!("the client's clock is {} s {} the server's", skew_secs.abs(), if skew_secs > 0 { "ahead of" } else { "behind" }) }),
        ),
        other => login_failed("InvalidTimestamp", json!({ "problem": other.to_string() })),
    })?;
    rules.check_nonce(p.nonce).map_err(|error| {
        login_failed(
            nonce_rejected(surface),
            json!({ "problem": error.to_string() }),
        )
    })?;
    Ok(timestamp)
}

/// Step 7b: `(scope, nonce, timestamp)` is used now and was not before, and, when `pool` is
/// given, a concurrency slot is taken from it (one step, so on Redis one round trip). Fails
/// closed: when the shared state cannot be reached nothing is accepted.
async fn admission_step(
    state: &AppState,
    surface: Surface,
    use_: &NonceUse<'_>,
    prepared: Option<NonceKey>,
    pool: Option<Pool<'_>>,
) -> Result<Option<Slot>, Refusal> {
    match state.shared.admit(use_, prepared, pool).await {
        Ok(Admission::Fresh(slot)) => Ok(slot),
        Ok(Admission::Replay) => Err(login_failed(
            nonce_used(surface),
            json!({ "problem": "this nonce and timestamp were already used with these credentials (a replay, or a client reusing nonces)" }),
        )),
        Ok(Admission::PoolFull) => {
            let pool = pool.map(|p| (p.name, p.limit));
            Err(refuse(
                ClientError::ConcurrencyLimit,
                "ConcurrencyLimitExceeded",
                json!({ "pool": pool.map(|p| p.0), "limit": pool.map(|p| p.1) }),
            ))
        }
        Ok(Admission::StateReset) => Err(refuse(
            ClientError::Unavailable,
            "SharedStateReset",
            json!({ "problem": "the shared replay state (Redis) lost its data less than a timestamp window ago, so this request's nonce cannot be checked; logins resume when clients' timestamps pass the reset floor (docs/deploy.md)" }),
        )),
        Err(unreachable) => Err(shared_unreachable(unreachable)),
    }
}

// `map_err` hands the error over by value.
#[allow(clippy::needless_pass_by_value)]
fn shared_unreachable(Unreachable(reason): Unreachable) -> Refusal {
    tracing::error!(%reason, "shared state (Redis) unreachable; refusing");
    refuse(
        ClientError::Unavailable,
        "SharedStateUnavailable",
        json!({ "problem": "the shared state (Redis) could not be reached, so the request was refused rather than risk accepting a replay", "reason": reason }),
    )
}

/// Step 0: cached credentials verify while the directory is away, but only for the grace
/// period: past it, a revocation made meanwhile could be missed, so nothing is accepted.
fn grace_step(state: &AppState) -> Result<(), Refusal> {
    let grace = std::time::Duration::from_secs(state.config.directory_grace_secs);
    match state.cache.directory_unreachable_for() {
        Some(away) if away > grace => Err(refuse(
            ClientError::Unavailable,
            "DirectoryUnavailable",
            json!({ "problem": format!("the directory has been unreachable for {} s, longer than the {} s grace period", away.as_secs(), grace.as_secs()) }),
        )),
        _ => Ok(()),
    }
}

/// The whole pipeline for credentials already read from the request.
async fn run(
    state: &AppState,
    facts: &RequestFacts<'_>,
    p: &Presented<'_>,
    need: &Need,
    known: &mut Known,
) -> Result<Principal, Refusal> {
    grace_step(state)?;
    let (account, found) = account_step(state, facts, p, known).await?;
    let (found_integration, found_token) = found.unzip();
    let integration = integration_step(state, p, &account, found_integration, known).await?;
    let token = token_step(state, p, &account, &integration, found_token, known).await?;
    let method = method_step(state, p)?;
    let now = known.at;
    // Parsed once: the nonce's slot comes from memory while the signature is checked, and
    // `freshness_step` judges the timestamp after it.
    let parsed = parse_timestamp(p.timestamp);
    let prepared = parsed.as_ref().ok().and_then(|&timestamp| {
        state.shared.prepare(&NonceUse {
            scope: token.token.nonce_scope(),
            nonce: p.nonce,
            timestamp,
            now,
        })
    });
    {
        // In a block of its own, so that the key (152 bytes) is not kept in the future across
        // the admission's await.
        let key: Cow<'_, SigningKey> = match &p.proof {
            Proof::Passport => token.passport_key(&integration, method),
            Proof::Header(_) => Cow::Borrowed(token.oauth_key(method)),
        };
        signature_step(facts, p, &key, &account, now)?;
    }
    let timestamp = freshness_step(state, facts.surface, p, parsed, now)?;

    // 8 and 9. IP rule and concurrency slot. The IP is checked first but refused after the
    // nonce is used (a refused request still burns its nonce); no slot is taken for it.
    let ip_allowed = token.role.ip_allowed(facts.peer);
    let pool = ip_allowed.then_some(Pool {
        name: &integration.pool,
        limit: integration.pool_limit,
    });
    let use_ = NonceUse {
        scope: token.token.nonce_scope(),
        nonce: p.nonce,
        timestamp,
        now,
    };
    let Some(slot) = admission_step(state, facts.surface, &use_, prepared, pool).await? else {
        // A slot is only not asked for when the IP is refused.
        return Err(login_failed(
            "IpAddressNotAllowed",
            json!({ "problem": format!("{} is outside the role's allowed IP ranges", facts.peer) }),
        ));
    };

    // 10. Permission for the operation.
    check_need(need, facts.surface, &token, &account)?;
    Ok(Principal {
        account,
        integration,
        token,
        request_id: facts.request_id,
        _slot: slot,
    })
}

fn check_need(
    need: &Need,
    surface: Surface,
    token: &TokenEntry,
    account: &Account,
) -> Result<(), Refusal> {
    let role = &token.role;
    let forbidden = |problem: String| {
        refuse(
            ClientError::Forbidden,
            "InsufficientPermission",
            json!({ "problem": problem }),
        )
    };
    if surface == Surface::Rest {
        if !account.has(Feature::RestWebServices) {
            return Err(login_failed(
                "FeatureDisabled",
                json!({ "problem": "the account does not have REST Web Services enabled" }),
            ));
        }
        if !role.has(SetupPermission::RestWebServices) {
            // A failed login, as NetSuite answers it (401 INVALID_LOGIN, netsuite-tba.md §8
            // item 9), not a 403: without REST Web Services the role cannot use the service at
            // all; a record the role may not touch stays a 403. The trail says which.
            return Err(login_failed(
                "InsufficientPermission",
                json!({ "problem": format!("the role `{}` lacks REST Web Services", role.name) }),
            ));
        }
    }
    if matches!(surface, Surface::Soap(_)) {
        if !account.has(Feature::SoapWebServices) {
            return Err(login_failed(
                "FeatureDisabled",
                json!({ "problem": "the account does not have SOAP Web Services enabled" }),
            ));
        }
        if !role.has(SetupPermission::SoapWebServices) {
            return Err(forbidden(format!(
                "the role `{}` lacks SOAP Web Services",
                role.name
            )));
        }
    }
    match need {
        Need::Soap {
            record: Some((record, level)),
        } if !role.allows(record, *level) => Err(forbidden(format!(
            "the role `{}` has {} on `{record}`; this operation needs {}",
            role.name,
            role.level(record).as_str(),
            level.as_str()
        ))),
        Need::Restlet if role.web_services_only => Err(forbidden(format!(
            "the role `{}` is Web Services Only, which cannot call RESTlets",
            role.name
        ))),
        Need::RestRecord { record, level } if !role.allows(record, *level) => {
            Err(forbidden(format!(
                "the role `{}` has {} on `{record}`; this call needs {}",
                role.name,
                role.level(record).as_str(),
                level.as_str()
            )))
        }
        Need::RestAdministrator if !role.is_administrator() => Err(forbidden(format!(
            "the role `{}` is not an administrator",
            role.name
        ))),
        Need::Login
        | Need::Restlet
        | Need::RestRecord { .. }
        | Need::RestAdministrator
        | Need::Soap { .. } => Ok(()),
    }
}

/// The owner's view of a signature mismatch: what the server rebuilt, never a secret.
fn signature_diagnosis(
    request: &IncomingRequest<'_, '_>,
    error: &OAuthError,
    header: &AuthorizationHeader<'_>,
    account: &Account,
    now: i64,
) -> Value {
    let explanation = request.explain().ok();
    let skew = header
        .protocol(Protocol::Timestamp)
        .and_then(|ts| parse_timestamp(ts).ok())
        .map(|ts| ts - now);
    json!({
        "problem": error.to_string(),
        "rebuilt_base_uri": explanation.as_ref().map(|e| e.base_uri.clone()),
        "signed_parameter_names": explanation.as_ref().map(|e| e.parameters.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()),
        "hints": [
            "the client must sign the URL it sends, with the same scheme, host and port (default ports dropped)",
            "query parameters are signed; a body is signed only when it is application/x-www-form-urlencoded",
        ],
        "realm": header.realm().map(|realm| realm_hint(realm, &account.id).unwrap_or_else(|| "matches the account id".to_owned())),
        "clock_skew_secs": skew,
    })
}

// `map_err` hands the error over by value.
#[allow(clippy::needless_pass_by_value)]
fn unavailable(error: keycard_store::StoreError) -> Refusal {
    tracing::error!(%error, "directory unavailable during authentication");
    refuse(
        ClientError::Unavailable,
        "DirectoryUnavailable",
        json!({ "problem": "the directory could not be read" }),
    )
}

/// What the request-token step established.
pub struct RequestTokenGrant {
    /// The request token and its secret, pending until the authorize page and the exchange.
    pub token: String,
    pub secret: keycard_core::Secret,
    pub request_id: RequestId,
}

/// What the access-token step established: the pending request, now consumed.
pub struct AccessTokenGrant {
    /// The token the exchange created, for the user and role that chose Allow.
    pub credentials: keycard_store::tokens::TokenCredentials,
    pub request_id: RequestId,
}

/// The request step's last part: a request token and its secret, kept pending. Inside the
/// attempt, so that the trail records a refusal as what it is: the integration already has
/// [`crate::flow::PENDING_PER_INTEGRATION`] waiting (the concurrency limit's answer), or the
/// shared state is unreachable (503).
async fn issue_request_token(
    state: &AppState,
    account: &Account,
    integration: &IntegrationEntry,
    callback: String,
    now: i64,
) -> Result<(String, keycard_core::Secret), Refusal> {
    let (Ok(token), Ok(secret)) = (
        keycard_store::crypto::random_hex(32),
        keycard_store::crypto::random_hex(32),
    ) else {
        return Err(refuse(
            ClientError::Unavailable,
            "RandomnessUnavailable",
            json!({ "problem": "the operating system's random source failed" }),
        ));
    };
    let secret = keycard_core::Secret::new(secret);
    let pending = crate::flow::Pending {
        account: account.id.clone(),
        integration_id: integration.integration.id,
        consumer_key: integration.integration.consumer_key.clone(),
        secret: secret.clone(),
        callback,
        expires_at: now + state.config.request_token_ttl,
        stage: Stage::Issued,
    };
    match state.flows.insert(&token, pending, now).await {
        Ok(true) => Ok((token, secret)),
        Ok(false) => Err(refuse(
            ClientError::ConcurrencyLimit,
            "TooManyPendingAuthorizations",
            json!({ "problem": format!("the integration already has {} request tokens waiting for their authorization: finish those or let them expire", crate::flow::PENDING_PER_INTEGRATION) }),
        )),
        Err(unreachable) => Err(shared_unreachable(unreachable)),
    }
}

/// The exchange's last step: the token for the user and role that chose Allow. Inside the
/// attempt, so that the trail says Success only for a token that exists, and a refusal (the
/// user or role changed since Allow) or a directory failure (503) is recorded as what it is.
async fn create_authorized_token(
    state: &AppState,
    account: &Account,
    integration: &IntegrationEntry,
    (user_id, role_id): (i64, i64),
    known: &mut Known,
) -> Result<keycard_store::tokens::TokenCredentials, Refusal> {
    let user = user_id.to_string();
    let created = state
        .store
        .create_token(
            &format!("authorize:user:{user}"),
            &account.id,
            &keycard_store::tokens::Creator::Operator,
            keycard_store::tokens::NewToken {
                integration: integration.integration.id.to_string(),
                user,
                role: role_id.to_string(),
                name: None,
                expires_at: None,
            },
        )
        .await;
    match created {
        Ok((token, credentials)) => {
            known.token = Some(token.name.as_str().into());
            Ok(credentials)
        }
        Err(error) if error.is_server_side() => Err(unavailable(error)),
        Err(error) => Err(login_failed(
            "TokenNotCreated",
            json!({ "problem": format!("the authorized token cannot be created: {error}"), "code": error.code() }),
        )),
    }
}

/// The integration for a three-step request: known, in the account the host or realm names
/// (when one does), Enabled, with TBA and TBA: Authorization Flow checked.
async fn flow_integration(
    state: &AppState,
    facts: &RequestFacts<'_>,
    p: &Presented<'_>,
    known: &mut Known,
) -> Result<(Arc<Account>, Arc<IntegrationEntry>), Refusal> {
    grace_step(state)?;
    let integration = state
        .cache
        .integration(p.consumer_key)
        .await
        .map_err(unavailable)?;
    let named = named_account(state, facts, p.realm);
    let Some(integration) =
        integration.filter(|i| named.as_ref().is_none_or(|a| *a == i.integration.account))
    else {
        let _ = DECOY_KEY.verify(b"decoy", p.signature);
        return Err(login_failed(
            "UnknownIntegration",
            json!({ "problem": "no integration record has this consumer key (in the account the host or realm names)" }),
        ));
    };
    known.account = Some(integration.integration.account.as_str().into());
    known.integration = Some(integration.integration.name.as_str().into());
    let account = integration.account.clone();
    let account = Arc::new(account);
    admits(p, &account)?;
    let flags = &integration.integration.flags;
    if integration.integration.state != IntegrationState::Enabled || !flags.tba {
        return Err(login_failed(
            "IntegrationBlocked",
            json!({ "problem": format!("the integration is {}{}", integration.integration.state.label(), if flags.tba { "" } else { " without Token-based Authentication" }) }),
        ));
    }
    if !flags.tba_authorization_flow {
        return Err(login_failed(
            "AuthorizationFlowRequired",
            json!({ "problem": "the integration does not have TBA: Authorization Flow checked" }),
        ));
    }
    Ok((account, integration))
}

/// `/rest/requesttoken`: signed with the consumer secret alone (`cs&`), with `oauth_callback`.
pub async fn authenticate_request_token(
    state: &AppState,
    facts: &RequestFacts<'_>,
) -> Result<RequestTokenGrant, Response> {
    let mut known = Known::at(state.now());
    let outcome = async {
        let header = parse_header(facts)?;
        known.realm = header.realm().map(Text::from);
        // No token yet: a request token is what this step asks for.
        let required = REQUIRED.iter().filter(|&&param| param != Protocol::Token);
        require_params(&header, required.chain([&Protocol::Callback]))?;
        let p = presented(&header);
        let (account, integration) = flow_integration(state, facts, &p, &mut known).await?;
        let callback = header.protocol(Protocol::Callback).unwrap_or_default().to_owned();
        let registered = integration.integration.flags.callback_url.as_deref();
        if !registered.is_some_and(|r| keycard_core::integration::callback_matches(r, &callback)) {
            return Err(login_failed(
                "InvalidCallback",
                json!({ "problem": "oauth_callback does not match the integration's callback URL", "sent": callback, "registered": registered }),
            ));
        }
        let method = method_step(state, &p)?;
        let key = integration.key(method, "");
        let now = known.at;
        signature_step(facts, &p, &key, &account, now)?;
        let timestamp =
            freshness_step(state, Surface::Rest, &p, parse_timestamp(p.timestamp), now)?;
        let scope = format!("consumer:{}", p.consumer_key);
        let use_ = NonceUse { scope: Scope::new(&scope), nonce: p.nonce, timestamp, now };
        admission_step(state, Surface::Rest, &use_, None, None).await?;
        let (token, secret) = issue_request_token(state, &account, &integration, callback, now).await?;
        Ok(RequestTokenGrant { token, secret, request_id: facts.request_id })
    }
    .await;
    finish(state, facts, known, outcome).await
}

/// `/rest/accesstoken`: the request token, its secret and the verifier the callback carried.
/// The pending request is consumed once the signature verified, whatever the verifier says.
pub async fn authenticate_access_token(
    state: &AppState,
    facts: &RequestFacts<'_>,
) -> Result<AccessTokenGrant, Response> {
    let mut known = Known::at(state.now());
    let outcome = async {
        let header = parse_header(facts)?;
        known.realm = header.realm().map(Text::from);
        require_params(&header, REQUIRED.iter().chain([&Protocol::Verifier]))?;
        let p = presented(&header);
        let (account, integration) = flow_integration(state, facts, &p, &mut known).await?;
        let now = known.at;
        let Some(pending) = state
            .flows
            .get(p.token, now)
            .await
            .map_err(shared_unreachable)?
            .filter(|pending| pending.integration_id == integration.integration.id)
        else {
            let _ = DECOY_KEY.verify(b"decoy", p.signature);
            return Err(login_failed(
                "InvalidToken",
                json!({ "problem": "no pending request token with this id for this integration (unknown, already exchanged, or expired)" }),
            ));
        };
        let method = method_step(state, &p)?;
        let key = integration.key(method, pending.secret.expose());
        signature_step(facts, &p, &key, &account, now)?;
        let timestamp =
            freshness_step(state, Surface::Rest, &p, parse_timestamp(p.timestamp), now)?;
        let scope = format!("request:{}", p.token);
        let use_ = NonceUse { scope: Scope::new(&scope), nonce: p.nonce, timestamp, now };
        admission_step(state, Surface::Rest, &use_, None, None).await?;
        // Single use from here on: a wrong verifier burns the request token too. Of two
        // exchanges at once (on any nodes) only the one that takes it goes on.
        if state.flows.take(p.token, now).await.map_err(shared_unreachable)?.is_none() {
            return Err(login_failed(
                "InvalidToken",
                json!({ "problem": "the request token was exchanged by another request at the same time" }),
            ));
        }
        let verifier = header.protocol(Protocol::Verifier).unwrap_or_default();
        match pending.stage {
            Stage::Allowed { user_id, role_id, verifier: expected } if expected.ct_eq(verifier) => {
                let credentials =
                    create_authorized_token(state, &account, &integration, (user_id, role_id), &mut known)
                        .await?;
                Ok(AccessTokenGrant { credentials, request_id: facts.request_id })
            }
            Stage::Denied => Err(login_failed(
                "AuthorizationDenied",
                json!({ "problem": "the user chose Deny on the authorize page" }),
            )),
            Stage::Allowed { .. } => Err(login_failed(
                "InvalidVerifier",
                json!({ "problem": "oauth_verifier is not the one the callback carried" }),
            )),
            Stage::Issued | Stage::LoggedIn { .. } => Err(login_failed(
                "InvalidVerifier",
                json!({ "problem": "the request token was not authorized on the authorize page yet" }),
            )),
        }
    }
    .await;
    finish(state, facts, known, outcome).await
}
