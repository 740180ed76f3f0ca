//! How long the machine stops a running thread: spins on the clock for a few seconds and notes
//! every gap between two readings (normally tens of nanoseconds). With nothing else running,
//! a gap is time the CPU spent elsewhere: an interrupt, the kernel's own work, or, on a VM,
//! the host running something else on the physical core. An open-loop benchmark's tail
//! latency cannot be lower than such stalls make it: each one queues the requests due during
//! it, and at 80% load the server drains that queue with a fifth of its capacity.
//!
//! Usage: `hiccups SECONDS` (pinned with taskset by the harness); prints one JSON object.

use std::time::{Duration, Instant};

/// Gaps shorter than this are the loop's own jitter (cache misses, the timer interrupt).
const NOTED: Duration = Duration::from_micros(100);

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let length = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut last = start;
    let mut gaps: Vec<Duration> = Vec::new();
    while last - start < length {
        let now = Instant::now();
        let gap = now - last;
        if gap >= NOTED {
            gaps.push(gap);
        }
        last = now;
    }
    let elapsed = (last - start).as_secs_f64();
    let over = |limit: Duration| gaps.iter().filter(|g| **g >= limit).count();
    let lost: Duration = gaps.iter().sum();
    let longest = gaps.iter().max().copied().unwrap_or_default();
    println!(
        "{}",
        serde_json::json!({
            "seconds": elapsed,
            "gaps_over_100us": gaps.len(),
            "gaps_over_1ms": over(Duration::from_millis(1)),
            "gaps_over_1ms_per_s": over(Duration::from_millis(1)) as f64 / elapsed,
            "longest_us": longest.as_secs_f64() * 1e6,
            "lost_share": lost.as_secs_f64() / elapsed,
        })
    );
}
