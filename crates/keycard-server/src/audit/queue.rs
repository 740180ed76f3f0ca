//! The bounded queue between requests and the audit writer.
//!
//! Why not a tokio `mpsc` channel: its receiver frees room one record at a time, and each freed
//! place wakes a waiting request. Here the writer takes a whole batch under one lock and, when
//! requests found the queue full, wakes them all at once; requests wake the writer only when it
//! sleeps for want of records. (When the writer had a thread of its own, a wake per record was
//! two context switches per record: about a third of the server's CPU under full load.)

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use keycard_core::LoginRecord;
use tokio::sync::Notify;

/// The request side: queues records, waiting while the queue is full. Clones share the queue;
/// when the last one is dropped the writer drains what is left and stops.
pub struct AuditSender {
    queue: Arc<Queue>,
}

/// The writer is gone: the record could not be queued.
#[derive(Debug)]
pub struct WriterGone;

/// Why [`AuditSender::try_send`] did not queue a record.
enum Refused {
    Gone,
    /// The queue is full; the record comes back (boxed: only a full queue pays for that).
    Full(Box<LoginRecord>),
}

/// The writer's side.
pub(super) struct AuditReceiver {
    queue: Arc<Queue>,
}

struct Queue {
    capacity: usize,
    state: Mutex<State>,
    /// Wakes the writer when records arrive while it waits for them.
    arrived: Notify,
    /// Requests waiting for room; woken together when the writer takes records.
    room: Notify,
}

struct State {
    records: VecDeque<LoginRecord>,
    senders: usize,
    /// The writer waits for records (so a request must wake it).
    writer_waiting: bool,
    /// A request found the queue full since the writer last took records.
    full_seen: bool,
    writer_gone: bool,
}

/// A queue for `capacity` records and its receiving end.
pub(super) fn bounded(capacity: usize) -> (AuditSender, AuditReceiver) {
    let queue = Arc::new(Queue {
        capacity: capacity.max(1),
        state: Mutex::new(State {
            records: VecDeque::with_capacity(capacity.clamp(1, 4096)),
            senders: 1,
            writer_waiting: false,
            full_seen: false,
            writer_gone: false,
        }),
        arrived: Notify::new(),
        room: Notify::new(),
    });
    (
        AuditSender {
            queue: queue.clone(),
        },
        AuditReceiver { queue },
    )
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AuditSender {
    /// Queues `record`, waiting while the queue is full (back-pressure, never loss).
    ///
    /// Not an `async fn`: the record goes into the queue at once when there is room (nearly
    /// always), and only a full queue costs a boxed future that holds it while waiting. An
    /// `async fn` would hold the 300-byte record in its own state, which its callers' futures
    /// carry and copy on every level of the request path.
    pub fn send(&self, record: LoginRecord) -> impl Future<Output = Result<(), WriterGone>> + '_ {
        let queued = self.try_send(record);
        async move {
            match queued {
                Ok(()) => Ok(()),
                Err(Refused::Gone) => Err(WriterGone),
                Err(Refused::Full(record)) => Box::pin(self.send_when_room(*record)).await,
            }
        }
    }

    /// Queues `record` if there is room; else marks that a request found the queue full (the
    /// writer then wakes those waiting for room).
    fn try_send(&self, record: LoginRecord) -> Result<(), Refused> {
        let mut state = self.queue.lock();
        if state.writer_gone {
            return Err(Refused::Gone);
        }
        if state.records.len() >= self.queue.capacity {
            state.full_seen = true;
            return Err(Refused::Full(Box::new(record)));
        }
        state.records.push_back(record);
        if std::mem::take(&mut state.writer_waiting) {
            self.queue.arrived.notify_one();
        }
        Ok(())
    }

    async fn send_when_room(&self, mut record: LoginRecord) -> Result<(), WriterGone> {
        loop {
            // Made before looking: a `notify_waiters` from then on wakes it.
            let room = self.queue.room.notified();
            match self.try_send(record) {
                Ok(()) => return Ok(()),
                Err(Refused::Gone) => return Err(WriterGone),
                Err(Refused::Full(back)) => record = *back,
            }
            room.await;
        }
    }

    /// Records waiting for the writer.
    pub fn queued(&self) -> usize {
        self.queue.lock().records.len()
    }
}

