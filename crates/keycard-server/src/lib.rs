//! `keycard serve`: the authenticating server. One pipeline ([`pipeline`]) serves every surface;
//! the hot path reads memory ([`cache`]) and the replay and concurrency state ([`shared`]: this
//! process, or Redis when several nodes serve); every attempt goes to the
//! login audit trail through a batching writer ([`audit`]).

pub mod audit;
pub mod cache;
pub mod config;
pub mod counters;
pub mod dispatch;
pub mod drain;
pub mod flow;
pub mod listen;
pub mod metrics;
pub mod pipeline;
pub mod request_id;
pub mod respond;
pub mod routing;
pub mod shared;
pub mod surfaces;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use keycard_store::Store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use crate::config::ServerConfig;

/// Reads the time; injected so tests can move it.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Everything a request handler needs.
pub struct AppState {
    pub config: ServerConfig,
    pub store: Store,
    pub cache: Arc<cache::CredentialCache>,
    pub shared: shared::SharedState,
    pub audit: audit::AuditSender,
    pub metrics: Arc<metrics::Metrics>,
    pub flows: flow::PendingFlows,
    pub clock: Clock,
}

impl AppState {
    pub fn now(&self) -> i64 {
        (self.clock)()
    }
}

/// A running server.
pub struct RunningServer {
    pub addr: SocketAddr,
    cache: Arc<cache::CredentialCache>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Returns once the server caches credentials (tests that count loads wait for it): its
    /// cache's first directory version read, normally moments after the start.
    pub async fn until_caching(&self) {
        self.cache.until_caching().await;
    }

    /// Stops accepting, finishes in-flight requests, flushes the audit trail.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.task.await?
    }
}

/// The application without a listener: a fresh state and the audit writer's task. [`start`]
/// serves it; the in-process benchmark (`benches/request.rs`) calls
/// [`Application::connection`]'s service directly.
pub struct Application {
    pub state: Arc<AppState>,
    /// Ends once the last clone of the state is dropped and the audit queue is drained.
    pub writer: tokio::task::JoinHandle<()>,
}

/// Builds the [`Application`]; spawns its audit writer on the current runtime.
pub fn application(
    config: ServerConfig,
    store: Store,
    clock: Clock,
) -> anyhow::Result<Application> {
    let metrics = Arc::new(metrics::Metrics::default());
    let (audit, writer) = audit::spawn_writer(store.clone(), config.audit_queue, metrics.clone());
    let shared = shared::SharedState::from_config(&config)?;
    let flows = flow::PendingFlows::new(&shared, &store);
    let state = Arc::new(AppState {
        cache: cache::CredentialCache::new(
            &store,
            std::time::Duration::from_millis(config.resync_ms.max(10)),
        ),
        shared,
        config,
        store,
        audit,
        metrics,
        flows,
        clock,
    });
    Ok(Application { state, writer })
}

impl Application {
    /// The service that answers the requests of one connection from `peer`.
    pub fn connection(&self, peer: SocketAddr) -> dispatch::Keycard {
        dispatch::Keycard::new(self.state.clone(), peer)
    }
}

/// Starts the server on `listener` (use `127.0.0.1:0` in tests).
pub fn start(
    mut config: ServerConfig,
    store: Store,
    listener: TcpListener,
    clock: Clock,
) -> anyhow::Result<RunningServer> {
    config.validate()?;
    let addr = listener.local_addr()?;
    let tls = config.tls.as_ref().map(tls::load).transpose()?;
    if tls.is_some() {
        // Clients reach this listener over HTTPS: that is the URL they sign.
        "https".clone_into(&mut config.public_scheme);
    }
    let Application { state, writer } = application(config, store, clock)?;
    let cache = state.cache.clone();
    let (shutdown, signal) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        listen::serve(listener, state.clone(), tls, async move {
            let _ = signal.await;
        })
        .await;
        // The state holds the last audit sender: dropping it lets the writer drain and stop.
        drop(state);
        writer.await?;
        Ok(())
    });
    Ok(RunningServer {
        addr,
        cache,
        shutdown: Some(shutdown),
        task,
    })
}

pub fn system_clock() -> Clock {
    keycard_store::system_clock()
}
