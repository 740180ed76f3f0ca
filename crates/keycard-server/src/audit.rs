//! The login audit writer: requests queue records on a bounded channel (waiting when it is full:
//! back-pressure, never loss) and one task writes them in batches. On shutdown the channel
//! closes and the writer drains it before returning.

use keycard_core::LoginRecord;
use keycard_store::Store;
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use std::sync::Arc;

pub type AuditSender = mpsc::Sender<LoginRecord>;

const BATCH: usize = 256;

pub fn spawn_writer(
    store: Store,
    capacity: usize,
    metrics: Arc<Metrics>,
) -> (AuditSender, tokio::task::JoinHandle<()>) {
    let (sender, mut receiver) = mpsc::channel::<LoginRecord>(capacity.max(1));
    let task = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        while receiver.recv_many(&mut batch, BATCH).await > 0 {
            // Retry until written: a record the server answered for must not be lost.
            let mut delay = std::time::Duration::from_millis(50);
            while let Err(error) = store.insert_login_records(&batch).await {
                tracing::warn!(%error, records = batch.len(), "login audit write failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
            metrics.count_logins(&batch);
            metrics
                .audit_written
                .fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
            batch.clear();
        }
    });
    (sender, task)
}
