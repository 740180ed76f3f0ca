//! End-to-end tests over real HTTP: the server on `127.0.0.1:0`, a real SQLite directory, and
//! requests signed by our signer and by independent client libraries.
// Tests fail by panicking; scenario tests read best as one long story.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

mod browser;
mod clients;
mod flow;
mod invalidation;
mod listener;
mod pipeline;
mod soap;
mod surfaces;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use keycard_core::{AccountId, IntegrationFlags, Level, SetupPermission};
use keycard_oauth1::client::{ClientRequest, Credentials, SignOptions, sign};
use keycard_server::{RunningServer, ServerConfig};
use keycard_store::accounts::NewAccount;
use keycard_store::crypto::{KeyRing, MasterKey};
use keycard_store::integrations::NewIntegration;
use keycard_store::roles::NewRole;
use keycard_store::tokens::{Creator, NewToken};
use keycard_store::users::NewUser;
use keycard_store::{Location, Store};

pub const ACCOUNT: &str = "1234567_SB1";

pub struct Creds {
    pub consumer_key: String,
    pub consumer_secret: String,
    pub token: String,
    pub token_secret: String,
}

pub struct Harness {
    pub store: Store,
    pub server: Option<RunningServer>,
    pub base: String,
    pub clock: Arc<AtomicI64>,
    pub creds: Creds,
    pub http: reqwest::Client,
    /// The master key, for a second `Store` on the same directory (another process's view).
    pub keys: KeyRing,
    /// Where the directory is ([`Harness::another_store`]).
    pub location: Location,
    pub dir: tempfile::TempDir,
}

pub fn account() -> AccountId {
    AccountId::parse(ACCOUNT).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(ServerConfig::default()).await
    }

    pub async fn start_with(config: ServerConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::DataDir(dir.path().to_owned());
        Self::start_at(config, &location, dir).await
    }

    /// The server on the directory at `location` (`dir` is kept alive with the harness).
    pub async fn start_at(
        config: ServerConfig,
        location: &Location,
        dir: tempfile::TempDir,
    ) -> Self {
        let clock = Arc::new(AtomicI64::new(now()));
        let reader = clock.clone();
        let keys = KeyRing::new(MasterKey::generate().unwrap());
        let store = Store::open(location, keys.clone())
            .await
            .unwrap()
            .with_clock(Arc::new(move || reader.load(Ordering::SeqCst)));
        let a = account();
        store
            .create_account("test", NewAccount::new(a.clone(), "Acme"))
            .await
            .unwrap();
        let flags = IntegrationFlags {
            tba: true,
            tba_issue_token_endpoint: true,
            user_credentials: true,
            tba_authorization_flow: true,
            callback_url: Some("http://localhost:*/callback?from=app".into()),
            ..IntegrationFlags::default()
        };
        let (_, consumer) = store
            .create_integration(
                "test",
                &a,
                NewIntegration {
                    name: "Order Sync".into(),
                    description: String::new(),
                    flags,
                    concurrency_limit: None,
                    auto_installed: false,
                },
            )
            .await
            .unwrap();
        store
            .create_role(
                "test",
                &a,
                NewRole {
                    name: "Integrator".into(),
                    setup: [
                        SetupPermission::LogInUsingAccessTokens,
                        SetupPermission::RestWebServices,
                        SetupPermission::SoapWebServices,
                        SetupPermission::UserAccessTokens,
                    ]
                    .into(),
                    records: [
                        ("customer".to_owned(), Level::Full),
                        ("salesorder".to_owned(), Level::View),
                    ]
                    .into(),
                    ..NewRole::default()
                },
            )
            .await
            .unwrap();
        store
            .create_user(
                "test",
                &a,
                NewUser {
                    email: "sync@example.com".into(),
                    name: "Sync".into(),
                    password: Some("a long password".to_owned().into()),
                    roles: vec!["Integrator".into()],
                },
            )
            .await
            .unwrap();
        let (_, token) = store
            .create_token(
                "test",
                &a,
                &Creator::Operator,
                NewToken {
                    integration: "Order Sync".into(),
                    user: "sync@example.com".into(),
                    role: "Integrator".into(),
                    name: None,
                    expires_at: None,
                },
            )
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server_clock = clock.clone();
        let server = keycard_server::start(
            config,
            store.clone(),
            listener,
            Arc::new(move || server_clock.load(Ordering::SeqCst)),
        )
        .unwrap();
        // Tests count the cache's loads: from its first version read on, loads are cached.
        server.until_caching().await;
        let base = format!("http://localhost:{}", server.addr.port());
        Self {
            store,
            base,
            server: Some(server),
            clock,
            creds: Creds {
                consumer_key: consumer.consumer_key,
                consumer_secret: consumer.consumer_secret.expose().to_owned(),
                token: token.token_id,
                token_secret: token.token_secret.expose().to_owned(),
            },
            http: reqwest::Client::new(),
            keys,
            location: location.clone(),
            dir,
        }
    }

    /// A store of its own on the harness's directory: what another process or node sees and
    /// changes (the server's store hears of its changes only through the directory).
    pub async fn another_store(&self) -> Store {
        Store::open(&self.location, self.keys.clone())
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Our signer's Authorization header for `method url` (fresh nonce, harness time).
    pub fn authorization(
        &self,
        method: &str,
        url: &str,
        form: Option<&str>,
        realm: Option<&str>,
    ) -> String {
        self.authorization_at(
            method,
            url,
            form,
            realm,
            &fresh_nonce(),
            self.clock.load(Ordering::SeqCst),
        )
    }

    pub fn authorization_at(
        &self,
        method: &str,
        url: &str,
        form: Option<&str>,
        realm: Option<&str>,
        nonce: &str,
        timestamp: i64,
    ) -> String {
        let ts = timestamp.to_string();
        let mut options = SignOptions::new(nonce, &ts);
        options.realm = realm;
        let creds = Credentials {
            consumer_key: &self.creds.consumer_key,
            consumer_secret: &self.creds.consumer_secret,
            token: Some(&self.creds.token),
            token_secret: &self.creds.token_secret,
        };
        sign(
            &ClientRequest {
                method,
                url,
                form_body: form,
            },
            &creds,
            &options,
        )
        .unwrap()
        .authorization
    }

    /// A signed request with realm = the account.
    pub async fn signed(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        let url = self.url(path);
        let auth = self.authorization(method.as_str(), &url, None, Some(ACCOUNT));
        self.http
            .request(method, &url)
            .header("authorization", auth)
            .send()
            .await
            .unwrap()
    }

    /// Stops the server (flushing the audit trail) and returns the login records, oldest first.
    pub async fn audit(&mut self) -> Vec<keycard_core::LoginRecord> {
        if let Some(server) = self.server.take() {
            server.stop().await.unwrap();
        }
        let mut records = self
            .store
            .login_records(&keycard_store::audit::LoginQuery::default())
            .await
            .unwrap();
        records.reverse();
        records
    }
}

/// A fresh database on the test PostgreSQL server; its URL.
pub async fn fresh_postgres_url() -> String {
    keycard_testkit::fresh_postgres_database().await
}

pub fn fresh_nonce() -> String {
    keycard_store::crypto::random_hex(10).unwrap()
}

pub async fn body(response: reqwest::Response) -> serde_json::Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}
