//! Change events between processes: on PostgreSQL every commit sends its [`ChangeEvent`]s with
//! `pg_notify` inside the transaction (so a rolled-back change notifies nothing), and every
//! server listens with a [`ChangeListener`] to drop what its cache holds about them.

use std::sync::Arc;
use std::time::Duration;

use keycard_core::ChangeEvent;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{Any, Transaction};

use crate::{Backend, Store, StoreError};

/// The PostgreSQL channel every store notifies and listens on.
const CHANNEL: &str = "keycard_changes";

/// Payloads above this many bytes become a resync: PostgreSQL refuses 8000 and more.
const MAX_PAYLOAD: usize = 7000;

/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// What one notification carries.
#[derive(Serialize, Deserialize)]
struct Payload {
    /// The store process that committed (its listener skips its own changes).
    origin: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    events: Vec<ChangeEvent>,
    /// Too many changes to list: drop everything.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    resync: bool,
}

/// What another process changed, as a listener reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// These entities changed.
    Changed(Vec<ChangeEvent>),
    /// Unknown changes (too many to list, or the connection dropped and events may have been
    /// missed): drop everything.
    Resync,
}

/// The JSON sent for `events` by the store `origin`.
fn payload(origin: &str, events: &[ChangeEvent]) -> Result<String, StoreError> {
    let listed = Payload {
        origin: origin.to_owned(),
        events: events.to_vec(),
        resync: false,
    };
    let text = serde_json::to_string(&listed).map_err(|_| StoreError::Corrupt {
        what: "a change event cannot be written as JSON",
    })?;
    if text.len() <= MAX_PAYLOAD {
        return Ok(text);
    }
    let resync = Payload {
        origin: origin.to_owned(),
        events: Vec::new(),
        resync: true,
    };
    serde_json::to_string(&resync).map_err(|_| StoreError::Corrupt {
        what: "a change event cannot be written as JSON",
    })
}

impl Store {
    /// Tells other processes about `events` inside `tx`: PostgreSQL delivers the notification
    /// only if and when `tx` commits. Nothing to do on SQLite (one process per file).
    pub(crate) async fn notify(
        &self,
        tx: &mut Transaction<'static, Any>,
        events: &[ChangeEvent],
    ) -> Result<(), StoreError> {
        if self.backend != Backend::Postgres || events.is_empty() {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload(&self.origin, events)?)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Listens for changes committed by other processes on the same directory: `None` on
    /// SQLite, where no other process serves the same file. Listening has begun when this
    /// returns, so any change committed afterwards is reported.
    pub async fn listen_changes(&self) -> Result<Option<ChangeListener>, StoreError> {
        let Some(url) = self.listen_url.clone() else {
            return Ok(None);
        };
        let listener = connect(&url).await?;
        Ok(Some(ChangeListener {
            url,
            origin: self.origin.clone(),
            listener: Some(listener),
            backoff: Duration::ZERO,
        }))
    }
}

/// A connection listening on the change channel. Its own pool of one connection with a short
/// acquire timeout, so an unreachable database fails the attempt instead of waiting for long.
async fn connect(url: &str) -> Result<PgListener, StoreError> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(Duration::from_secs(2))
        .connect(url)
        .await
        .map_err(|source| StoreError::Connect {
            backend: Backend::Postgres,
            source,
        })?;
    let mut listener = PgListener::connect_with(&pool).await?;
    // A lost connection is reported at once (`try_recv` gives `None`); `next` reconnects.
    listener.eager_reconnect(false);
    listener.ignore_pool_close_event(true);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Changes other processes commit to the directory (see [`Store::listen_changes`]).
pub struct ChangeListener {
    /// May hold a password: never printed.
    url: Arc<str>,
    origin: Arc<str>,
    /// `None` while the connection is lost.
    listener: Option<PgListener>,
    /// The wait before the next reconnection attempt.
    backoff: Duration,
}

impl std::fmt::Debug for ChangeListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeListener")
            .field("connected", &self.listener.is_some())
            .finish_non_exhaustive()
    }
}

impl ChangeListener {
    /// The next change another process committed. After a lost connection comes back this is
    /// [`Remote::Resync`] (changes may have been missed); while the database is unreachable it
    /// keeps trying, waiting up to a second between attempts.
    pub async fn next(&mut self) -> Remote {
        loop {
            let Some(listener) = self.listener.as_mut() else {
                if self.reconnect().await {
                    return Remote::Resync;
                }
                continue;
            };
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    if let Some(remote) = self.read(notification.payload()) {
                        return remote;
                    }
                }
                Ok(None) => self.lost(None),
                Err(error) => self.lost(Some(&error)),
            }
        }
    }

    /// One reconnection attempt, after the backoff; whether it succeeded.
    async fn reconnect(&mut self) -> bool {
        tokio::time::sleep(self.backoff).await;
        match connect(&self.url).await {
            Ok(listener) => {
                self.listener = Some(listener);
                self.backoff = Duration::ZERO;
                true
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for directory changes; retrying");
                self.backoff = (self.backoff * 2).clamp(Duration::from_millis(50), MAX_BACKOFF);
                false
            }
        }
    }

    fn lost(&mut self, error: Option<&sqlx::Error>) {
        if let Some(error) = error {
            tracing::warn!(%error, "lost the directory change listener");
        } else {
            tracing::warn!("lost the directory change listener");
        }
        // Dropped whole: a connection that failed mid-read is not used again.
        self.listener = None;
    }

    /// What a notification means to this process; `None` for its own changes.
    fn read(&self, text: &str) -> Option<Remote> {
        let Ok(payload) = serde_json::from_str::<Payload>(text) else {
            // Written by a newer or older keycard: the safe reading is "anything changed".
            return Some(Remote::Resync);
        };
        if *payload.origin == *self.origin {
            return None;
        }
        if payload.resync {
            return Some(Remote::Resync);
        }
        (!payload.events.is_empty()).then_some(Remote::Changed(payload.events))
    }
}

#[cfg(test)]
mod tests {
    use keycard_core::EntityKind;

    use super::*;

    fn event(id: usize) -> ChangeEvent {
        ChangeEvent {
            account: keycard_core::AccountId::parse("1234567").ok(),
            entity: EntityKind::Token,
            entity_id: id.to_string(),
        }
    }

    #[test]
    fn payloads_list_events_until_they_would_be_too_long() {
        let few: Vec<_> = (0..3).map(event).collect();
        let text = payload("abc", &few).unwrap_or_default();
        let read: Payload = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(
            (read.origin.as_str(), read.events, read.resync),
            ("abc", few, false)
        );

        let many: Vec<_> = (0..10_000).map(event).collect();
        let text = payload("abc", &many).unwrap_or_default();
        assert!(text.len() < 100, "{text}");
        let read: Payload = serde_json::from_str(&text).expect("valid JSON");
        assert!(read.resync && read.events.is_empty());
    }
}
