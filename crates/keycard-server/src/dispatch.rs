//! The router: which surface answers a path ([`Route::of`], a match over the path's
//! segments), served as a plain tower service ([`Keycard`], one per connection) that also
//! times every request for `/metrics`.
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
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::metrics::MetricsSurface;
use crate::surfaces::{self, Incoming, authorize, discovery, rest, restlet, soap, tokens};

/// What a path asks for. Parameters are percent-decoded when that gives UTF-8, else left as
/// sent (the handler then refuses them in its surface's shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Healthz,
    Readyz,
    Metrics,
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
    NotFound,
}

impl Route {
    pub fn of(path: &str) -> Self {
        match path {
            "/healthz" => return Self::Healthz,
            "/readyz" => return Self::Readyz,
            "/metrics" => return Self::Metrics,
            "/app/site/hosting/restlet.nl" => return Self::Restlet,
            "/rest/tokeninfo" => return Self::TokenInfo,
            "/rest/revoketoken" => return Self::RevokeToken,
            "/rest/issuetoken" => return Self::IssueToken,
            "/rest/roles" => return Self::Roles,
            "/rest/requesttoken" => return Self::RequestToken,
            "/rest/accesstoken" => return Self::AccessToken,
            "/app/login/secure/authorizetoken.nl" => return Self::AuthorizePage,
            "/rest/datacenterurls" => return Self::DataCenterUrls,
            "/services/rest/system/v1/governanceLimits" => return Self::GovernanceLimits,
            _ => {}
        }
        if let Some(rest) = path.strip_prefix("/services/rest/record/v1/") {
            return match rest.split_once('/') {
                None if is_segment(rest) => Self::RecordCollection {
                    record: decoded(rest),
                },
                Some((record, id)) if is_segment(record) && is_segment(id) => {
                    Self::RecordInstance {
                        record: decoded(record),
                        id: decoded(id),
                    }
                }
                _ => Self::NotFound,
            };
        }
        match path.strip_prefix("/services/") {
            Some(port) if is_segment(port) => Self::Soap {
                port: decoded(port),
            },
            _ => Self::NotFound,
        }
    }

