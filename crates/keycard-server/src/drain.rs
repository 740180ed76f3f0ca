//! The listener's graceful shutdown: connections are told to finish the request they are
//! answering (idle keep-alive connections close at once), and the shutdown waits for them.
//!
//! Not hyper-util's `GracefulShutdown`: its watcher polled a `watch` channel's change at
//! every poll of a connection, and each poll of a waiting `Notified` takes and gives back the
//! lock of its waiter list: two atomic read-modify-writes a request. Here a connection polls
//! its `Notified` only when its task's waker is not the one registered (the first poll, in
//! practice), and otherwise reads a flag, which the shutdown sets before it wakes them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;

/// The connections being served, and the shutdown's signal to them.
#[derive(Default)]
pub struct Drain {
    /// Set (before `begin` wakes them) once the shutdown has started.
    started: AtomicBool,
    begin: Arc<Notify>,
    /// Connections not yet closed.
    open: AtomicUsize,
    /// Woken when the last open connection closes.
    closed: Notify,
}

impl Drain {
    /// A connection's place among the open ones, taken when it is accepted (a TLS handshake
    /// in progress counts).
    pub fn watcher(self: &Arc<Self>) -> Watcher {
        self.open.fetch_add(1, Ordering::AcqRel);
        Watcher {
            // Made now, so that a shutdown from here on finds it (even before its first poll).
            begin: Box::pin(self.begin.clone().notified_owned()),
            open: Open(self.clone()),
        }
    }

    /// Tells every connection to finish and returns once all are closed.
    pub async fn shutdown(&self) {
        self.started.store(true, Ordering::Release);
        self.begin.notify_waiters();
        while self.open.load(Ordering::Acquire) > 0 {
            // `notify_one` keeps a permit when no one waits: a close between the load and
            // this wait is not missed.
            self.closed.notified().await;
        }
    }
}

/// A connection's place in [`Drain::open`], given back when it is dropped.
struct Open(Arc<Drain>);

impl Drop for Open {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.closed.notify_one();
        }
    }
}

/// An accepted connection, counted open, before it is served.
pub struct Watcher {
    begin: Pin<Box<OwnedNotified>>,
    open: Open,
}

impl Watcher {
    /// `connection`, served until it ends and told to close gracefully once the shutdown starts.
    pub fn watch<C: GracefulConnection>(self, connection: C) -> Served<C> {
        Served {
            begin: self.begin,
            registered: None,
            closing: false,
            open: self.open,
            connection: Box::pin(connection),
        }
    }
}

/// A connection being served (see [`Watcher::watch`]).
pub struct Served<C> {
    begin: Pin<Box<OwnedNotified>>,
    /// The waker `begin` last registered.
    registered: Option<Waker>,
    closing: bool,
    open: Open,
    connection: Pin<Box<C>>,
}

impl<C: GracefulConnection> Future for Served<C> {
    type Output = C::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let this = &mut *self;
        if !this.closing && this.shutdown_started(cx) {
            this.closing = true;
            this.connection.as_mut().graceful_shutdown();
        }
        this.connection.as_mut().poll(cx)
    }
}

impl<C> Served<C> {
    /// Whether the shutdown has started; registers this task's waker with `begin` when it is
    /// not the one registered.
    fn shutdown_started(&mut self, cx: &mut Context<'_>) -> bool {
        if self.open.0.started.load(Ordering::Acquire) {
            return true;
        }
        if self
            .registered
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            return false;
        }
        self.registered = Some(cx.waker().clone());
        self.begin.as_mut().poll(cx).is_ready()
    }
}
