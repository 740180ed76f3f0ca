//! The plain-TCP listener: each accepted connection is served by hyper's HTTP/1.1 connection
//! with a [`Keycard`] service, and a shutdown lets requests in flight finish.
//!
//! Not `axum::serve`: per request it boxed the request's body (`Body::new`), cloned the
//! service into a `Oneshot`, and went through hyper-util's protocol detection (HTTP/1 or
//! cleartext HTTP/2) with upgrades and a replaying reader. Side by side under load (tokeninfo,
//! one core), serving hyper's connection directly took 0.27 µs less user CPU a request. HTTP/2
//! stays available over TLS (by ALPN, `axum_server`); cleartext HTTP/2 is not offered.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::AppState;
use crate::dispatch::Keycard;

/// Serves `listener` until `stop` resolves; then stops accepting, lets every connection finish
/// the request it is answering (idle keep-alive connections close at once) and returns when
/// all are closed.
pub async fn serve(listener: TcpListener, state: Arc<AppState>, stop: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                pause_after(&error).await;
                continue;
            }
        };
        let service = Keycard::new(state.clone(), peer);
        let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // An error here is the client's connection failing or going away: nothing to answer.
            if let Err(error) = connection.await {
                tracing::trace!(%error, "connection ended");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// After a failed `accept`: a connection that failed before it was accepted is the client's
/// business; anything else (out of file descriptors, most often) is logged and retried after a
/// second, rather than spinning or stopping the server. As `axum::serve` does.
async fn pause_after(error: &io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
