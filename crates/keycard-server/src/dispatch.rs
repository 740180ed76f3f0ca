//! The router: which surface answers a path ([`Route::of`], a match over the path's
//! segments), served by [`Keycard`] (one per connection: a hyper service for the listener,
//! a tower service for the in-process benchmark) that also times every request for
//! `/metrics`.
//!
//! keycard has a fixed set of routes, so it does not use axum's `Router`: per request, that
//! walked a path tree, stored the URL parameters in the request's extensions, cloned the
//! route's boxed service and moved the request through several layers' futures (1,800 of the
//! in-process benchmark's 5,400 instructions for `/healthz`, 2,700 for tokeninfo). Paths are
//! matched as sent (not decoded), like axum's router; parameters are percent-decoded.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::metrics::MetricsSurface;
use crate::respond::{Peer, SoapVersion, Surface};
use crate::surfaces::{self, Incoming, authorize, discovery, rest, restlet, soap, tokens};

/// What a path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Answered without reading the request; GET and HEAD only.
    Probe(Probe),
    /// A surface's endpoint: the request is read whole and handed to its handler.
    Endpoint(Endpoint),
    NotFound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Healthz,
    Readyz,
    Metrics,
}

/// Parameters are percent-decoded when that gives UTF-8, else left as sent (the handler then
/// refuses them in its surface's shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Restlet,
    TokenInfo,
    RevokeToken,
    IssueToken,
    Roles,
    RequestToken,
    AccessToken,
    AuthorizePage,
    DataCenterUrls,
    GovernanceLimits,
    RecordCollection { record: String },
    RecordInstance { record: String, id: String },
    Soap { port: String },
}

impl Route {
    pub fn of(path: &str) -> Self {
        let endpoint = match path {
            "/healthz" => return Self::Probe(Probe::Healthz),
            "/readyz" => return Self::Probe(Probe::Readyz),
            "/metrics" => return Self::Probe(Probe::Metrics),
            "/app/site/hosting/restlet.nl" => Endpoint::Restlet,
            "/rest/tokeninfo" => Endpoint::TokenInfo,
            "/rest/revoketoken" => Endpoint::RevokeToken,
            "/rest/issuetoken" => Endpoint::IssueToken,
            "/rest/roles" => Endpoint::Roles,
            "/rest/requesttoken" => Endpoint::RequestToken,
            "/rest/accesstoken" => Endpoint::AccessToken,
            "/app/login/secure/authorizetoken.nl" => Endpoint::AuthorizePage,
            "/rest/datacenterurls" => Endpoint::DataCenterUrls,
            "/services/rest/system/v1/governanceLimits" => Endpoint::GovernanceLimits,
            _ => match Endpoint::with_parameters(path) {
                Some(endpoint) => endpoint,
                None => return Self::NotFound,
            },
        };
        Self::Endpoint(endpoint)
    }

    /// The label of the request metrics; `None` for the scrapes (`/metrics`, `/readyz`),
    /// which are not counted as traffic.
    fn metrics_surface(&self) -> Option<MetricsSurface> {
        Some(match self {
            Self::Probe(Probe::Readyz | Probe::Metrics) => return None,
            Self::Probe(Probe::Healthz) | Self::NotFound => MetricsSurface::Other,
            Self::Endpoint(endpoint) => match endpoint {
                Endpoint::Restlet => MetricsSurface::Restlet,
                Endpoint::TokenInfo
                | Endpoint::RevokeToken
                | Endpoint::IssueToken
                | Endpoint::Roles
                | Endpoint::RequestToken
                | Endpoint::AccessToken
                | Endpoint::DataCenterUrls => MetricsSurface::Token,
                Endpoint::AuthorizePage => MetricsSurface::App,
                Endpoint::GovernanceLimits
                | Endpoint::RecordCollection { .. }
                | Endpoint::RecordInstance { .. } => MetricsSurface::Rest,
                Endpoint::Soap { .. } => MetricsSurface::Soap,
            },
        })
    }
}

impl Endpoint {
    /// The surface whose shape the endpoint's errors take before its handler runs.
    fn answer_surface(&self) -> Surface {
        match self {
            Self::Restlet => Surface::Restlet,
            Self::GovernanceLimits
            | Self::RecordCollection { .. }
            | Self::RecordInstance { .. } => Surface::Rest,
            Self::Soap { port } => {
                Surface::Soap(SoapVersion::of_port(port).unwrap_or(SoapVersion::DEFAULT))
            }
            Self::TokenInfo
            | Self::RevokeToken
            | Self::IssueToken
            | Self::Roles
            | Self::RequestToken
            | Self::AccessToken
            | Self::DataCenterUrls
            | Self::AuthorizePage => Surface::Token,
        }
    }