impl Clone for AuditSender {
    fn clone(&self) -> Self {
        self.queue.lock().senders += 1;
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl Drop for AuditSender {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        state.senders -= 1;
        if state.senders == 0 {
            self.queue.arrived.notify_one();
        }
    }
}

/// What the writer learns from [`AuditReceiver::look`] and [`AuditReceiver::take`].
pub(super) enum Taken {
    /// Records are queued (and, from [`AuditReceiver::take`], were moved into the batch).
    Records,
    /// None are queued; the writer must wait for [`AuditReceiver::arrival`].
    Empty,
    /// None are queued and every sender is gone: the writer is done.
    Closed,
}

/// The records the writer holds, oldest first.
pub(super) type Batch = VecDeque<LoginRecord>;

impl AuditReceiver {
    /// Whether records are queued, moving none; when none are, whether to wait for
    /// [`arrival`](Self::arrival) or stop.
    pub(super) fn look(&self) -> Taken {
        Self::look_at(&mut self.queue.lock())
    }

    fn look_at(state: &mut State) -> Taken {
        if !state.records.is_empty() {
            return Taken::Records;
        }
        if state.senders == 0 {
            return Taken::Closed;
        }
        state.writer_waiting = true;
        Taken::Empty
    }

    /// Moves up to `max` queued records (oldest first) into `batch`; when none are queued, says
    /// whether to wait for [`arrival`](Self::arrival) or stop.
    pub(super) fn take(&self, batch: &mut Batch, max: usize) -> Taken {
        let mut state = self.queue.lock();
        let taken = Self::look_at(&mut state);
        self.move_out(&mut state, batch, max);
        taken
    }

    /// Moves up to `max` records in all into `batch` from what is queued now, if anything (the
    /// native writer's take, after [`look`](Self::look) and the linger).
    pub(super) fn take_more(&self, batch: &mut Batch, max: usize) {
        let mut state = self.queue.lock();
        self.move_out(&mut state, batch, max);
    }

    /// When requests waited for room, wakes them all: one pass for the batch. An empty batch
    /// that takes the whole queue changes places with it (the queue keeps the batch's
    /// storage): no record is copied, where moving them one by one copied each record's 304
    /// bytes (0.36% of the server's CPU at max).
    fn move_out(&self, state: &mut State, batch: &mut Batch, max: usize) {
        let n = state.records.len().min(max.saturating_sub(batch.len()));
        if n > 0 && batch.is_empty() && n == state.records.len() {
            std::mem::swap(batch, &mut state.records);
        } else {
            batch.extend(state.records.drain(..n));
        }
        if n > 0 && std::mem::take(&mut state.full_seen) {
            self.queue.room.notify_waiters();
        }
    }

    /// Records queued now.
    pub(super) fn queued(&self) -> usize {
        self.queue.lock().records.len()
    }

    /// Whether the writer has fallen behind: more than `threshold` records queued, or the
    /// queue half full (a small queue fills before any fixed threshold is reached).
    pub(super) fn is_behind(&self, threshold: usize) -> bool {
        let queued = self.queued();
        queued > threshold || queued * 2 >= self.queue.capacity
    }

