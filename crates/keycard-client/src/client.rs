//! The async HTTP client: builds the URL, signs each attempt with a fresh nonce and timestamp,
//! sends, reads NetSuite's answer, and retries concurrency rejections only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keycard_oauth1::encode::{
    encode_form, percent_decode_bytes, percent_encode, percent_encode_into,
};
use keycard_oauth1::{Explanation, SignatureMethod};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use zeroize::{Zeroize as _, Zeroizing};

use crate::clock::{Clock, OsRandom, Randomness, SystemClock};
use crate::error::{ApiError, Error};
use crate::hosts::service_base;
use crate::retry::RetryPolicy;
use crate::signer::{SignRequest, Signer};
use crate::{Credentials, Realm};

/// One request to make: method, path (or absolute URL), query, body, and the three-step
/// flow's extra parameters.
#[derive(Debug, Clone)]
pub struct Call {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    body: Body,
    body_hash: bool,
    callback: Option<String>,
    verifier: Option<String>,
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Form(Vec<(String, String)>),
    Raw {
        content_type: String,
        bytes: Vec<u8>,
    },
}

impl Call {
    /// `method` and a path such as `/services/rest/record/v1/customer` (a query already in
    /// it is kept as written), or an absolute `http(s)://` URL.
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            method: method.into().to_ascii_uppercase(),
            path: path.into(),
            query: Vec::new(),
            body: Body::None,
            body_hash: false,
            callback: None,
            verifier: None,
        }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Self::new("GET", path)
    }

    pub fn post(path: impl Into<String>) -> Self {
        Self::new("POST", path)
    }

    /// Adds a query parameter (percent-encoded here; it is signed).
    #[must_use]
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Adds a form field: the body becomes `application/x-www-form-urlencoded`, whose fields
    /// are signed.
    #[must_use]
    pub fn form(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let field = (name.into(), value.into());
        match &mut self.body {
            Body::Form(fields) => fields.push(field),
            other => *other = Body::Form(vec![field]),
        }
        self
    }

    /// A JSON body (not signed, unless [`Call::body_hash`] is set).
    #[must_use]
    pub fn json(self, value: &serde_json::Value) -> Self {
        self.body("application/json", value.to_string().into_bytes())
    }

    /// Any other body with its content type.
    #[must_use]
    pub fn body(mut self, content_type: impl Into<String>, bytes: Vec<u8>) -> Self {
        self.body = Body::Raw {
            content_type: content_type.into(),
            bytes,
        };
        self
    }

    /// Also send and sign `oauth_body_hash` of a non-form body.
    #[must_use]
    pub fn body_hash(mut self, on: bool) -> Self {
        self.body_hash = on;
        self
    }

    /// `oauth_callback` (request-token step).
    #[must_use]
    pub fn callback(mut self, url: impl Into<String>) -> Self {
        self.callback = Some(url.into());
        self
    }

    /// `oauth_verifier` (access-token step).
    #[must_use]
    pub fn verifier(mut self, verifier: impl Into<String>) -> Self {
        self.verifier = Some(verifier.into());
        self
    }

    pub fn method(&self) -> &str {
        &self.method
    }
}