    /// The record paths and the SOAP ports.
    fn with_parameters(path: &str) -> Option<Self> {
        if let Some(rest) = path.strip_prefix("/services/rest/record/v1/") {
            return match rest.split_once('/') {
                None if is_segment(rest) => Some(Self::RecordCollection {
                    record: decoded(rest),
                }),
                Some((record, id)) if is_segment(record) && is_segment(id) => {
                    Some(Self::RecordInstance {
                        record: decoded(record),
                        id: decoded(id),
                    })
                }
                _ => None,
            };
        }
        let port = path.strip_prefix("/services/").filter(|p| is_segment(p))?;
        Some(Self::Soap {
            port: decoded(port),
        })
    }
}

/// One whole, non-empty path segment (axum's router did not match empty parameters either).
fn is_segment(text: &str) -> bool {
    !text.is_empty() && !text.contains('/')
}

fn decoded(segment: &str) -> String {
    keycard_oauth1::encode::percent_decode(segment)
        .map_or_else(|_| segment.to_owned(), std::borrow::Cow::into_owned)
}

/// The service for one connection: the state, the peer's address, and the connection's
/// [`Activity`].
#[derive(Clone)]
pub struct Keycard {
    state: Arc<AppState>,
    peer: Peer,
    activity: Arc<Activity>,
}

impl Keycard {
    pub fn new(state: Arc<AppState>, peer: SocketAddr) -> Self {
        Self {
            state,
            peer: Peer::new(peer),
            activity: Arc::default(),
        }
    }

    /// What the connection has been doing, for [`crate::listen`] to close it once it goes
    /// quiet.
    pub fn activity(&self) -> Arc<Activity> {
        self.activity.clone()
    }

    /// The request's answer, as both services below give it: `tracked`'s future boxed as it
    /// is (wrapped in another async block, its kilobytes would be copied once more per
    /// request). Most requests are GETs: their empty body becomes `Body::empty`, which
    /// allocates nothing, where `Body::new` boxes what it wraps.
    ///
    /// The future is polled once here, before the server gets it back. Most requests need
    /// nothing that is not in memory, so that poll answers them, and the request is dropped
    /// at once. hyper, right after this call, reads the socket again to see whether the
    /// client went away; while the request was alive, its head still shared hyper's read
    /// buffer, so that read allocated a new buffer, and the next request's parse made it
    /// shared again: two allocations a request that `bare` never made. A future still
    /// pending is polled again by the server with its own waker (a future wakes only the
    /// waker of its latest poll, so the first, with a waker that does nothing, loses nothing).
    fn answer<B>(&self, request: axum::http::Request<B>) -> Answer
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let request = if request.body().is_end_stream() {
            request.map(|_| Body::empty())
        } else {
            request.map(Body::new)
        };
        // The box allocated first and the future made in it: `Box::pin(future)` made it on
        // the stack and copied all of it (2,136 bytes) into the box, 0.55% of the CPU at max.
        let mut future: PendingAnswer =
            boxed_in_place(|| tracked(self.state.clone(), self.peer.clone(), request));
        match future
            .as_mut()
            .poll(&mut Context::from_waker(std::task::Waker::noop()))
        {
            Poll::Ready(response) => Answer::Ready(std::future::ready(response)),
            Poll::Pending => Answer::Pending(future, Answering::new(self.activity.clone())),
        }
    }
}

/// The future `make` makes, written into a box allocated before it is made.
fn boxed_in_place<F: Future>(make: impl FnOnce() -> F) -> Pin<Box<F>> {
    Box::into_pin(Box::write(Box::new_uninit(), make()))
}

type PendingAnswer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// The future both services return: the answer already made by [`Keycard::answer`]'s first
/// poll, or the rest of the work (counted as being answered until it is dropped).
pub enum Answer {
    Ready(std::future::Ready<Result<Response, Infallible>>),
    Pending(PendingAnswer, Answering),
}

impl Future for Answer {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Self::Ready(response) => Pin::new(response).poll(cx),
            Self::Pending(future, _) => future.as_mut().poll(cx),
        }
    }
}

