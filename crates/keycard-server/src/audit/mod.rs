//! The login audit writer: requests queue records on a bounded queue (waiting when it is full:
//! back-pressure, never loss) and one writer stores them in batches, in order. On an SQLite
//! file the writer is a blocking thread with the store's native [`LoginWriter`] (no thread hop
//! per row); on PostgreSQL it is a task on the pool. When the last sender is dropped the writer
//! drains the queue before returning.

mod queue;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use keycard_core::LoginRecord;
use keycard_store::{LoginWriter, Store, StoreError};

use self::queue::{AuditReceiver, Taken};
use crate::metrics::Metrics;

pub use self::queue::{AuditSender, WriterGone};

const BATCH: usize = 512;
/// How long the native writer lets records gather after the first one before writing: fewer,
/// larger transactions, and requests queue records without waking the writer each time.
const LINGER: Duration = Duration::from_millis(4);
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(5);

pub fn spawn_writer(
    store: Store,
    capacity: usize,
    metrics: Arc<Metrics>,
) -> std::io::Result<(AuditSender, tokio::task::JoinHandle<()>)> {
    let (sender, receiver) = queue::bounded(capacity);
    let task = match store.login_writer() {
        Some(writer) => {
            let runtime = tokio::runtime::Handle::current();
            // A plain thread, not `spawn_blocking`: a runtime waits for its blocking tasks when
            // it is dropped, and this one only ends once every sender is gone.
            let (done, finished) = tokio::sync::oneshot::channel::<()>();
            std::thread::Builder::new()
                .name("keycard-audit".into())
                .spawn(move || {
                    yield_to_requests();
                    write_natively(&writer, &receiver, &metrics, &runtime);
                    drop(receiver);
                    let _ = done.send(());
                })?;
            tokio::spawn(async move {
                let _ = finished.await;
            })
        }
        None => tokio::spawn(write_on_pool(store, receiver, metrics)),
    };
    Ok((sender, task))
}

/// Puts this thread in the idle scheduling class: it runs when request handling leaves the
/// core free, so a batch never delays a response on a busy core (measured: p99 at 80% load).
/// Under full load the queue fills and back-pressure gives the writer its turn, so records
/// are still never lost. Where the class cannot be set, the writer runs at normal priority.
fn yield_to_requests() {
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id,
    };
    if let Err(error) = set_thread_priority_and_policy(
        thread_native_id(),
        thread_priority::ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
    ) {
        tracing::debug!(?error, "the audit writer keeps normal priority");
    }
}

fn write_natively(
    writer: &LoginWriter,
    receiver: &AuditReceiver,
    metrics: &Metrics,
    runtime: &tokio::runtime::Handle,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        match receiver.take(&mut batch, BATCH) {
            Taken::Closed => return,
            Taken::Empty => {
                // Parks this thread until a request queues a record; needs no driver.
                runtime.block_on(receiver.arrival());
                continue;
            }
            Taken::Records => {}
        }
        if batch.len() + receiver.queued() < BATCH {
            std::thread::sleep(LINGER);
        }
        receiver.take_more(&mut batch, BATCH);
        // Retry until written: a record the server answered for must not be lost.
        let mut delay = FIRST_RETRY;
        while let Err(error) = writer.write(&batch) {
            warn_retry(&error, batch.len());
            std::thread::sleep(delay);
            delay = (delay * 2).min(MAX_RETRY);
        }
        written(metrics, &mut batch);
    }
}

async fn write_on_pool(store: Store, receiver: AuditReceiver, metrics: Arc<Metrics>) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        match receiver.take(&mut batch, BATCH) {
            Taken::Closed => return,
            Taken::Empty => {
                receiver.arrival().await;
                continue;
            }
            Taken::Records => {}
        }
        let mut delay = FIRST_RETRY;
        while let Err(error) = store.insert_login_records(&batch).await {
            warn_retry(&error, batch.len());
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RETRY);
        }
        written(&metrics, &mut batch);
    }
}

fn warn_retry(error: &StoreError, records: usize) {
    tracing::warn!(%error, records, "login audit write failed; retrying");
}

fn written(metrics: &Metrics, batch: &mut Vec<LoginRecord>) {
    metrics.count_logins(batch);
    metrics
        .audit_written
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    batch.clear();
}
