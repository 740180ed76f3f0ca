//! One request through keycard in process: the router, the pipeline, the handler and the audit
//! trail (a SQLite directory in a temporary folder), without sockets. On a shared VM the load
//! benchmark (`bench/run`) moves by ±10% from one minute to the next, which hides changes of a
//! few percent; here the noise is the machine's, not the network stack's, and every group has
//! its floor measured in the same run: `healthz` goes through the same router and metrics
//! layer with no authentication.
//!
//! Everything runs on one current-thread runtime, as `keycard serve` does on one pinned core:
//! the audit writer takes its turns when the queue fills. Each request is signed ahead of the
//! timed loop with its own nonce, so every one is fully verified and audited.
//!
//!   cargo bench -p keycard-server --bench request
//!
//! Timed figures drift with the VM; instruction counts do not. `REQUESTS=N CASE=tokeninfo`
//! runs exactly N requests untimed, for `valgrind --tool=callgrind
//! --toggle-collect='request::Fixture::send'` (`docs/benchmarks.md`, eighth session).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use criterion::{Criterion, SamplingMode, criterion_group};
use keycard_core::AccountId;
use keycard_oauth1::client::{ClientRequest, Credentials, SignOptions, sign};
use keycard_server::{Application, ServerConfig};
use keycard_store::accounts::NewAccount;
use keycard_store::crypto::{KeyRing, MasterKey};
use keycard_store::tokens::Creator;
use keycard_store::{Location, Store};
use keycard_testkit::directory;
use tower::ServiceExt as _;

/// The `keycard` binary's allocator (`crates/keycard-cli/src/main.rs`): the figures are the
/// server's only with it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ACCOUNT: &str = "1234567";
const HOST: &str = "localhost:8910";

struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: Application,
    consumer_key: String,
    consumer_secret: String,
    token_id: String,
    token_secret: String,
    record_path: String,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let location = Location::DataDir(dir.path().to_owned());
        let (app, consumer, token, record) = runtime.block_on(async {
            let store = Store::open(&location, KeyRing::new(MasterKey::generate().unwrap()))
                .await
                .unwrap();
            let account = AccountId::parse(ACCOUNT).unwrap();
            store
                .create_account("bench", NewAccount::new(account.clone(), "Acme"))
                .await
                .unwrap();
            let consumer = directory::tba_integration(&store, "bench", &account)
                .await
                .unwrap();
            let (_, token) = store
                .create_token(
                    "bench",
                    &account,
                    &Creator::Operator,
                    directory::new_token(None),
                )
                .await
                .unwrap();
            let customer = serde_json::json!({ "companyName": "Acme", "email": "ap@acme.example" });
            let record = store
                .create_rest_record(&account, "customer", &customer)
                .await
                .unwrap();
            let app = keycard_server::application(
                ServerConfig::default(),
                store,
                keycard_server::system_clock(),
            )
            .unwrap();
            // Measure cached credentials from the first iteration on.
            app.state.cache.until_caching().await;
            (app, consumer, token, record)
        });
        Self {
            runtime,
            app,
            consumer_key: consumer.consumer_key,
            consumer_secret: consumer.consumer_secret.expose().to_owned(),
            token_id: token.token_id,
            token_secret: token.token_secret.expose().to_owned(),
            record_path: format!("/services/rest/record/v1/customer/{record}"),
            _dir: dir,
        }
    }

    /// `count` requests for `path`, each signed with a nonce of its own (`signed: false`: none
    /// carries an Authorization header).
    fn requests(&self, path: &str, count: u64, signed: bool) -> Vec<Request<Body>> {
        static BATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let batch = BATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let timestamp = keycard_server::system_clock()().to_string();
        let url = format!("http://{HOST}{path}");
        (0..count)
            .map(|i| {
                let mut request = Request::get(path).header("host", HOST);
                if signed {
                    let nonce = format!("{batch:08x}{i:012x}");
                    let mut options = SignOptions::new(&nonce, &timestamp);
                    options.realm = Some(ACCOUNT);
                    let header = sign(
                        &ClientRequest {
                            method: "GET",
                            url: &url,
                            form_body: None,
                        },
                        &Credentials {
                            consumer_key: &self.consumer_key,
                            consumer_secret: &self.consumer_secret,
                            token: Some(&self.token_id),
                            token_secret: &self.token_secret,
                        },
                        &options,
                    )
                    .unwrap()
                    .authorization;
                    request = request.header("authorization", header);
                }
                request.body(Body::empty()).unwrap()
            })
            .collect()
    }

    /// Sends the requests one after another, reading each answer whole, and waits until the
    /// audit trail holds a record of each signed one; the time taken. (The requests do not
    /// yield, so without the wait the writer would run only once the queue filled: the timing
    /// would count the trail's writes for some iteration counts and not for others.)
    fn send(&self, requests: Vec<Request<Body>>) -> Duration {
        let connection = self
            .app
            .connection(SocketAddr::from(([127, 0, 0, 1], 40000)));
        let written = &self.app.state.metrics.audit_written;
        let audited = requests
            .iter()
            .filter(|r| r.headers().contains_key("authorization"))
            .count() as u64;
        self.runtime.block_on(async move {
            let started = Instant::now();
            let target = written.load(Ordering::Relaxed) + audited;
            for request in requests {
                let response = connection.clone().oneshot(request).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                axum::body::to_bytes(response.into_body(), 1 << 20)
                    .await
                    .unwrap();
            }
            while written.load(Ordering::Relaxed) < target {
                tokio::time::sleep(Duration::from_micros(100)).await;
            }
            started.elapsed()
        })
    }
}

/// The cases: name, path, signed.
fn cases(fixture: &Fixture) -> [(&'static str, &str, bool); 3] {
    [
        ("healthz (router floor)", "/healthz", false),
        ("tokeninfo", "/rest/tokeninfo", true),
        ("record GET", fixture.record_path.as_str(), true),
    ]
}

fn requests(c: &mut Criterion) {
    let fixture = Fixture::new();
    // The first request loads the credentials into the cache.
    fixture.send(fixture.requests("/rest/tokeninfo", 1, true));
    let mut group = c.benchmark_group("request");
    // The estimate is the slope over samples of growing size: each sample's constant part
    // (the writer's linger before its last batch) is not charged to the requests.
    group.sampling_mode(SamplingMode::Linear);
    for (name, path, signed) in cases(&fixture) {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| fixture.send(fixture.requests(path, iters, signed)));
        });
    }
    group.finish();
}

/// `REQUESTS=N CASE=tokeninfo`: exactly N requests of one case, untimed, for counting
/// instructions under valgrind (`callgrind --toggle-collect='*Fixture::send*'`): a count does
/// not drift with the VM's speed as wall time does, so it can tell changes of a percent apart.
fn counted(count: u64, case: &str) {
    let fixture = Fixture::new();
    fixture.send(fixture.requests("/rest/tokeninfo", 1, true));
    let (_, path, signed) = cases(&fixture)
        .into_iter()
        .find(|(name, _, _)| name.starts_with(case))
        .expect("CASE names one of the cases");
    fixture.send(fixture.requests(path, count, signed));
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = requests
}

fn main() {
    if let Ok(count) = std::env::var("REQUESTS") {
        let case = std::env::var("CASE").unwrap_or_else(|_| "tokeninfo".to_owned());
        counted(count.parse().expect("REQUESTS is a number"), &case);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
