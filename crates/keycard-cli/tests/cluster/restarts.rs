//! Redis and PostgreSQL restarted under load: no replay is accepted, no attempt a node
//! answered is missing from the audit trail, and the nodes recover without a restart.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{Cluster, ONE_AT_A_TIME, sign};

const PATH: &str = "/rest/tokeninfo";
const WORKERS: usize = 6;

/// What the load saw, per phase.
#[derive(Default)]
struct Seen {
    /// Phase → status → count.
    statuses: Mutex<HashMap<&'static str, HashMap<u16, u64>>>,
    /// Request ids of every answer.
    answered: Mutex<HashSet<String>>,
    /// Recently accepted Authorization headers, replayed by the workers.
    accepted: Mutex<Vec<String>>,
    replays_sent: AtomicU64,
    replays_accepted: AtomicU64,
    /// Per node: the last time it accepted a fresh request.
    last_accepted: Mutex<[Option<Instant>; 3]>,
}

struct Load {
    cluster: Arc<Cluster>,
    seen: Arc<Seen>,
    phase: Arc<Mutex<&'static str>>,
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(cluster: Arc<Cluster>) -> Self {
        let seen = Arc::new(Seen::default());
        let phase = Arc::new(Mutex::new("before"));
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..WORKERS)
            .map(|worker| {
                let (cluster, seen, phase, stop) =
                    (cluster.clone(), seen.clone(), phase.clone(), stop.clone());
                tokio::spawn(async move {
                    let signer = cluster.signer(None);
                    let mut turn = worker;
                    while !stop.load(Ordering::Relaxed) {
                        turn += 1;
                        let node = turn % 3;
                        let authorization = sign(&signer, "GET", PATH);
                        // The phase when the request left: one sent before an outage began
                        // may still be answered after it.
                        let sent_in = *phase.lock().unwrap();
                        let (status, body, id) =
                            cluster.send_full(node, "GET", PATH, &authorization).await;
                        seen.note(sent_in, status, id);
                        assert!(
                            status != 0 && status != 500,
                            "node {node} answered {status}: {body}"
                        );
                        if status == 200 {
                            seen.last_accepted.lock().unwrap()[node] = Some(Instant::now());
                            let mut accepted = seen.accepted.lock().unwrap();
                            accepted.push(authorization);
                            if accepted.len() > 2_000 {
                                accepted.drain(..1_000);
                            }
                        }
                        // Replay something accepted earlier to another node.
                        let replay = {
                            let accepted = seen.accepted.lock().unwrap();
                            (!accepted.is_empty())
                                .then(|| accepted[(turn * 7919) % accepted.len()].clone())
                        };
                        if let Some(replay) = replay {
                            let sent_in = *phase.lock().unwrap();
                            let (status, body, id) = cluster
                                .send_full((node + 1) % 3, "GET", PATH, &replay)
                                .await;
                            seen.note(sent_in, status, id);
                            seen.replays_sent.fetch_add(1, Ordering::Relaxed);
                            assert!(status != 0 && status != 500, "{status}: {body}");
                            if status == 200 {
                                seen.replays_accepted.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                })
            })
            .collect();
        Self {
            cluster,
            seen,
            phase,
            stop,
            workers,
        }
    }

    fn enter(&self, phase: &'static str) -> Instant {
        *self.phase.lock().unwrap() = phase;
        Instant::now()
    }

    /// Waits until every node accepted a fresh request after `since`.
    async fn until_every_node_accepts(&self, since: Instant, limit: Duration) -> Duration {
        loop {
            let all = self
                .seen
                .last_accepted
                .lock()
                .unwrap()
                .iter()
                .all(|at| at.is_some_and(|at| at > since));
            if all {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < limit,
                "the nodes did not recover within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) -> (Arc<Cluster>, Arc<Seen>) {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            worker.await.unwrap();
        }
        (self.cluster, self.seen)
    }
}

impl Seen {
    fn note(&self, phase: &'static str, status: u16, id: Option<String>) {
        *self
            .statuses
            .lock()
            .unwrap()
            .entry(phase)
            .or_default()
            .entry(status)
            .or_default() += 1;
        if let Some(id) = id {
            self.answered.lock().unwrap().insert(id);
        }
    }

    fn count(&self, phase: &str, status: u16) -> u64 {
        self.statuses
            .lock()
            .unwrap()
            .get(phase)
            .and_then(|s| s.get(&status))
            .copied()
            .unwrap_or(0)
    }

    fn report(&self, what: &str) {
        eprintln!(
            "{what}: statuses by phase {:?}; {} replays sent, {} accepted",
            self.statuses.lock().unwrap(),
            self.replays_sent.load(Ordering::Relaxed),
            self.replays_accepted.load(Ordering::Relaxed)
        );
    }
}

/// Every answered request id is in the shared audit trail (the writers catch up after an
/// outage, so this waits a little).
async fn every_answer_is_audited(cluster: &Cluster, seen: &Seen) {
    let answered = seen.answered.lock().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let export = cluster.admin(&["audit", "export"]);
        let stored: HashSet<String> = export
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|record| record["request_id"].as_str().map(str::to_owned))
            .collect();
        let missing = answered.difference(&stored).count();
        if missing == 0 {
            eprintln!(
                "all {} answered attempts are in the audit trail",
                answered.len()
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} answered attempts are missing from the audit trail",
            answered.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restarted_under_load_accepts_no_replay_and_the_nodes_recover() {
    let _one = ONE_AT_A_TIME.lock().await;
    // A short window: after Redis comes back empty, logins are held for one window.
    let cluster = Arc::new(Cluster::start(&["--timestamp-window", "3"]).await);
    let redis = &cluster.redis;
    let load = Load::start(cluster.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The outage begins once the server is dead: requests sent from then on are judged.
    redis.kill();
    load.enter("outage");
    let ready = readyz(&cluster, 1).await;
    assert_eq!(ready.0, 503, "{}", ready.1);
    assert!(ready.1.contains("Redis"), "{}", ready.1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.restart();
    let back = load.enter("after");
    let recovered = load
        .until_every_node_accepts(back, Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (cluster, seen) = load.stop().await;
    seen.report("redis restart");
    eprintln!(
        "every node accepted again {} ms after Redis came back (window 3 s)",
        recovered.as_millis()
    );

    assert_eq!(
        seen.replays_accepted.load(Ordering::Relaxed),
        0,
        "a replay was accepted"
    );
    assert!(seen.count("before", 200) > 0);
    assert_eq!(
        seen.count("outage", 200),
        0,
        "accepted while Redis was down"
    );
    assert!(seen.count("outage", 503) > 0, "no 503 while Redis was down");
    assert!(seen.count("after", 200) > 0);
    assert_eq!(readyz(&cluster, 1).await.0, 200);
    every_answer_is_audited(&cluster, &seen).await;
}

/// `/readyz` of a node: (status, body).
async fn readyz(cluster: &Cluster, node: usize) -> (u16, String) {
    let url = format!("http://127.0.0.1:{}/readyz", cluster.nodes[node].port);
    let response = cluster.http.get(url).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarted_under_load_loses_no_audit_record_and_the_nodes_recover() {
    let _one = ONE_AT_A_TIME.lock().await;
    let services = std::env::var("KEYCARD_TEST_SERVICES_SH").expect(
        "KEYCARD_TEST_SERVICES_SH is not set: run the tests with scripts/test, which starts a throwaway PostgreSQL",
    );
    // A 2 s grace: cached credentials verify for 2 s of outage, then logins are refused.
    let cluster = Arc::new(Cluster::start(&["--directory-grace-secs", "2"]).await);
    let load = Load::start(cluster.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;

    let stop = std::process::Command::new("bash")
        .args([&services, "pg-stop"])
        .status()
        .unwrap();
    assert!(stop.success());
    let stopped = load.enter("outage");
    tokio::time::sleep(Duration::from_secs(3)).await;
    load.enter("past grace");
    let ready = readyz(&cluster, 0).await;
    assert_eq!(ready.0, 503, "{}", ready.1);
    assert!(ready.1.contains("directory"), "{}", ready.1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Requests sent while it starts again may meet either state: not judged.
    load.enter("restarting");
    eprintln!("PostgreSQL down for {} ms", stopped.elapsed().as_millis());
    let start = std::process::Command::new("bash")
        .args([&services, "pg-start"])
        .status()
        .unwrap();
    assert!(start.success());
    let back = load.enter("after");
    load.until_every_node_accepts(back, Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (cluster, seen) = load.stop().await;
    seen.report("postgres restart");

    assert_eq!(
        seen.replays_accepted.load(Ordering::Relaxed),
        0,
        "a replay was accepted"
    );
    // Cached credentials kept verifying while the directory was away, for the grace period.
    assert!(
        seen.count("outage", 200) > 0,
        "nothing accepted while PostgreSQL was down"
    );
    assert_eq!(seen.count("past grace", 200), 0, "accepted past the grace");
    assert!(seen.count("past grace", 503) > 0, "no 503 past the grace");
    assert_eq!(readyz(&cluster, 0).await.0, 200);
    assert!(seen.count("after", 200) > 0);
    every_answer_is_audited(&cluster, &seen).await;
}
