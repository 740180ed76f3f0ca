//! `bare`: the ceiling. A plain hyper HTTP/1.1 keep-alive server that answers every request with
//! a fixed JSON body (the body keycard answers for the same scenario), doing no authentication.
//! Same runtime shape as `keycard serve` (tokio multi-thread, one worker per CPU it may use), so
//! keycard/bare isolates what authentication costs on top of the HTTP stack.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8920")]
    listen: SocketAddr,
    /// The response body (JSON), e.g. a tokeninfo answer captured from keycard.
    #[arg(long)]
    body_file: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let body = Bytes::from(
        std::fs::read(&args.body_file)
            .with_context(|| format!("cannot read {}", args.body_file.display()))?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args.listen, body))
}

async fn serve(listen: SocketAddr, body: Bytes) -> Result<()> {
    let listener = TcpListener::bind(listen).await?;
    // The harness stops servers with SIGTERM. An instrumented (PGO) build writes its profile
    // only when it exits normally, so SIGTERM ends the loop like Ctrl-C instead of killing it.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    eprintln!("bare serving on http://{listen}");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                // No TCP_NODELAY: keycard's listener (`keycard_server::listen`) sets none.
                let (stream, _) = accepted?;
                let body = body.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_request: Request<Incoming>| {
                        let mut response = Response::new(Full::new(body.clone()));
                        response
                            .headers_mut()
                            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                        async move { Ok::<_, Infallible>(response) }
                    });
                    // Errors here are clients going away; nothing to report.
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
        }
    }
}
