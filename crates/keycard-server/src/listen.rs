//! The listener: each accepted connection (plain, or TLS with HTTP/2 by ALPN) is served by
//! hyper's connection with a [`Keycard`] service, closed once it goes quiet ([`quiet`]), and
//! a shutdown lets requests in flight finish.
//!
//! Not `axum::serve`: per request it boxed the request's body (`Body::new`), cloned the
//! service into a `Oneshot`, and went through hyper-util's protocol detection (HTTP/1 or
//! cleartext HTTP/2) with upgrades and a replaying reader. Side by side under load (tokeninfo,
//! one core), serving hyper's connection directly took 0.27 µs less user CPU a request. HTTP/2
//! is offered over TLS (by ALPN); cleartext HTTP/2 is not. Not `axum_server` for TLS either:
//! with its connection loop, a client silent after the handshake was never closed
//! (hyper-util waited for its first bytes with no limit) and the quiet watch could not be
//! added.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::AppState;
use crate::dispatch::{Activity, Keycard};
use crate::drain::{Drain, Watcher};

/// Serves `listener` (with TLS when `tls` is given) until `stop` resolves; then stops
/// accepting, lets every connection finish the request it is answering (idle keep-alive
/// connections close at once) and returns when all are closed.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: impl Future<Output = ()>,
) {
    let drain = Arc::new(Drain::default());
    let tls = tls.map(TlsAcceptor::from);
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
        let activity = service.activity();
        let watcher = drain.watcher();
        let serving = match &tls {
            None => tokio::spawn(serve_http(TokioIo::new(stream), false, service, watcher)),
            Some(acceptor) => {
                let handshake = acceptor.accept(stream);
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(HANDSHAKE_LIMIT, handshake).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            tracing::trace!(%error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::trace!(%peer, "TLS handshake took too long");
                            return;
                        }
                    };
                    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                    serve_http(TokioIo::new(stream), h2, service, watcher).await;
                })
            }
        };
        // A task of its own, woken only by its timer or the connection's end: in the
        // connection's task, the timer would be polled again at every request.
        let limit = Duration::from_millis(state.config.idle_timeout_ms.max(1));
        tokio::spawn(async move {
            let stop = serving.abort_handle();
            tokio::select! {
                _ = serving => {}
                () = quiet(&activity, limit) => {
                    stop.abort();
                    tracing::debug!(%peer, "closed a connection quiet for {limit:?}");
                }
            }
        });
    }
    drop(listener);
    drain.shutdown().await;
}

/// How long a client has to complete the TLS handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// Serves one connection with `service`: HTTP/2 when the TLS handshake chose it (ALPN),
/// else HTTP/1.1; written bytes count as the connection's progress.
async fn serve_http<I>(io: I, h2: bool, service: Keycard, watcher: Watcher)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let io = Watched {
        io,
        activity: service.activity(),
    };
    let ended = if h2 {
        let connection = http2::Builder::new(TokioExecutor::new()).serve_connection(io, service);
        watcher.watch(connection).await
    } else {
        watcher
            .watch(http1::Builder::new().serve_connection(io, service))
            .await
    };
    // An error here is the client's connection failing or going away: nothing to answer.
    if let Err(error) = ended {
        tracing::trace!(%error, "connection ended");
    }
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

/// Resolves once `activity` made no progress (no bytes written: every answered request
/// writes) for a whole `limit` while no request of it was being answered: checked every
/// `limit`, so a quiet connection is closed between one and two `limit`s after its last
/// progress. That closes idle keep-alive connections and clients that send a request head
/// too slowly to finish it (slowloris), which would otherwise hold a socket each for good.
/// hyper's own header timeout does this with a timer armed and a clock read for every
/// request; this is one timer per connection and period.
async fn quiet(activity: &Activity, limit: Duration) {
    let mut seen = activity.progress_count();
    loop {
        tokio::time::sleep(limit).await;
        let now = activity.progress_count();
        if now == seen && !activity.answering() {
            return;
        }
        seen = now;
    }
}

/// The connection's socket, noting written bytes as progress in its [`Activity`].
struct Watched<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I: hyper::rt::Read + Unpin> hyper::rt::Read for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: hyper::rt::Write + Unpin> hyper::rt::Write for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        self.note(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.note(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<I> Watched<I> {
    fn note(&self, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            self.activity.progress();
        }
    }
}
