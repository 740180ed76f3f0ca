//! The login audit writer: requests queue records on a bounded queue (waiting when it is full:
//! back-pressure, never loss) and one writer task stores them in batches, in order. On an
//! SQLite file it writes through the store's native [`LoginWriter`] (no thread hop per row) on
//! the request runtime itself, a block at a time with a yield in between; on PostgreSQL it
//! goes through the pool. When the last sender is dropped the writer drains the queue before
//! returning. A failed write is retried until it succeeds; only a record PostgreSQL refuses as
//! data (which no retry changes) is left out, logged and counted, so that it cannot hold the
//! trail back for ever.

mod queue;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use keycard_core::LoginRecord;
use keycard_store::{LoginWriter, OpenLoginBatch, Store, StoreError};

use self::queue::{AuditReceiver, Batch, Taken};
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
) -> (AuditSender, tokio::task::JoinHandle<()>) {
    let (sender, receiver) = queue::bounded(capacity);
    let task = match store.login_writer() {
        Some(writer) => tokio::spawn(write_natively(writer, receiver, metrics)),
        None => tokio::spawn(write_on_pool(store, receiver, metrics)),
    };
    (sender, task)
}

/// How the native writer shares the core with request handling. It is a task on the request
/// runtime and stores the trail a step at a time: one block ([`OpenLoginBatch::BLOCK_RECORDS`]
/// records) per runtime worker, so one block on one core. Before each step it gives way
/// ([`give_way`]): it yields, and yields again while requests keep arriving, so a burst is
/// answered before the trail is written; once it is [`BEHIND`] it takes a step per turn of
/// its worker, so it keeps up at full load. On one core a response waits for at most one
/// block or commit.
///
/// It first ran on a thread of its own, in the idle scheduling class while keeping up and at
/// normal priority once behind. But a thread the kernel switches to keeps the core for up to a
/// time slice: 1-4 ms runs, measured with `perf sched` at 60k req/s, were the load benchmark's
/// p99 from about 75% load. Transactions stay large ([`BATCH`]): 64-row ones spent a fifth of
/// the core on rewriting the same last pages into the log at each commit. No step waits for
/// the SQLite write lock ([`LoginWriter::begin`] says when it is taken): another connection's
/// transaction may itself be waiting for this runtime.
async fn write_natively(writer: LoginWriter, receiver: AuditReceiver, metrics: Arc<Metrics>) {
    let checkpoints = Checkpoints::start(&writer);
    // One block per turn of its worker keeps the writer in step with one worker's requests;
    // with N workers queueing records, a block per turn capped the trail, and so the server,
    // near 32 records per worker turn (about 400k requests/s on 8-14 cores, cores idle).
    let blocks_per_step = tokio::runtime::Handle::current()
        .metrics()
        .num_workers()
        .max(1);
    let mut batch = Batch::with_capacity(BATCH);
    loop {
        // Records gather in the queue before they are taken, so that most batches take the
        // whole queue at once (`take_more` then swaps it for the empty batch).
        match receiver.look() {
            Taken::Closed => break,
            Taken::Empty => {
                receiver.arrival().await;
                continue;
            }
            Taken::Records => {}
        }
        if receiver.queued() < BATCH {
            tokio::time::sleep(LINGER).await;
        }
        receiver.take_more(&mut batch, BATCH);
        let records: &[LoginRecord] = batch.make_contiguous();
        // Retry until written: a record the server answered for must not be lost.
        let mut delay = FIRST_RETRY;
        while let Err(error) =
            write_in_steps(&writer, records, blocks_per_step, &receiver, &metrics).await
        {
            warn_retry(&error, records.len());
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RETRY);
        }
        written(&metrics, &mut batch, 0);
    }
    drop(checkpoints);
}

