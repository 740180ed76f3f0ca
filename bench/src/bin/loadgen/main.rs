//! `loadgen`: an HTTP/1.1 keep-alive load generator for TBA-signed requests.
//!
//! `loadgen run` pre-signs every request (fresh nonce each, tokens taken round-robin), then
//! sends them over N connections, either as fast as the server answers (`--requests`, max
//! throughput) or at a fixed offered rate (`--rate --duration`, open loop), and prints one JSON
//! object: requests/s, latency percentiles for successes and for expected failures, status
//! counts, and the generator's own CPU time (to show it was not the bottleneck).
//! `loadgen probe` sends one signed request and prints the answer (setup and sanity checks).

mod engine;
mod http;
mod presign;
mod stats;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::engine::{Engine, Pace};
use crate::presign::{Creds, Signer, Target};
use crate::stats::{Outcome, latency_json};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Run(RunArgs),
    Probe(ProbeArgs),
}

#[derive(Args)]
struct TargetArgs {
    /// Where to connect.
    #[arg(long)]
    connect: SocketAddr,
    /// The Host header, also the host that is signed (keycard rebuilds the URL from it).
    #[arg(long)]
    host: String,
    #[arg(long, default_value = "/rest/tokeninfo")]
    path: String,
    #[arg(long, default_value = "GET")]
    method: String,
    /// The credentials file: {realm, consumer_key, consumer_secret, tokens: [{token_id, token_secret}]}.
    #[arg(long)]
    creds: PathBuf,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Max-throughput mode: this many measured requests, each sent as soon as a connection frees.
    #[arg(long, conflicts_with = "rate")]
    requests: Option<usize>,
    /// Max mode: stop starting requests after this long even if some are left.
    #[arg(long, default_value_t = 60.0)]
    max_seconds: f64,
    /// Open-loop mode: offered requests per second...
    #[arg(long, requires = "duration")]
    rate: Option<f64>,
    /// ...for this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Unmeasured requests first (fill caches, open connections); replays copy these.
    #[arg(long, default_value_t = 2000)]
    warmup: usize,
    /// Percentage of measured requests that must fail: half bad signatures, half replays.
    #[arg(long, default_value_t = 0.0)]
    fail_percent: f64,
    /// Generator threads (default: the CPUs this process may run on, at most `connections`).
    #[arg(long)]
    threads: Option<usize>,
    /// Sleep in epoll while every connection waits for its answer, instead of busy-polling
    /// (see engine.rs: a sleeping generator costs the server a cross-CPU wakeup per answer).
    #[arg(long)]
    sleep_when_busy: bool,
}

#[derive(Args)]
struct ProbeArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// A JSON body (for POST).
    #[arg(long)]
    body: Option<String>,
    /// Which token of the credentials file signs.
    #[arg(long, default_value_t = 0)]
    token: u64,
    /// Send the same signed request twice (the second must be refused as a replay).
    #[arg(long)]
    twice: bool,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run(&args),
        Command::Probe(args) => probe(&args),
    }
}

fn target(args: &TargetArgs, body: Option<String>) -> Target {
    Target {
        method: args.method.clone(),
        host: args.host.clone(),
        path: args.path.clone(),
        body,
    }
}

fn probe(args: &ProbeArgs) -> Result<()> {
    let creds = Creds::load(&args.target.creds)?;
    let target = target(&args.target, args.body.clone());
    let request = Signer::new(&creds, &target).request(args.token, false)?;
    let mut answers = Vec::new();
    for _ in 0..if args.twice { 2 } else { 1 } {
        let (status, raw) = http::one_shot(args.target.connect, &request)?;
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        answers.push(json!({ "status": status, "head": head, "body": body }));
    }
    println!("{}", serde_json::to_string_pretty(&answers)?);
    Ok(())
}

/// CPU seconds (user + system) used by this process so far, all threads.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct we pass; a zeroed rusage is a valid value.
    #[allow(unsafe_code)]
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn split(total: usize, parts: usize, i: usize) -> usize {
    total / parts + usize::from(i < total % parts)
}