    /// Resolves when a record arrives after [`take`](Self::take) answered `Empty` (or at once if
    /// one already did, or when the last sender is dropped).
    pub(super) async fn arrival(&self) {
        self.queue.arrived.notified().await;
    }
}

impl Drop for AuditReceiver {
    /// The writer stopped (drained, or its task died): requests waiting for room, and any
    /// later ones, get [`WriterGone`] rather than wait forever.
    fn drop(&mut self) {
        self.queue.lock().writer_gone = true;
        self.queue.room.notify_waiters();
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use super::*;

    pub(in crate::audit) fn record(n: usize) -> LoginRecord {
        LoginRecord {
            at: 0,
            request_id: n.to_string().into(),
            ip: "127.0.0.1".into(),
            account: None,
            integration: None,
            token_name: None,
            user: None,
            role: None,
            surface: "rest".into(),
            request_uri: "/".into(),
            status: "Success".into(),
            detail: "".into(),
            diagnosis: serde_json::Value::Null,
        }
    }

    async fn send_all(sender: &AuditSender, numbers: std::ops::Range<usize>) {
        for n in numbers {
            sender.send(record(n)).await.unwrap();
        }
    }

    fn ids(batch: &Batch) -> Vec<String> {
        batch.iter().map(|r| r.request_id.to_string()).collect()
    }

    async fn still_waiting<F: std::future::Future>(future: std::pin::Pin<&mut F>) -> bool {
        tokio::time::timeout(Duration::from_millis(50), future)
            .await
            .is_err()
    }

    #[tokio::test]
    async fn the_writer_is_behind_past_the_threshold_or_at_half_the_queue() {
        let (sender, receiver) = bounded(10);
        for n in 0..4 {
            sender.send(record(n)).await.unwrap();
        }
        assert!(
            !receiver.is_behind(4),
            "4 queued: not past 4, under half of 10"
        );
        assert!(receiver.is_behind(3), "past the threshold");
        sender.send(record(4)).await.unwrap();
        assert!(receiver.is_behind(100), "half of a small queue");
    }

    #[tokio::test]
    async fn records_come_out_in_order_and_in_batches_of_at_most_max() {
        let (sender, receiver) = bounded(10);
        send_all(&sender, 0..5).await;
        let mut batch = Batch::new();
        assert!(matches!(receiver.take(&mut batch, 3), Taken::Records));
        assert_eq!(ids(&batch), ["0", "1", "2"]);
        receiver.take_more(&mut batch, 4);
        assert_eq!(ids(&batch), ["0", "1", "2", "3"]);
        assert_eq!(sender.queued(), 1);
    }

    /// The whole queue into an empty batch (the two change places), then more records after
    /// them, then the next batch: every record once, in order.
    #[tokio::test]
    async fn a_whole_queue_taken_at_once_keeps_order_and_loses_nothing() {
        let (sender, receiver) = bounded(10);
        send_all(&sender, 0..3).await;
        let mut batch = Batch::new();
        assert!(matches!(receiver.look(), Taken::Records));
        receiver.take_more(&mut batch, 10);
        assert_eq!(ids(&batch), ["0", "1", "2"]);
        assert_eq!(sender.queued(), 0);
        send_all(&sender, 3..5).await;
        receiver.take_more(&mut batch, 10);
        assert_eq!(ids(&batch), ["0", "1", "2", "3", "4"]);
        batch.clear();
        send_all(&sender, 5..15).await;
        receiver.take_more(&mut batch, 10);
        assert_eq!(
            ids(&batch),
            (5..15).map(|n| n.to_string()).collect::<Vec<_>>()
        );
        assert!(matches!(receiver.take(&mut batch, 10), Taken::Empty));
    }

    #[tokio::test]
    async fn a_full_queue_holds_the_request_until_the_writer_takes_records() {
        let (sender, receiver) = bounded(2);
        sender.send(record(0)).await.unwrap();
        sender.send(record(1)).await.unwrap();
        let third = sender.send(record(2));
        tokio::pin!(third);
        assert!(
            still_waiting(third.as_mut()).await,
            "a full queue must make the request wait"
        );
        let mut batch = Batch::new();
        receiver.take(&mut batch, 1);
        // Woken by the take, not by polling.
        tokio::time::timeout(Duration::from_secs(5), third)
            .await
            .expect("the waiting request must be released once room is made")
            .unwrap();
        batch.clear();
        receiver.take(&mut batch, 10);
        assert_eq!(ids(&batch), ["1", "2"], "nothing lost, order kept");
    }

    #[tokio::test]
    async fn the_writer_drains_what_is_queued_after_the_last_sender_is_gone() {
        let (sender, receiver) = bounded(10);
        let other = sender.clone();
        sender.send(record(0)).await.unwrap();
        drop(sender);
        other.send(record(1)).await.unwrap();
        let mut batch = Batch::new();
        assert!(matches!(receiver.take(&mut batch, 10), Taken::Records));
        assert!(matches!(receiver.take(&mut batch, 10), Taken::Empty));
        drop(other);
        tokio::time::timeout(Duration::from_secs(5), receiver.arrival())
            .await
            .expect("dropping the last sender wakes the writer");
        assert!(matches!(receiver.take(&mut batch, 10), Taken::Closed));
        assert_eq!(ids(&batch), ["0", "1"]);
    }

    #[tokio::test]
    async fn a_waiting_writer_is_woken_by_the_next_record() {
        let (sender, receiver) = bounded(10);
        let mut batch = Batch::new();
        assert!(matches!(receiver.take(&mut batch, 10), Taken::Empty));
        let arrival = receiver.arrival();
        tokio::pin!(arrival);
        assert!(still_waiting(arrival.as_mut()).await);
        sender.send(record(7)).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), arrival)
            .await
            .expect("a record wakes the writer");
        receiver.take(&mut batch, 10);
        assert_eq!(ids(&batch), ["7"]);
    }

    #[tokio::test]
    async fn requests_are_refused_rather_than_left_waiting_once_the_writer_is_gone() {
        let (sender, receiver) = bounded(1);
        sender.send(record(0)).await.unwrap();
        let waiting = sender.send(record(1));
        tokio::pin!(waiting);
        assert!(still_waiting(waiting.as_mut()).await);
        drop(receiver);
        let outcome = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("a request waiting for room is released when the writer stops");
        assert!(outcome.is_err());
        assert!(sender.send(record(2)).await.is_err());
    }
}