/// A success (2xx) answer. Its `Debug` shows the body's length only: a body can be a secret
/// (the access-token step's `oauth_token_secret`, issuetoken's `tokenSecret`).
#[derive(Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    /// `x-request-id`.
    pub request_id: Option<String>,
    pub body: Vec<u8>,
    /// Attempts made (more than 1 after concurrency retries).
    pub attempts: u32,
    /// Time from sending the last attempt to reading its whole body.
    pub elapsed: Duration,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("request_id", &self.request_id)
            .field("body_len", &self.body.len())
            .field("attempts", &self.attempts)
            .field("elapsed", &self.elapsed)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// The body as JSON (`null` for an empty body, as a 204 has).
    pub fn json(&self) -> Result<serde_json::Value, Error> {
        if self.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::UnexpectedBody(format!("the body is not JSON: {e}")))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as `application/x-www-form-urlencoded` pairs (the three-step flow's answers).
    pub fn form(&self) -> Vec<(String, String)> {
        parse_form(&self.body)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the retry hook is told before each wait.
#[derive(Debug, Clone)]
pub struct RetryNotice {
    /// The attempt that was refused (1-based).
    pub attempt: u32,
    pub max_attempts: u32,
    pub delay: Duration,
    pub error: ApiError,
}

type RetryHook = Arc<dyn Fn(&RetryNotice) + Send + Sync>;

/// A request token of the three-step flow (`/rest/requesttoken`'s answer).
pub struct RequestToken {
    pub token: String,
    pub secret: Zeroizing<String>,
}

impl std::fmt::Debug for RequestToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestToken")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// A user's login for `/rest/issuetoken` (NLAuth): email, password, role, optional TOTP.
pub struct UserCredentials {
    pub email: String,
    pub password: Zeroizing<String>,
    /// Role id or name.
    pub role: String,
    pub otp: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredentials")
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Configures a [`Client`].
pub struct ClientBuilder {
    base_url: String,
    credentials: Credentials,
    realm: Option<Realm>,
    method: SignatureMethod,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Randomness>,
    retry: RetryPolicy,
    on_retry: Option<RetryHook>,
    timeout: Duration,
}

impl ClientBuilder {
    #[must_use]
    pub fn realm(mut self, realm: Realm) -> Self {
        self.realm = Some(realm);
        self
    }

    #[must_use]
    pub fn signature_method(mut self, method: SignatureMethod) -> Self {
        self.method = method;
        self
    }

    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    #[must_use]
    pub fn randomness(mut self, random: Arc<dyn Randomness>) -> Self {
        self.random = random;
        self
    }

    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Called before each wait between attempts (e.g. to show progress).
    #[must_use]
    pub fn on_retry(mut self, hook: impl Fn(&RetryNotice) + Send + Sync + 'static) -> Self {
        self.on_retry = Some(Arc::new(hook));
        self
    }

    /// The limit for one attempt (default 60 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn build(self) -> Result<Client, Error> {
        let base_url = self.base_url.trim_end_matches('/').to_owned();
        reqwest::Url::parse(&base_url).map_err(|e| Error::Url {
            url: base_url.clone(),
            reason: e.to_string(),
        })?;
        let http = reqwest::Client::builder()
            // A redirect would send the request to a URL it was not signed for.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .user_agent(concat!("keycard-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| Error::Transport {
                url: base_url.clone(),
                source,
            })?;
        // NetSuite refuses REST and RESTlet calls without the account as realm: on an account
        // host the host names it.
        let realm = self.realm.or_else(|| {
            crate::hosts::account_of(&base_url).map(|account| Realm::from_account(&account))
        });
        Ok(Client {
            http,
            base_url,
            signer: Signer::new(self.credentials, realm).with_method(self.method),
            clock: self.clock,
            random: self.random,
            retry: self.retry,
            on_retry: self.on_retry,
        })
    }
}