#[allow(clippy::too_many_lines)] // reads best as one sequence: plan, warm up, measure, report
fn run(args: &RunArgs) -> Result<()> {
    let creds = Creds::load(&args.target.creds)?;
    let target = target(&args.target, None);
    let (measured, pace_rate) = match (args.requests, args.rate, args.duration) {
        (Some(n), None, _) => (n, None),
        (None, Some(rate), Some(duration)) => ((rate * duration).round() as usize, Some(rate)),
        _ => anyhow::bail!("give --requests N (max mode) or --rate R --duration S (open loop)"),
    };
    // Timestamps are signed before the run: keep every run well inside the ±300 s window.
    let run_seconds = args.duration.unwrap_or(args.max_seconds);
    anyhow::ensure!(
        run_seconds <= 240.0,
        "runs are limited to 240 s (timestamp window)"
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args
        .threads
        .unwrap_or(cpus)
        .clamp(1, args.connections.max(1));
    let fail_ppm = (args.fail_percent * 10_000.0).round() as u64;

    let signer = Signer::new(&creds, &target);
    let presign_start = Instant::now();
    // Each thread signs its own share in parallel, then all warm up, then all start together.
    let barrier = Arc::new(Barrier::new(threads));
    let start_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let cpu_at_start: Arc<Mutex<f64>> = Arc::default();
    let presign_done: Arc<Mutex<Option<Instant>>> = Arc::default();
    let results: Vec<(Outcome, Outcome)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (signer, barrier) = (&signer, barrier.clone());
                let (start_at, cpu_at_start) = (start_at.clone(), cpu_at_start.clone());
                let presign_done = presign_done.clone();
                scope.spawn(move || -> Result<(Outcome, Outcome)> {
                    let (warm, reqs) = presign::plan(
                        signer,
                        t as u64,
                        split(args.warmup, threads, t),
                        split(measured, threads, t),
                        fail_ppm,
                    )?;
                    let mut engine = Engine::connect(
                        args.target.connect,
                        split(args.connections, threads, t),
                        args.sleep_when_busy,
                    )?;
                    if barrier.wait().is_leader() {
                        *presign_done.lock().unwrap() = Some(Instant::now());
                    }
                    let now = Instant::now();
                    let far = now + Duration::from_secs(240);
                    let warm_outcome = engine.run(&warm, Pace::Max, now, far)?;
                    // Everyone warmed up; the leader fixes t0 a little ahead so all threads
                    // are waiting in their loop when it comes.
                    if barrier.wait().is_leader() {
                        *start_at.lock().unwrap() = Some(Instant::now() + Duration::from_millis(5));
                        *cpu_at_start.lock().unwrap() = cpu_seconds();
                    }
                    barrier.wait();
                    let t0 = start_at.lock().unwrap().context("no start time")?;
                    let (pace, deadline) = match pace_rate {
                        None => (Pace::Max, t0 + Duration::from_secs_f64(args.max_seconds)),
                        Some(rate) => (
                            Pace::Open {
                                t0,
                                offset: Duration::from_secs_f64(t as f64 / rate),
                                interval: threads as f64 / rate,
                            },
                            t0 + Duration::from_secs_f64(args.duration.unwrap_or_default()),
                        ),
                    };
                    while Instant::now() < t0 {
                        std::hint::spin_loop();
                    }
                    let outcome = engine.run(&reqs, pace, t0, deadline)?;
                    Ok((warm_outcome, outcome))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("generator thread panicked"))
            .collect::<Result<Vec<_>>>()
    })?;
    let cpu_used = cpu_seconds() - *cpu_at_start.lock().unwrap();
    let t0 = start_at.lock().unwrap().context("no start time")?;
    let presign_s = presign_done
        .lock()
        .unwrap()
        .map_or(0.0, |d| (d - presign_start).as_secs_f64());

    let mut warm = Outcome::new();
    let mut total = Outcome::new();
    for (w, m) in &results {
        warm.merge(w);
        total.merge(m);
    }
    // Throughput over the measured window: from t0 to the last answer.
    let elapsed = total
        .last_done
        .map_or(0.0, |d| d.saturating_duration_since(t0).as_secs_f64());
    let rps = if elapsed > 0.0 {
        total.completed as f64 / elapsed
    } else {
        0.0
    };
    let report = json!({
        "mode": if pace_rate.is_some() { "open" } else { "max" },
        "offered_rps": pace_rate,
        "connections": args.connections,
        "threads": threads,
        "planned": measured,
        "fail_percent": args.fail_percent,
        "sleep_when_busy": args.sleep_when_busy,
        "elapsed_s": elapsed,
        "achieved_rps": rps,
        "steady_rps": stats::steady_rps(&total.timeline),
        "timeline_rps": stats::timeline_rps(&total.timeline),
        "timeline_slowest_us": stats::timeline_slowest_us(&total.slowest),
        "sent": total.sent,
        "completed": total.completed,
        "unsent": total.unsent,
        "io_errors": total.io_errors,
        "reconnects": total.reconnects,
        "unexpected_status": total.unexpected,
        "statuses": total.statuses_json(),
        "expected_success": total.good_answered,
        "good_ok": total.good_ok,
        "bad_signature": total.bad_signature,
        "replay": total.replay,
        "success": latency_json(&total.success),
        "failure": latency_json(&total.failure),
        "send_lag": latency_json(&total.send_lag),
        "warmup": {
            "sent": warm.sent,
            "completed": warm.completed,
            "expected_success": warm.good_answered,
            "good_ok": warm.good_ok,
            "io_errors": warm.io_errors,
            "statuses": warm.statuses_json(),
        },
        "presign_s": presign_s,
        "presign_ns_per_request": presign_s * 1e9 / (measured + args.warmup).max(1) as f64,
        "generator_cpu_s": cpu_used,
        // Share of the generator's CPUs busy during the measured window. Meaningful in max
        // mode; the open loop spins while waiting for the next due request, so it reads ~100%.
        "generator_cpu_util": if elapsed > 0.0 { cpu_used / (elapsed * cpus.min(threads) as f64) } else { 0.0 },
    });
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
