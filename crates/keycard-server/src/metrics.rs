//! `/metrics` in Prometheus' text format. Requests and their latency are counted by the router
//! ([`crate::dispatch`]) in per-thread counters ([`crate::counters`]: no atomic
//! read-modify-write on the request path); login outcomes are counted by the audit writer,
//! off the hot path; gauges (cache, nonces, slots, audit queue) are read when scraped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::counters::PerThread;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Default)]
struct Histogram {
    /// Per bucket (non-cumulative), then +Inf.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

/// What the router counts on every request (one thread's share).
#[derive(Default)]
struct RequestCounters {
    /// Indexed by `MetricsSurface as usize`.
    latency: [Histogram; MetricsSurface::ALL.len()],
    responses: [[AtomicU64; CLASSES.len()]; MetricsSurface::ALL.len()],
    /// Requests that reached the router: the audit writer watches it to give way to traffic.
    arrivals: AtomicU64,
}

#[derive(Default)]
pub struct Metrics {
    requests: PerThread<RequestCounters>,
    /// (surface, outcome, detail) → attempts; written by the audit writer only.
    logins: Mutex<BTreeMap<(String, String, String), u64>>,
    pub audit_written: AtomicU64,
    /// Login records the database refused as data (left out of the trail, logged).
    pub audit_refused: AtomicU64,
}

/// The label of the request metrics: the surface a route belongs to
/// ([`crate::dispatch::Route`] says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsSurface {
    Rest,
    Restlet,
    Soap,
    Token,
    App,
    Other,
}

impl MetricsSurface {
    /// Every surface, in the order of their discriminants (their counters' index).
    const ALL: [Self; 6] = [
        Self::Rest,
        Self::Restlet,
        Self::Soap,
        Self::Token,
        Self::App,
        Self::Other,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Restlet => "restlet",
            Self::Soap => "soap",
            Self::Token => "token",
            Self::App => "app",
            Self::Other => "other",
        }
    }
}

impl Metrics {
    /// Counts a request that reached the router.
    pub fn arrive(&self) {
        self.requests.local().add(1, |c| &c.arrivals);
    }

    /// Requests that reached the router so far.
    pub fn arrivals(&self) -> u64 {
        self.requests.sum(|c| &c.arrivals)
    }

    pub fn observe(&self, surface: MetricsSurface, status: u16, seconds: f64) {
        let surface = surface as usize;
        if surface >= MetricsSurface::ALL.len() {
            return;
        }
        let bucket = BUCKETS
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(BUCKETS.len());
        let class = usize::from(status / 100)
            .saturating_sub(1)
            .min(CLASSES.len() - 1);
        let local = self.requests.local();
        // The indexes are in range: checked and clamped above.
        local.add(1, |c| &c.latency[surface].counts[bucket]);
        // Whole microseconds are precise enough for a sum and keep it an integer.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        local.add((seconds * 1e6) as u64, |c| &c.latency[surface].sum_micros);
        local.add(1, |c| &c.responses[surface][class]);
    }

    /// Counts a batch of login records (called by the audit writer). Consecutive records with
    /// the same labels (the common case: a run of successes) are counted together, so the
    /// labels are copied once per run rather than once per record.
    pub fn count_logins(&self, records: &[keycard_core::LoginRecord]) {
        let same_labels = |a: &keycard_core::LoginRecord, b: &keycard_core::LoginRecord| {
            a.surface == b.surface && a.status == b.status && a.detail == b.detail
        };
        let mut logins = self
            .logins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut rest = records;
        while let Some(first) = rest.first() {
            let run = rest.iter().take_while(|r| same_labels(first, r)).count();
            *logins
                .entry((
                    first.surface.to_string(),
                    first.status.as_str().to_ascii_lowercase(),
                    first.detail.to_string(),
                ))
                .or_default() += run as u64;
            rest = rest.get(run..).unwrap_or_default();
        }
    }
}

