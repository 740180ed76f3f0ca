//! What one phase of one generator thread observed, merged over threads and written as JSON.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::presign::Kind;

/// Latencies in nanoseconds, 3 significant digits, up to 60 s.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

pub struct Outcome {
    /// Good requests answered 2xx.
    pub success: Histogram<u64>,
    /// Bad-signature and replay requests (whatever the answer; `unexpected` counts wrong ones).
    pub failure: Histogram<u64>,
    /// How late each request left versus its schedule (open loop): queueing behind a busy
    /// connection plus the generator's own lag.
    pub send_lag: Histogram<u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub sent: u64,
    pub completed: u64,
    /// Open loop: requests still waiting for a free connection when the run ended.
    pub unsent: u64,
    /// Good requests answered (whatever the status): what the server must log as successes.
    pub good_answered: u64,
    pub good_ok: u64,
    pub bad_signature: u64,
    pub replay: u64,
    /// Good requests not answered 2xx, or failures answered 2xx.
    pub unexpected: u64,
    pub io_errors: u64,
    pub reconnects: u64,
    pub first_send: Option<Instant>,
    pub last_done: Option<Instant>,
    /// Answers per 10 ms since the phase's start: shows warm-up effects and stalls, and gives
    /// the steady-state rate.
    pub timeline: Vec<u64>,
    /// The slowest answer (ns) per timeline bucket: shows whether slow answers come in stalls.
    pub slowest: Vec<u64>,
}

/// Width of a timeline bucket.
pub const BUCKET: Duration = Duration::from_millis(10);

impl Outcome {
    pub fn new() -> Self {
        Self {
            success: histogram(),
            failure: histogram(),
            send_lag: histogram(),
            statuses: BTreeMap::new(),
            sent: 0,
            completed: 0,
            unsent: 0,
            good_answered: 0,
            good_ok: 0,
            bad_signature: 0,
            replay: 0,
            unexpected: 0,
            io_errors: 0,
            reconnects: 0,
            first_send: None,
            last_done: None,
            timeline: Vec::new(),
            slowest: Vec::new(),
        }
    }

    pub fn record(
        &mut self,
        kind: Kind,
        status: u16,
        latency: Duration,
        done: Instant,
        t0: Instant,
    ) {
        let bucket =
            usize::try_from(done.saturating_duration_since(t0).as_millis() / BUCKET.as_millis())
                .unwrap_or(usize::MAX);
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        if bucket < 100_000 {
            if self.timeline.len() <= bucket {
                self.timeline.resize(bucket + 1, 0);
                self.slowest.resize(bucket + 1, 0);
            }
            self.timeline[bucket] += 1;
            self.slowest[bucket] = self.slowest[bucket].max(ns);
        }
        let ok = (200..300).contains(&status);
        *self.statuses.entry(status).or_default() += 1;
        self.completed += 1;
        self.last_done = Some(self.last_done.map_or(done, |d| d.max(done)));
        if kind == Kind::Good {
            self.good_answered += 1;
        }
        match kind {
            Kind::Good if ok => {
                self.good_ok += 1;
                self.success.saturating_record(ns);
            }
            Kind::Good => self.unexpected += 1,
            Kind::BadSignature | Kind::Replay => {
                if kind == Kind::BadSignature {
                    self.bad_signature += 1;
                } else {
                    self.replay += 1;
                }
                if ok {
                    self.unexpected += 1;
                }
                self.failure.saturating_record(ns);
            }
        }
    }

    pub fn merge(&mut self, other: &Self) {
        self.success.add(&other.success).expect("same bounds");
        self.failure.add(&other.failure).expect("same bounds");
        self.send_lag.add(&other.send_lag).expect("same bounds");
        for (status, n) in &other.statuses {
            *self.statuses.entry(*status).or_default() += n;
        }
        self.sent += other.sent;
        self.completed += other.completed;
        self.unsent += other.unsent;
        self.good_answered += other.good_answered;
        self.good_ok += other.good_ok;
        self.bad_signature += other.bad_signature;
        self.replay += other.replay;
        self.unexpected += other.unexpected;
        self.io_errors += other.io_errors;
        self.reconnects += other.reconnects;
        if self.timeline.len() < other.timeline.len() {
            self.timeline.resize(other.timeline.len(), 0);
        }
        for (mine, theirs) in self.timeline.iter_mut().zip(&other.timeline) {
            *mine += theirs;
        }
        if self.slowest.len() < other.slowest.len() {
            self.slowest.resize(other.slowest.len(), 0);
        }
        for (mine, theirs) in self.slowest.iter_mut().zip(&other.slowest) {
            *mine = (*mine).max(*theirs);
        }
        self.first_send = match (self.first_send, other.first_send) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_done = match (self.last_done, other.last_done) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    pub fn statuses_json(&self) -> Value {
        self.statuses
            .iter()
            .map(|(s, n)| (s.to_string(), json!(n)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// Requests/s over the second half of the run (up to the last 5%, where connections finish
/// one by one): the sustained rate, after start-up effects such as queues that absorb a burst.
pub fn steady_rps(timeline: &[u64]) -> Option<f64> {
    let n = timeline.len();
    let (from, to) = (n / 2, n * 95 / 100);
    (to > from).then(|| {
        timeline[from..to].iter().sum::<u64>() as f64 / ((to - from) as f64 * BUCKET.as_secs_f64())
    })
}

/// Requests/s per 100 ms, for the JSON.
pub fn timeline_rps(timeline: &[u64]) -> Vec<u64> {
    let per = (Duration::from_millis(100).as_millis() / BUCKET.as_millis()) as usize;
    timeline
        .chunks(per)
        .map(|c| c.iter().sum::<u64>() * 10)
        .collect()
}

/// The slowest answer per 100 ms, in µs, for the JSON.
pub fn timeline_slowest_us(slowest: &[u64]) -> Vec<f64> {
    let per = (Duration::from_millis(100).as_millis() / BUCKET.as_millis()) as usize;
    slowest
        .chunks(per)
        .map(|c| us(c.iter().copied().max().unwrap_or(0)))
        .collect()
}

fn us(ns: u64) -> f64 {
    (ns as f64 / 100.0).round() / 10.0
}

/// Percentiles in microseconds (0.1 µs resolution).
pub fn latency_json(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({ "count": 0 });
    }
    json!({
        "count": h.len(),
        "mean_us": (h.mean() / 100.0).round() / 10.0,
        "p50_us": us(h.value_at_quantile(0.50)),
        "p90_us": us(h.value_at_quantile(0.90)),
        "p99_us": us(h.value_at_quantile(0.99)),
        "p999_us": us(h.value_at_quantile(0.999)),
        "max_us": us(h.max()),
    })
}