/// Queued records past which the native writer stops giving way to arriving requests.
const BEHIND: usize = 256;
/// The longest the native writer gives way before a step: requests that queue no record
/// (metrics scrapes, say) must not hold the trail back for good.
const MOST_GIVEN_WAY: Duration = Duration::from_millis(50);
/// How long the native writer waits before trying again for a write lock another connection
/// holds (the directory's own writes: rare and short).
const LOCKED_RETRY: Duration = Duration::from_millis(1);

/// Writes `records` in one transaction, giving way to requests before each step of
/// `blocks_per_step` blocks.
async fn write_in_steps(
    writer: &LoginWriter,
    records: &[LoginRecord],
    blocks_per_step: usize,
    receiver: &AuditReceiver,
    metrics: &Metrics,
) -> Result<(), StoreError> {
    give_way(receiver, metrics).await;
    let mut open = loop {
        match writer.begin()? {
            Some(open) => break open,
            None => tokio::time::sleep(LOCKED_RETRY).await,
        }
    };
    for (i, block) in records.chunks(OpenLoginBatch::BLOCK_RECORDS).enumerate() {
        if i > 0 && i % blocks_per_step == 0 {
            give_way(receiver, metrics).await;
        }
        open.insert(block)?;
    }
    open.commit()
}

/// Yields to the runtime, and again for as long as each turn saw a request arrive, unless the
/// writer is behind (or has given way for [`MOST_GIVEN_WAY`]). A turn of a single-worker
/// runtime runs every task that is ready and polls the sockets, so a turn without arrivals
/// is the core's idle moment: the idle scheduling class at task grain, without a switch.
async fn give_way(receiver: &AuditReceiver, metrics: &Metrics) {
    let started = tokio::time::Instant::now();
    loop {
        let arrivals = metrics.arrivals();
        tokio::task::yield_now().await;
        let quiet = metrics.arrivals() == arrivals;
        if quiet || receiver.is_behind(BEHIND) || started.elapsed() >= MOST_GIVEN_WAY {
            return;
        }
    }
}

/// The thread that checkpoints the SQLite log every [`CHECKPOINT_EVERY`]
/// ([`LoginWriter::checkpoint`]), so that the copying into the database file happens in small
/// steps on a thread that may block, never inside the writer's commits on the runtime (a
/// checkpoint in a commit held the runtime for up to 3.6 ms at 60k req/s, and for 65-75 ms
/// when the log had grown to the writer's own threshold). It runs at normal priority: in the
/// idle class it starved from about 80% load. Stops when dropped.
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

async fn write_on_pool(store: Store, receiver: AuditReceiver, metrics: Arc<Metrics>) {
    let mut batch = Batch::with_capacity(BATCH);
    loop {
        match receiver.take(&mut batch, BATCH) {
            Taken::Closed => return,
            Taken::Empty => {
                receiver.arrival().await;
                continue;
            }
            Taken::Records => {}
        }
        let records: &[LoginRecord] = batch.make_contiguous();
        let mut refused = 0;
        if insert_until_written(&store, records).await.is_err() {
            // One record the database refuses must not hold back the trail for ever: the
            // others are written one at a time, and only the refused ones are left out.
            for record in records {
                let alone = std::slice::from_ref(record);
                if let Err(error) = insert_until_written(&store, alone).await {
                    tracing::error!(%error, request_id = %record.request_id, "the database refuses this login record; it is left out of the trail");
                    refused += 1;
                }
            }
        }
        metrics.audit_refused.fetch_add(refused, Ordering::Relaxed);
        written(&metrics, &mut batch, refused);
    }
}

/// Inserts `records`, retrying (with a growing delay) until they are written or the database
/// refuses their data ([`StoreError::is_refused_data`]), which no retry changes.
async fn insert_until_written(store: &Store, records: &[LoginRecord]) -> Result<(), StoreError> {
    let mut delay = FIRST_RETRY;
    loop {
        match store.insert_login_records(records).await {
            Ok(()) => return Ok(()),
            Err(error) if error.is_refused_data() => return Err(error),
            Err(error) => warn_retry(&error, records.len()),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY);
    }
}