/// Label values are ours or NetSuite's codes, but escape anyway: the format demands it.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn render(state: &AppState) -> Response {
    let mut out = String::with_capacity(8192);
    state.metrics.write_http(&mut out);
    state.metrics.write_logins(&mut out);
    let m = &state.metrics;
    let gauges = [
        (
            "keycard_cache_hits_total",
            "counter",
            "Credential cache hits.",
            state.cache.hits.get(),
        ),
        (
            "keycard_cache_misses_total",
            "counter",
            "Credential cache misses (loads from the directory).",
            state.cache.misses.get(),
        ),
        (
            "keycard_audit_queue",
            "gauge",
            "Login records waiting for the audit writer.",
            state.audit.queued() as u64,
        ),
        (
            "keycard_audit_written_total",
            "counter",
            "Login records written to the directory.",
            m.audit_written.load(Ordering::Relaxed),
        ),
        (
            "keycard_audit_refused_total",
            "counter",
            "Login records the database refused as data, left out of the trail (each one logged).",
            m.audit_refused.load(Ordering::Relaxed),
        ),
    ];
    for (name, kind, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    if let Some(nonces) = state.shared.local_nonces() {
        let _ = writeln!(
            out,
            "# HELP keycard_nonces Nonces held for replay protection.\n# TYPE keycard_nonces gauge\nkeycard_nonces {nonces}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP keycard_slots_in_use Concurrency slots this node holds now, by pool (account:<id> or integration:<id>).\n# TYPE keycard_slots_in_use gauge"
    );
    for (pool, in_use) in state.shared.slots_held() {
        let _ = writeln!(
            out,
            "keycard_slots_in_use{{pool=\"{}\"}} {in_use}",
            label(&pool)
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

impl Metrics {
    fn write_http(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP keycard_http_requests_total HTTP responses by surface and status class.\n# TYPE keycard_http_requests_total counter"
        );
        for (s, surface) in MetricsSurface::ALL.iter().enumerate() {
            let surface = surface.label();
            for (i, class) in CLASSES.iter().enumerate() {
                let count = self.requests.sum(|c| &c.responses[s][i]);
                if count > 0 {
                    let _ = writeln!(
                        out,
                        "keycard_http_requests_total{{surface=\"{surface}\",status=\"{class}\"}} {count}"
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP keycard_http_request_duration_seconds Time from request to response head, by surface.\n# TYPE keycard_http_request_duration_seconds histogram"
        );
        for (s, surface) in MetricsSurface::ALL.iter().enumerate() {
            let surface = surface.label();
            let mut cumulative = 0;
            for i in 0..=BUCKETS.len() {
                cumulative += self.requests.sum(|c| &c.latency[s].counts[i]);
                let le = BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), ToString::to_string);
                let _ = writeln!(
                    out,
                    "keycard_http_request_duration_seconds_bucket{{surface=\"{surface}\",le=\"{le}\"}} {cumulative}"
                );
            }
            #[allow(clippy::cast_precision_loss)]
            let sum = self.requests.sum(|c| &c.latency[s].sum_micros) as f64 / 1e6;
            let _ = writeln!(
                out,
                "keycard_http_request_duration_seconds_sum{{surface=\"{surface}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "keycard_http_request_duration_seconds_count{{surface=\"{surface}\"}} {cumulative}"
            );
        }
    }

    fn write_logins(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP keycard_logins_total Authentication attempts by surface, outcome and NetSuite Detail code (as written to the audit trail).\n# TYPE keycard_logins_total counter"
        );
        for ((surface, outcome, detail), count) in self
            .logins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "keycard_logins_total{{surface=\"{}\",outcome=\"{}\",detail=\"{}\"}} {count}",
                label(surface),
                label(outcome),
                label(detail)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Metrics, MetricsSurface};

    #[test]
    fn each_surface_is_written_under_its_own_label() {
        for (index, surface) in MetricsSurface::ALL.iter().enumerate() {
            assert_eq!(*surface as usize, index);
            let metrics = Metrics::default();
            metrics.observe(*surface, 200, 0.001);
            let mut out = String::new();
            metrics.write_http(&mut out);
            let line = format!(
                "keycard_http_requests_total{{surface=\"{}\",status=\"2xx\"}} 1\n",
                surface.label()
            );
            assert!(out.contains(&line), "{out}");
            assert_eq!(out.matches("status=\"2xx\"").count(), 1, "{out}");
        }
    }

    fn record(status: &'static str, detail: &'static str) -> keycard_core::LoginRecord {
        keycard_core::LoginRecord {
            at: 0,
            request_id: "".into(),
            ip: "".into(),
            account: None,
            integration: None,
            token_name: None,
            user: None,
            role: None,
            surface: "token".into(),
            request_uri: "".into(),
            status: status.into(),
            detail: detail.into(),
            diagnosis: serde_json::Value::Null,
        }
    }

    #[test]
    fn logins_are_counted_by_labels_across_runs() {
        let metrics = Metrics::default();
        let batch = [
            record("Success", ""),
            record("Success", ""),
            record("Failure", "InvalidSignature"),
            record("Success", ""),
        ];
        metrics.count_logins(&batch);
        metrics.count_logins(&batch[2..]);
        let mut out = String::new();
        metrics.write_logins(&mut out);
        assert!(out.contains(
            "keycard_logins_total{surface=\"token\",outcome=\"success\",detail=\"\"} 4\n"
        ));
        assert!(out.contains(
            "keycard_logins_total{surface=\"token\",outcome=\"failure\",detail=\"InvalidSignature\"} 2\n"
        ));
    }
}