/// What one connection has been doing, as [`crate::listen`] checks it now and then to close
/// the connections that went quiet: a count that moves whenever bytes are written to it
/// (every answered request writes, and a slow reader of a long answer is not quiet; reads
/// do not count, or a client trickling a head would be busy), and how many of its requests
/// are being answered. Cheap on purpose (no clock read, no timer per request): it is
/// touched on every write.
#[derive(Debug, Default)]
pub struct Activity {
    progress: AtomicU64,
    answering: AtomicU32,
}

impl Activity {
    /// Notes progress. A load and a store rather than an atomic add: the connection's own task
    /// is the only writer, and a missed count would only keep a connection a while longer.
    pub fn progress(&self) {
        let progress = self.progress.load(Ordering::Relaxed);
        self.progress
            .store(progress.wrapping_add(1), Ordering::Relaxed);
    }

    /// The progress count, to compare with a later one.
    pub fn progress_count(&self) -> u64 {
        self.progress.load(Ordering::Relaxed)
    }

    /// Whether a request of the connection is being answered (it may take long: not quiet).
    pub fn answering(&self) -> bool {
        self.answering.load(Ordering::Relaxed) > 0
    }
}

/// A pending answer's place in [`Activity::answering`], given back when it is dropped:
/// answered (its answer is then written, which is progress), or abandoned with its
/// connection.
pub struct Answering(Arc<Activity>);

impl Answering {
    fn new(activity: Arc<Activity>) -> Self {
        activity.answering.fetch_add(1, Ordering::Relaxed);
        Self(activity)
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.answering.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The service as tower sees it (the in-process benchmark drives it so).
impl<B> tower::Service<axum::http::Request<B>> for Keycard
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        self.answer(request)
    }
}

/// The listener's service ([`crate::listen`]): hyper's request as it comes.
impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Keycard {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        self.answer(request)
    }
}

/// Answers `request` and records its latency and status under its surface.
///
/// One async fn from the route down to the handler's call: each nested future is built on
/// the stack and copied into its caller's, and a layer between this and the handlers cost a
/// copy of kilobytes per request.
///
/// An async block rather than an async fn: an async fn keeps its arguments twice in its
/// future (the arguments, and the locals they are moved into), here 240 bytes more.
#[allow(clippy::manual_async_fn)]
fn tracked(
    state: Arc<AppState>,
    peer: Peer,
    request: Request,
) -> impl Future<Output = Result<Response, Infallible>> + Send {
    async move {
        let route = Route::of(request.uri().path());
        let surface = route.metrics_surface();
        let started = surface.map(|_| {
            state.metrics.arrive();
            Instant::now()
        });
        // The path only: a query may carry OAuth parameters. Copied only when the line is logged.
        let logged = (surface.is_some() && tracing::enabled!(tracing::Level::DEBUG))
            .then(|| (request.method().clone(), request.uri().path().to_owned()));
        // A labelled block rather than matches on results: each result held in a local stays in
        // the future's layout after it is matched (500 bytes more).
        let response = 'answer: {
            let endpoint = match route {
                Route::Probe(probe) => {
                    break 'answer answer_probe(&state, probe, request.method()).await;
                }
                Route::NotFound => break 'answer surfaces::not_found(request.uri().path()),
                Route::Endpoint(endpoint) => endpoint,
            };
            let incoming = if Incoming::has_no_body(&request) {
                Incoming::without_body(&state, peer, request)
            } else {
                match Incoming::read(&state, peer, request, endpoint.answer_surface()).await {
                    Ok(incoming) => incoming,
                    Err(response) => break 'answer response,
                }
            };
            // The request's future is as large as the largest handler's, and a box of that size
            // is allocated on every request: the handlers that are neither frequent nor small wait in
            // boxes of their own (tokeninfo's future is about 1 KB; issuetoken's 2.8 KB).
            let response = match endpoint {
                Endpoint::Restlet => restlet::handle(&state, &incoming).await,
                Endpoint::TokenInfo => tokens::tokeninfo(&state, &incoming).await,
                Endpoint::GovernanceLimits => rest::governance_limits(&state, &incoming).await,
                Endpoint::RecordCollection { record } => {
                    rest::collection(&state, &record, &incoming).await
                }
                Endpoint::RecordInstance { record, id } => {
                    rest::instance(&state, &record, &id, &incoming).await
                }
                Endpoint::DataCenterUrls => discovery::datacenterurls(&state, &incoming).await,
                Endpoint::RevokeToken => Box::pin(tokens::revoketoken(&state, &incoming)).await,
                Endpoint::IssueToken => Box::pin(tokens::issuetoken(&state, &incoming)).await,
                Endpoint::Roles => Box::pin(discovery::roles(&state, &incoming)).await,
                Endpoint::RequestToken => {
                    Box::pin(authorize::requesttoken(&state, &incoming)).await
                }
                Endpoint::AccessToken => Box::pin(authorize::accesstoken(&state, &incoming)).await,
                Endpoint::AuthorizePage => {
                    Box::pin(authorize::page_handler(&state, &incoming)).await
                }
                Endpoint::Soap { port } => Box::pin(soap::handle(&state, &port, &incoming)).await,
            };
            crate::respond::recycle_headers(incoming.headers);
            response
        };
        if let (Some(surface), Some(started)) = (surface, started) {
            let elapsed = started.elapsed();
            let status = response.status().as_u16();
            state
                .metrics
                .observe(surface, status, elapsed.as_secs_f64());
            if let Some((method, path)) = logged {
                tracing::debug!(%method, path, status, micros = elapsed.as_micros(), request_id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()), "request");
            }
        }
        Ok(response)
    }
}