fn warn_retry(error: &StoreError, records: usize) {
    tracing::warn!(%error, records, "login audit write failed; retrying");
}

/// Counts the batch's attempts and its records written (all but `refused`), and empties it.
fn written(metrics: &Metrics, batch: &mut Batch, refused: u64) {
    metrics.count_logins(batch.make_contiguous());
    metrics
        .audit_written
        .fetch_add(batch.len() as u64 - refused, Ordering::Relaxed);
    batch.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// A record the database refuses (here a check constraint refuses its email) is left
    /// out; the rest of its batch, and the batches after it, are written. Before, the writer
    /// retried the batch for ever and the queue filled.
    #[tokio::test]
    async fn on_postgresql_a_refused_record_is_left_out_and_the_trail_goes_on() {
        let url = keycard_testkit::fresh_postgres_database().await;
        let keys = keycard_store::crypto::KeyRing::new(
            keycard_store::crypto::MasterKey::generate().unwrap(),
        );
        let store = Store::open(&keycard_store::Location::Url(url.clone()), keys)
            .await
            .unwrap();
        let mut raw = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        sqlx::query("ALTER TABLE login_audit ADD CONSTRAINT no_poison CHECK (user_email IS NULL OR user_email <> 'poison@example.com')")
            .execute(&mut raw)
            .await
            .unwrap();
        let metrics = Arc::new(Metrics::default());
        let (sender, task) = spawn_writer(store.clone(), 100, metrics.clone());
        for n in 0..10 {
            let mut record = queue::tests::record(n);
            record.user = Some(
                if n == 3 {
                    "poison@example.com"
                } else {
                    "ok@example.com"
                }
                .into(),
            );
            sender.send(record).await.unwrap();
        }
        drop(sender);
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the writer drains and stops")
            .unwrap();
        let stored = store
            .login_records(&keycard_store::audit::LoginQuery::default())
            .await
            .unwrap();
        assert_eq!(stored.len(), 9);
        assert!(
            stored
                .iter()
                .all(|r| r.user.as_deref() == Some("ok@example.com"))
        );
        assert_eq!(metrics.audit_refused.load(Ordering::Relaxed), 1);
        assert_eq!(metrics.audit_written.load(Ordering::Relaxed), 9);
    }

    #[tokio::test]
    async fn the_writer_goes_on_after_a_turn_without_arrivals() {
        let (_sender, receiver) = queue::bounded(1000);
        let metrics = Metrics::default();
        // Nothing else runs on this runtime: the first turn is quiet.
        tokio::time::timeout(Duration::from_secs(5), give_way(&receiver, &metrics))
            .await
            .expect("a quiet turn ends the wait");
    }

    // Paused time: the bound on giving way (a clock) cannot end the wait on a slow machine.
    #[tokio::test(start_paused = true)]
    async fn the_writer_gives_way_while_requests_arrive_until_it_is_behind() {
        let (sender, receiver) = queue::bounded(10_000);
        let metrics = Arc::new(Metrics::default());
        let stop = Arc::new(AtomicBool::new(false));
        // Traffic: a request arrives at every turn of this single-threaded runtime; after 20
        // turns the requests have queued more records than the writer may leave waiting.
        let traffic = tokio::spawn({
            let (metrics, stop) = (metrics.clone(), stop.clone());
            async move {
                let mut turns = 0;
                while !stop.load(Ordering::Relaxed) {
                    metrics.arrive();
                    turns += 1;
                    if turns == 20 {
                        for n in 0..=BEHIND {
                            sender.send(queue::tests::record(n)).await.unwrap();
                        }
                    }
                    tokio::task::yield_now().await;
                }
                turns
            }
        });
        give_way(&receiver, &metrics).await;
        stop.store(true, Ordering::Relaxed);
        assert!(receiver.is_behind(BEHIND), "it went on only once behind");
        assert!(traffic.await.unwrap() >= 20);
    }
}