    /// The label of the request metrics; `None` for the scrapes (`/metrics`, `/readyz`),
    /// which are not counted as traffic.
    fn metrics_surface(&self) -> Option<MetricsSurface> {
        Some(match self {
            Self::Readyz | Self::Metrics => return None,
            Self::Healthz | Self::NotFound => MetricsSurface::Other,
            Self::Restlet => MetricsSurface::Restlet,
            Self::TokenInfo
            | Self::RevokeToken
            | Self::IssueToken
            | Self::Roles
            | Self::RequestToken
            | Self::AccessToken
            | Self::DataCenterUrls => MetricsSurface::Token,
            Self::AuthorizePage => MetricsSurface::App,
            Self::GovernanceLimits
            | Self::RecordCollection { .. }
            | Self::RecordInstance { .. } => MetricsSurface::Rest,
            Self::Soap { .. } => MetricsSurface::Soap,
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

/// The service for one connection: the state and the peer's address.
#[derive(Clone)]
pub struct Keycard {
    state: Arc<AppState>,
    peer: SocketAddr,
}

impl Keycard {
    pub fn new(state: Arc<AppState>, peer: SocketAddr) -> Self {
        Self { state, peer }
    }
}

impl<B> tower::Service<axum::http::Request<B>> for Keycard
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let (state, peer) = (self.state.clone(), self.peer);
        Box::pin(async move { Ok(tracked(state, peer, request.map(Body::new)).await) })
    }
}

/// Answers `request` and records its latency and status under its surface.
async fn tracked(state: Arc<AppState>, peer: SocketAddr, request: Request) -> Response {
    let route = Route::of(request.uri().path());
    let Some(surface) = route.metrics_surface() else {
        return answer(&state, peer, route, request).await;
    };
    state.metrics.arrivals.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    // The path only: a query may carry OAuth parameters. Copied only when the line is logged.
    let logged = tracing::enabled!(tracing::Level::DEBUG)
        .then(|| (request.method().clone(), request.uri().path().to_owned()));
    let response = answer(&state, peer, route, request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state
        .metrics
        .observe(surface, status, elapsed.as_secs_f64());
    if let Some((method, path)) = logged {
        tracing::debug!(%method, path, status, micros = elapsed.as_micros(), request_id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()), "request");
    }
    response
}

async fn answer(state: &AppState, peer: SocketAddr, route: Route, request: Request) -> Response {
    // The probes answer GET (and HEAD, whose body hyper leaves out) and read nothing else.
    let probe = matches!(route, Route::Healthz | Route::Readyz | Route::Metrics);
    if probe && !matches!(*request.method(), Method::GET | Method::HEAD) {
        let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
        return response;
    }
    match route {
        Route::Healthz => return "ok".into_response(),
        Route::Readyz => return surfaces::readyz(state).await,
        Route::Metrics => return crate::metrics::render(state),
        Route::NotFound => return surfaces::not_found(request.uri().path()),
        _ => {}
    }
    let incoming = match Incoming::read(state, peer, request).await {
        Ok(incoming) => incoming,
        Err(response) => return response,
    };
    // The request's future is as large as the largest handler's, and it is moved into a box
    // on every request: the handlers that are neither frequent nor small wait in boxes of
    // their own (tokeninfo's future is about 2.2 KB; issuetoken's 3.4 KB).
    match route {
        Route::Restlet => restlet::handle(state, incoming).await,
        Route::TokenInfo => tokens::tokeninfo(state, incoming).await,
        Route::GovernanceLimits => rest::governance_limits(state, incoming).await,
        Route::RecordCollection { record } => rest::collection(state, &record, incoming).await,
        Route::RecordInstance { record, id } => rest::instance(state, &record, &id, incoming).await,
        Route::DataCenterUrls => discovery::datacenterurls(state, incoming).await,
        Route::RevokeToken => Box::pin(tokens::revoketoken(state, incoming)).await,
        Route::IssueToken => Box::pin(tokens::issuetoken(state, incoming)).await,
        Route::Roles => Box::pin(discovery::roles(state, incoming)).await,
        Route::RequestToken => Box::pin(authorize::requesttoken(state, incoming)).await,
        Route::AccessToken => Box::pin(authorize::accesstoken(state, incoming)).await,
        Route::AuthorizePage => Box::pin(authorize::page_handler(state, incoming)).await,
        Route::Soap { port } => Box::pin(soap::handle(state, &port, incoming)).await,
        Route::Healthz | Route::Readyz | Route::Metrics | Route::NotFound => {
            surfaces::not_found(incoming.uri.path())
        }
    }
}

/// Makes a [`Keycard`] for each accepted connection, for `axum::serve` (plain TCP) and
/// `axum_server` (TLS).
#[derive(Clone)]
pub struct Connections(pub Arc<AppState>);

impl Connections {
    fn keycard(&self, peer: SocketAddr) -> std::future::Ready<Result<Keycard, Infallible>> {
        std::future::ready(Ok(Keycard::new(self.0.clone(), peer)))
    }
}

impl tower::Service<axum::serve::IncomingStream<'_, tokio::net::TcpListener>> for Connections {
    type Response = Keycard;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Keycard, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(
        &mut self,
        stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>,
    ) -> Self::Future {
        self.keycard(*stream.remote_addr())
    }
}

impl tower::Service<SocketAddr> for Connections {
    type Response = Keycard;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Keycard, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, peer: SocketAddr) -> Self::Future {
        self.keycard(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::Route;

    #[test]
    fn static_paths_match_exactly() {
        assert_eq!(Route::of("/rest/tokeninfo"), Route::TokenInfo);
        assert_eq!(Route::of("/healthz"), Route::Healthz);
        for near_miss in [
            "/rest/tokeninfo/",
            "/rest/tokenINFO",
            "/rest/token%69nfo",
            "/rest",
            "",
            "/",
            "/healthz/x",
        ] {
            assert_eq!(Route::of(near_miss), Route::NotFound, "{near_miss}");
        }
        assert_eq!(
            Route::of("/services/rest/system/v1/governanceLimits"),
            Route::GovernanceLimits
        );
    }

    #[test]
    fn record_paths_take_one_or_two_non_empty_segments() {
        assert_eq!(
            Route::of("/services/rest/record/v1/customer"),
            Route::RecordCollection {
                record: "customer".into()
            }
        );
        assert_eq!(
            Route::of("/services/rest/record/v1/customer/42"),
            Route::RecordInstance {
                record: "customer".into(),
                id: "42".into()
            }
        );
        for miss in [
            "/services/rest/record/v1/",
            "/services/rest/record/v1/customer/",
            "/services/rest/record/v1//42",
            "/services/rest/record/v1/customer/42/",
            "/services/rest/record/v1/customer/42/x",
        ] {
            assert_eq!(Route::of(miss), Route::NotFound, "{miss}");
        }
    }

    #[test]
    fn parameters_are_decoded_when_that_gives_utf8() {
        assert_eq!(
            Route::of("/services/rest/record/v1/cust%6Fmer/4%202"),
            Route::RecordInstance {
                record: "customer".into(),
                id: "4 2".into()
            }
        );
        // `+` is not a space in a path.
        assert_eq!(
            Route::of("/services/rest/record/v1/a+b"),
            Route::RecordCollection {
                record: "a+b".into()
            }
        );
        assert_eq!(
            Route::of("/services/rest/record/v1/%FF"),
            Route::RecordCollection {
                record: "%FF".into()
            }
        );
        assert_eq!(
            Route::of("/services/rest/record/v1/bad%zz"),
            Route::RecordCollection {
                record: "bad%zz".into()
            }
        );
    }

    #[test]
    fn one_segment_under_services_is_a_soap_port() {
        assert_eq!(
            Route::of("/services/NetSuitePort_2021_2"),
            Route::Soap {
                port: "NetSuitePort_2021_2".into()
            }
        );
        assert_eq!(
            Route::of("/services/rest"),
            Route::Soap {
                port: "rest".into()
            }
        );
        for miss in [
            "/services/",
            "/services",
            "/services/a/b",
            "/services/rest/x",
        ] {
            assert_eq!(Route::of(miss), Route::NotFound, "{miss}");
        }
    }
}
