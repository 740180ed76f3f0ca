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
                    let checkpoints = Checkpoints::start(&writer);
                    write_natively(&writer, &receiver, &metrics, &runtime);
                    drop(checkpoints);
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

/// The writer's scheduling class. While it keeps up it is in the idle class: it runs only when
/// request handling leaves the core free, so a batch never delays a response (the best p99 at
/// low and moderate load). But an idle-class thread is preempted by every arriving request, and
/// under sustained load (measured from about 75% of the core) those slivers cost so much in
/// switches and cold caches that it falls behind for good: the queue fills and every request
/// waits on back-pressure (p99 14 ms at 57k req/s). So once it is behind it takes normal
/// priority and yields the core before each transaction and between its statements (every 32
/// rows, about 80 µs of work: a request waits at most that long); it drops back to idle once
/// caught up. Transactions stay large ([`BATCH`]) either way: 64-row ones, as this writer first
/// had, spent a fifth of the core on rewriting the same last pages into the log at each
/// commit (512: 69-72k tokeninfo/s became 77-81k, and p99 at 56k/s went from 3 ms to 0.9).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pace {
    Idle,
    CatchingUp,
}

/// Queued records past which the writer counts as behind...
const BEHIND: usize = 256;
/// ...and below which it counts as caught up again.
const CAUGHT_UP: usize = 64;

/// The thread that checkpoints the SQLite log every [`CHECKPOINT_EVERY`], so that the copying
/// into the database file happens in small steps (about 50 ms of records each) rather than
/// inside the writer's commits, where the log's 1,000 pages are copied at once and hold the
/// core for milliseconds. It runs at normal priority: in the idle class it starved from about
/// 80% load, leaving the whole copy to the writer (8 ms stalls every few hundred ms at 63k
/// tokeninfo/s). Stops when dropped.
struct Checkpoints {
    stop: Option<std::sync::mpsc::Sender<()>>,
}

const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

impl Checkpoints {
    fn start(writer: &LoginWriter) -> Self {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let writer = writer.clone();
        let started = std::thread::Builder::new()
            .name("keycard-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    if let Err(error) = writer.checkpoint() {
                        tracing::debug!(%error, "login audit checkpoint failed; the writer's own threshold still applies");
                    }
                }
            });
        if let Err(error) = started {
            tracing::warn!(%error, "no checkpoint thread; the audit writer checkpoints on its own");
        }
        Self { stop: Some(stop) }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        drop(self.stop.take());
    }
}

/// The pace to switch to with `queued` records waiting, if it changes (with hysteresis, so the
/// writer does not flip on every batch).
fn change_of_pace(pace: Pace, queued: usize) -> Option<Pace> {
    match pace {
        Pace::Idle if queued > BEHIND => Some(Pace::CatchingUp),
        Pace::CatchingUp if queued < CAUGHT_UP => Some(Pace::Idle),
        _ => None,
    }
}

fn set_pace(pace: Pace) {
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id,
    };
    use thread_priority::{ThreadPriority, ThreadPriorityOsValue};
    let (policy, priority) = match pace {
        Pace::Idle => (NormalThreadSchedulePolicy::Idle, ThreadPriority::Min),
        // Nice 0, as request handling: `Min` would be nice 19, which still falls behind.
        Pace::CatchingUp => (
            NormalThreadSchedulePolicy::Other,
            ThreadPriority::Os(ThreadPriorityOsValue::default()),
        ),
    };
    if let Err(error) = set_thread_priority_and_policy(
        thread_native_id(),
        priority,
        ThreadSchedulePolicy::Normal(policy),
    ) {
        tracing::debug!(
            ?error,
            ?pace,
            "the audit writer's scheduling class was not changed"
        );
    }
}

fn write_natively(
    writer: &LoginWriter,
    receiver: &AuditReceiver,
    metrics: &Metrics,
    runtime: &tokio::runtime::Handle,
) {
    let mut pace = Pace::Idle;
    set_pace(pace);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        if let Some(next) = change_of_pace(pace, receiver.queued()) {
            pace = next;
            set_pace(pace);
        }
        let catching_up = pace == Pace::CatchingUp;
        if catching_up {
            // Lets waiting request handling run between transactions.
            std::thread::yield_now();
        }
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
        let pause = || {
            if catching_up {
                std::thread::yield_now();
            }
        };
        // Retry until written: a record the server answered for must not be lost.
        let mut delay = FIRST_RETRY;
        while let Err(error) = writer.write_pausing(&batch, pause) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_speeds_up_only_when_behind_and_slows_down_only_when_caught_up() {
        assert_eq!(change_of_pace(Pace::Idle, BEHIND), None);
        assert_eq!(
            change_of_pace(Pace::Idle, BEHIND + 1),
            Some(Pace::CatchingUp)
        );
        assert_eq!(change_of_pace(Pace::CatchingUp, CAUGHT_UP), None);
        assert_eq!(change_of_pace(Pace::CatchingUp, BEHIND + 1), None);
        assert_eq!(
            change_of_pace(Pace::CatchingUp, CAUGHT_UP - 1),
            Some(Pace::Idle)
        );
        assert_eq!(change_of_pace(Pace::Idle, 0), None);
    }
}