/// The probes answer GET (and HEAD, whose body hyper leaves out), anything else 405.
async fn answer_probe(state: &AppState, probe: Probe, method: &Method) -> Response {
    if !matches!(*method, Method::GET | Method::HEAD) {
        let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
        return response;
    }
    match probe {
        Probe::Healthz => "ok".into_response(),
        Probe::Readyz => surfaces::readyz(state).await,
        Probe::Metrics => crate::metrics::render(state),
    }
}

#[cfg(test)]
mod tests {
    use super::{Endpoint, Probe, Route};

    fn record(record: &str) -> Route {
        Route::Endpoint(Endpoint::RecordCollection {
            record: record.into(),
        })
    }

    fn instance(record: &str, id: &str) -> Route {
        Route::Endpoint(Endpoint::RecordInstance {
            record: record.into(),
            id: id.into(),
        })
    }

    fn soap(port: &str) -> Route {
        Route::Endpoint(Endpoint::Soap { port: port.into() })
    }

    #[test]
    fn paths_route_as_sent() {
        let cases = [
            ("/rest/tokeninfo", Route::Endpoint(Endpoint::TokenInfo)),
            ("/healthz", Route::Probe(Probe::Healthz)),
            (
                "/services/rest/system/v1/governanceLimits",
                Route::Endpoint(Endpoint::GovernanceLimits),
            ),
            // Static paths match exactly.
            ("/rest/tokeninfo/", Route::NotFound),
            ("/rest/tokenINFO", Route::NotFound),
            ("/rest/token%69nfo", Route::NotFound),
            ("/rest", Route::NotFound),
            ("", Route::NotFound),
            ("/", Route::NotFound),
            ("/healthz/x", Route::NotFound),
            // Record paths take one or two non-empty segments.
            ("/services/rest/record/v1/customer", record("customer")),
            (
                "/services/rest/record/v1/customer/42",
                instance("customer", "42"),
            ),
            ("/services/rest/record/v1/", Route::NotFound),
            ("/services/rest/record/v1/customer/", Route::NotFound),
            ("/services/rest/record/v1//42", Route::NotFound),
            ("/services/rest/record/v1/customer/42/", Route::NotFound),
            ("/services/rest/record/v1/customer/42/x", Route::NotFound),
            // Parameters are decoded when that gives UTF-8; `+` is not a space in a path.
            (
                "/services/rest/record/v1/cust%6Fmer/4%202",
                instance("customer", "4 2"),
            ),
            ("/services/rest/record/v1/a+b", record("a+b")),
            ("/services/rest/record/v1/%FF", record("%FF")),
            ("/services/rest/record/v1/bad%zz", record("bad%zz")),
            // One segment under /services is a SOAP port.
            ("/services/NetSuitePort_2021_2", soap("NetSuitePort_2021_2")),
            ("/services/rest", soap("rest")),
            ("/services/", Route::NotFound),
            ("/services", Route::NotFound),
            ("/services/a/b", Route::NotFound),
            ("/services/rest/x", Route::NotFound),
        ];
        for (path, expected) in cases {
            assert_eq!(Route::of(path), expected, "{path}");
        }
    }
}