/// Signs and sends requests to one server with one set of credentials.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    signer: Signer,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Randomness>,
    retry: RetryPolicy,
    on_retry: Option<RetryHook>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("signer", &self.signer)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// `base_url` is the server, e.g. `https://1234567.restlets.api.netsuite.com` (any of the
    /// account's NetSuite hosts: each call goes to its service's) or `http://localhost:8910`;
    /// defaults: HMAC-SHA256, the realm of the account a NetSuite account host names (else
    /// none), the system clock, the OS
    /// random source, [`RetryPolicy::default`], 60 s per attempt.
    pub fn builder(base_url: impl Into<String>, credentials: Credentials) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            credentials,
            realm: None,
            method: SignatureMethod::HmacSha256,
            clock: Arc::new(SystemClock),
            random: Arc::new(OsRandom),
            retry: RetryPolicy::default(),
            on_retry: None,
            timeout: Duration::from_secs(60),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The same client with other credentials (e.g. a request token, or a rotated token).
    #[must_use]
    pub fn with_credentials(&self, credentials: Credentials) -> Self {
        let mut client = self.clone();
        client.signer = Signer::new(credentials, self.signer.realm().cloned())
            .with_method(self.signer.method());
        client
    }

    /// The same client with another realm (or none).
    #[must_use]
    pub fn with_realm(&self, realm: Option<Realm>) -> Self {
        let mut client = self.clone();
        client.signer =
            Signer::new(self.signer.credentials().clone(), realm).with_method(self.signer.method());
        client
    }

    /// The absolute URL `call` goes to, as it is sent and signed. A path on a NetSuite account
    /// host goes to the host of its service ([`service_base`]).
    pub fn url(&self, call: &Call) -> Result<String, Error> {
        let mut url = if call.path.starts_with("http://") || call.path.starts_with("https://") {
            call.path.clone()
        } else {
            let path = if call.path.starts_with('/') {
                std::borrow::Cow::Borrowed(call.path.as_str())
            } else {
                std::borrow::Cow::Owned(format!("/{}", call.path))
            };
            format!("{}{path}", service_base(&self.base_url, &path))
        };
        for (i, (name, value)) in call.query.iter().enumerate() {
            let separator = if i == 0 && !url.contains('?') {
                '?'
            } else {
                '&'
            };
            url.push(separator);
            url.push_str(&percent_encode(name));
            url.push('=');
            url.push_str(&percent_encode(value));
        }
        // Sign exactly what goes on the wire: the URL as the HTTP library will write it.
        let parsed = reqwest::Url::parse(&url).map_err(|e| Error::Url {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        Ok(parsed.into())
    }

    fn form_body(call: &Call) -> Option<String> {
        match &call.body {
            Body::Form(fields) => Some(encode_form(fields)),
            _ => None,
        }
    }

    fn sign(
        &self,
        call: &Call,
        url: &str,
        form: Option<&str>,
    ) -> Result<keycard_oauth1::client::Signed, Error> {
        let raw = match &call.body {
            Body::Raw { bytes, .. } if call.body_hash => Some(bytes.as_slice()),
            _ => None,
        };
        let request = SignRequest {
            method: &call.method,
            url,
            form_body: form,
            body_for_hash: raw,
            callback: call.callback.as_deref(),
            verifier: call.verifier.as_deref(),
        };
        Ok(self
            .signer
            .sign(&request, &self.random.nonce(), self.clock.unix_now())?)
    }

    /// What `call` would be signed over now (base URI, parameters, base string), for
    /// `--explain`-style output. Never contains a secret.
    pub fn explain(&self, call: &Call) -> Result<Explanation, Error> {
        let url = self.url(call)?;
        let form = Self::form_body(call);
        Ok(self.sign(call, &url, form.as_deref())?.explanation)
    }

    /// Signs and sends `call`; a concurrency rejection is retried per the [`RetryPolicy`] with
    /// a fresh nonce and timestamp; any other non-2xx answer is an [`Error::Api`] at once.
    pub async fn send(&self, call: &Call) -> Result<Response, Error> {
        let url = self.url(call)?;
        let form = Self::form_body(call);
        let method =
            reqwest::Method::from_bytes(call.method.as_bytes()).map_err(|_| Error::Url {
                url: url.clone(),
                reason: format!("`{}` is not an HTTP method", call.method),
            })?;
        let max = self.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let signed = self.sign(call, &url, form.as_deref())?;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header(AUTHORIZATION, &signed.authorization);
            match (&call.body, &form) {
                (_, Some(form)) => {
                    request = request
                        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(form.clone());
                }
                (
                    Body::Raw {
                        content_type,
                        bytes,
                    },
                    None,
                ) => {
                    request = request
                        .header(CONTENT_TYPE, content_type.as_str())
                        .body(bytes.clone());
                }
                _ => {}
            }
            let started = Instant::now();
            let transport = |source| Error::Transport {
                url: url.clone(),
                source,
            };
            let answer = request.send().await.map_err(transport)?;
            let status = answer.status().as_u16();
            let headers = answer.headers().clone();
            let body = answer.bytes().await.map_err(transport)?.to_vec();
            let elapsed = started.elapsed();
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            if (200..300).contains(&status) {
                return Ok(Response {
                    status,
                    request_id: header("x-request-id"),
                    headers,
                    body,
                    attempts: attempt,
                    elapsed,
                });
            }
            let error = ApiError::from_answer(
                status,
                &body,
                header("x-request-id"),
                header("date"),
                attempt,
            );
            if !error.is_concurrency_limit() || attempt >= max {
                return Err(error.into());
            }
            let delay = self.retry.delay(attempt, self.random.next_u32());
            if let Some(hook) = &self.on_retry {
                hook(&RetryNotice {
                    attempt,
                    max_attempts: max,
                    delay,
                    error,
                });
            }
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// `GET /rest/tokeninfo`: the token's account, integration, user and role.
    pub async fn token_info(&self) -> Result<serde_json::Value, Error> {
        self.send(&Call::get("/rest/tokeninfo")).await?.json()
    }

    /// Three-step flow, step 1: `POST /rest/requesttoken` with `oauth_callback`, signed with
    /// the consumer secret alone. The client's credentials must not carry a token.
    pub async fn request_token(&self, callback: &str) -> Result<RequestToken, Error> {
        let consumer_only = self.with_credentials(Credentials::new(
            self.signer.credentials().consumer_key(),
            self.signer.credentials().consumer_secret(),
        ));
        let answer = consumer_only
            .send(&Call::post("/rest/requesttoken").callback(callback))
            .await?;
        let (token, secret) = token_and_secret(answer);
        match (token, secret) {
            (Some(token), Some(secret)) => Ok(RequestToken { token, secret }),
            _ => Err(Error::UnexpectedBody(
                "requesttoken answered without oauth_token and oauth_token_secret".into(),
            )),
        }
    }

    /// Three-step flow, step 3: `POST /rest/accesstoken` with the authorized request token and
    /// the verifier from the callback. Returns the credentials with the new access token.
    pub async fn access_token(
        &self,
        request_token: &RequestToken,
        verifier: &str,
    ) -> Result<Credentials, Error> {
        let consumer = self.signer.credentials();
        let signer = self.with_credentials(
            Credentials::new(consumer.consumer_key(), consumer.consumer_secret())
                .with_token(&request_token.token, request_token.secret.as_str()),
        );
        let answer = signer
            .send(&Call::post("/rest/accesstoken").verifier(verifier))
            .await?;
        match token_and_secret(answer) {
            (Some(token), Some(secret)) => Ok(Credentials::new(
                consumer.consumer_key(),
                consumer.consumer_secret(),
            )
            .with_token(token, secret.as_str())),
            _ => Err(Error::UnexpectedBody(
                "accesstoken answered without oauth_token and oauth_token_secret".into(),
            )),
        }
    }

    /// `GET /rest/revoketoken?consumerKey=…&token=…`, signed by the token being revoked (this
    /// client's), as NetSuite's examples send it (netsuite-tba.md §2.3, vector T4).
    pub async fn revoke_token(&self) -> Result<(), Error> {
        self.send(&self.revoke_call()).await?;
        Ok(())
    }

    fn revoke_call(&self) -> Call {
        let credentials = self.signer.credentials();
        let token = credentials.token_id().unwrap_or_default().to_owned();
        Call::get("/rest/revoketoken")
            .query("consumerKey", credentials.consumer_key().to_owned())
            .query("token", token)
    }

    /// `GET /rest/issuetoken?consumerKey=…[&name=…]` with the user's NLAuth credentials (not
    /// TBA): a new token for this client's consumer key. The realm is sent as
    /// `nlauth_account`. Not retried (a retry could issue two tokens).
    pub async fn issue_token(
        &self,
        user: &UserCredentials,
        name: Option<&str>,
    ) -> Result<Credentials, Error> {
        let consumer = self.signer.credentials();
        let mut call = Call::get("/rest/issuetoken").query("consumerKey", consumer.consumer_key());
        if let Some(name) = name {
            call = call.query("name", name);
        }
        let url = self.url(&call)?;
        // Sized for the worst encoding up front and encoded in place: a buffer that grew, or
        // an encoded copy of the password, would leave the password behind unwiped.
        let realm = self.signer.realm().map_or("", Realm::as_str);
        let otp = user.otp.as_ref().map_or("", |otp| otp.as_str());
        let encoded_len = 3
            * (realm.len() + user.email.len() + user.password.len() + user.role.len() + otp.len());
        let mut header = Zeroizing::new(String::with_capacity(128 + encoded_len));
        header.push_str("NLAuth ");
        if !realm.is_empty() {
            header.push_str("nlauth_account=");
            percent_encode_into(realm.as_bytes(), &mut header);
            header.push_str(", ");
        }
        for (name, value) in [
            ("nlauth_email=", user.email.as_str()),
            (", nlauth_signature=", user.password.as_str()),
            (", nlauth_role=", user.role.as_str()),
        ] {
            header.push_str(name);
            percent_encode_into(value.as_bytes(), &mut header);
        }
        if user.otp.is_some() {
            header.push_str(", nlauth_otp=");
            percent_encode_into(otp.as_bytes(), &mut header);
        }
        let transport = |source| Error::Transport {
            url: url.clone(),
            source,
        };
        let answer = self
            .http
            .get(&url)
            .header(AUTHORIZATION, header.as_str())
            .send()
            .await
            .map_err(transport)?;
        let status = answer.status().as_u16();
        let headers = answer.headers().clone();
        let body = Zeroizing::new(answer.bytes().await.map_err(transport)?.to_vec());
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if !(200..300).contains(&status) {
            return Err(ApiError::from_answer(
                status,
                &body,
                header("x-request-id"),
                header("date"),
                1,
            )
            .into());
        }
        let mut json: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| Error::UnexpectedBody("issuetoken answered without JSON".into()))?;
        let issued = match (json["tokenId"].as_str(), json["tokenSecret"].as_str()) {
            (Some(id), Some(secret)) => Ok(Credentials::new(
                consumer.consumer_key(),
                consumer.consumer_secret(),
            )
            .with_token(id, secret)),
            _ => Err(Error::UnexpectedBody(
                "issuetoken answered without tokenId and tokenSecret".into(),
            )),
        };
        // The parsed copy of the secret is wiped too (the body is, being `Zeroizing`).
        if let Some(serde_json::Value::String(secret)) = json.get_mut("tokenSecret") {
            secret.zeroize();
        }
        issued
    }
}

/// A three-step answer's `oauth_token` and `oauth_token_secret`; the body and every decoded
/// value are wiped before returning, so only the returned secret's buffer holds it.
fn token_and_secret(mut answer: Response) -> (Option<String>, Option<Zeroizing<String>>) {
    let mut form = answer.form();
    answer.body.zeroize();
    let mut token = None;
    let mut secret = None;
    for (name, value) in &mut form {
        match name.as_str() {
            "oauth_token" if token.is_none() => token = Some(value.clone()),
            "oauth_token_secret" if secret.is_none() => {
                secret = Some(Zeroizing::new(std::mem::take(value)));
            }
            _ => {}
        }
        value.zeroize();
    }
    (token, secret)
}

/// Decodes `a=1&b=2` (`+` as space), e.g. a three-step answer or a callback query.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let mut parts = pair.splitn(2, |b| *b == b'=');
            let name = percent_decode_bytes(parts.next()?, true).ok()?;
            let value = percent_decode_bytes(parts.next().unwrap_or_default(), true).ok()?;
            Some((
                String::from_utf8_lossy(&name).into_owned(),
                String::from_utf8_lossy(&value).into_owned(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client::builder(
            "http://localhost:8910/",
            Credentials::new("ck", "cs").with_token("tk", "ts"),
        )
        .build()
        .unwrap()
    }

    /// revoketoken names the consumer key too, as NetSuite's examples do (vector T4); before,
    /// only the token was sent.
    #[test]
    fn revoking_signs_the_consumer_key_and_the_token() {
        let c = client();
        assert_eq!(
            c.url(&c.revoke_call()).unwrap(),
            "http://localhost:8910/rest/revoketoken?consumerKey=ck&token=tk"
        );
        let signed = c.explain(&c.revoke_call()).unwrap();
        for name in ["consumerKey", "token"] {
            assert!(signed.parameters.iter().any(|(n, _)| n == name), "{name}");
        }
    }

    /// A three-step answer gives its token and secret; the first of each counts.
    #[test]
    fn three_step_answers_give_their_token_and_secret() {
        let answer = |body: &str| Response {
            status: 200,
            headers: HeaderMap::new(),
            request_id: None,
            body: body.as_bytes().to_vec(),
            attempts: 1,
            elapsed: Duration::ZERO,
        };
        let (token, secret) = token_and_secret(answer(
            "oauth_token=tk&oauth_token_secret=s%2Bt&oauth_callback_confirmed=true&oauth_token=x",
        ));
        assert_eq!(token.as_deref(), Some("tk"));
        assert_eq!(secret.as_deref().map(String::as_str), Some("s+t"));
        assert_eq!(token_and_secret(answer("oauth_token=tk")).1, None);
    }

    /// A response's Debug never shows its body, which can be a secret.
    #[test]
    fn a_responses_debug_shows_the_bodys_length_only() {
        let response = Response {
            status: 200,
            headers: HeaderMap::new(),
            request_id: None,
            body: b"oauth_token=tk&oauth_token_secret=SECRET".to_vec(),
            attempts: 1,
            elapsed: Duration::ZERO,
        };
        let shown = format!("{response:?}");
        assert!(
            !shown.contains("SECRET") && !shown.contains("83, 69, 67"),
            "{shown}"
        );
        assert!(shown.contains("body_len: 40"), "{shown}");
    }

    #[test]
    fn urls_keep_the_path_query_and_encode_added_parameters() {
        let c = client();
        assert_eq!(
            c.url(&Call::get("/rest/tokeninfo")).unwrap(),
            "http://localhost:8910/rest/tokeninfo"
        );
        assert_eq!(
            c.url(&Call::get("/x?limit=1").query("q", "a b&c")).unwrap(),
            "http://localhost:8910/x?limit=1&q=a%20b%26c"
        );
        assert_eq!(
            c.url(&Call::get("https://other.example/y").query("k", "v"))
                .unwrap(),
            "https://other.example/y?k=v"
        );
    }

    /// NetSuite needs the account as realm; a client on an account host sends it without
    /// being told (before: no realm, and every call was an `INVALID_LOGIN`).
    #[test]
    fn a_client_on_an_account_host_signs_with_its_account_as_realm() {
        let credentials = || Credentials::new("ck", "cs").with_token("tk", "ts");
        let on_host = Client::builder(
            "https://1234567-sb1.restlets.api.netsuite.com",
            credentials(),
        )
        .build()
        .unwrap();
        assert_eq!(
            on_host.signer.realm().map(Realm::as_str),
            Some("1234567_SB1")
        );
        let told = Client::builder(
            "https://1234567-sb1.restlets.api.netsuite.com",
            credentials(),
        )
        .realm(Realm::new("7654321"))
        .build()
        .unwrap();
        assert_eq!(told.signer.realm().map(Realm::as_str), Some("7654321"));
        assert!(
            client().signer.realm().is_none(),
            "localhost names no account"
        );
    }

    #[test]
    fn calls_on_a_netsuite_account_host_go_to_their_service_and_are_signed_there() {
        let c = Client::builder(
            "https://1234567.restlets.api.netsuite.com",
            Credentials::new("ck", "cs").with_token("tk", "ts"),
        )
        .build()
        .unwrap();
        let record = Call::get("/services/rest/record/v1/customer").query("limit", "1");
        assert_eq!(
            c.url(&record).unwrap(),
            "https://1234567.suitetalk.api.netsuite.com/services/rest/record/v1/customer?limit=1"
        );
        assert_eq!(
            c.explain(&record).unwrap().base_uri,
            "https://1234567.suitetalk.api.netsuite.com/services/rest/record/v1/customer"
        );
        assert_eq!(
            c.url(&Call::get("rest/tokeninfo")).unwrap(),
            "https://1234567.restlets.api.netsuite.com/rest/tokeninfo"
        );
    }

    #[test]
    fn form_fields_are_signed_and_json_bodies_only_with_a_body_hash() {
        let c = client();
        let form = c.explain(&Call::post("/p").form("a", "1")).unwrap();
        assert!(form.parameters.iter().any(|(n, v)| n == "a" && v == "1"));
        let json = serde_json::json!({"x": 1});
        let plain = c.explain(&Call::post("/p").json(&json)).unwrap();
        assert!(!plain.parameters.iter().any(|(n, _)| n == "oauth_body_hash"));
        let hashed = c
            .explain(&Call::post("/p").json(&json).body_hash(true))
            .unwrap();
        assert!(
            hashed
                .parameters
                .iter()
                .any(|(n, _)| n == "oauth_body_hash")
        );
    }

    #[test]
    fn form_answers_decode() {
        assert_eq!(
            parse_form(b"oauth_token=a%2Bb&x=1+2&"),
            vec![
                ("oauth_token".into(), "a+b".into()),
                ("x".into(), "1 2".into())
            ]
        );
    }
}
