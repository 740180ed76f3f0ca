//! A change made on one node (or with the admin CLI) reaches every node's credential cache
//! within a second. The directory poll is set to 10 s here, so only change events can explain
//! a faster refusal.

use std::time::{Duration, Instant};

use keycard_client::Signer;

use crate::harness::{Cluster, ONE_AT_A_TIME, sign};

const TRIALS: usize = 100;
const LIMIT: Duration = Duration::from_secs(1);

/// How long after `since` the slowest of `nodes` first answers `want` to a fresh tokeninfo
/// (the nodes are probed in turn, each until it answers `want`).
async fn slowest(
    cluster: &Cluster,
    nodes: &[usize],
    signer: &Signer,
    want: u16,
    since: Instant,
) -> Duration {
    let mut waiting = nodes.to_vec();
    let mut slowest = Duration::ZERO;
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for node in waiting {
            let status = cluster.tokeninfo(node, signer).await;
            if status == want {
                slowest = slowest.max(since.elapsed());
            } else {
                assert!(
                    since.elapsed() < Duration::from_secs(10),
                    "node {node} still answers {status}, not {want}"
                );
                still.push(node);
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    slowest
}

fn report(what: &str, waits: &[Duration]) -> Duration {
    let max = waits.iter().max().copied().unwrap_or_default();
    let mut sorted = waits.to_vec();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    eprintln!(
        "{what}: {} trials, median {:.1} ms, max {:.1} ms",
        waits.len(),
        median.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
    max
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_on_one_node_takes_effect_on_the_others_within_a_second() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = std::sync::Arc::new(Cluster::start(&["--resync-ms", "10000"]).await);
    let integration = cluster.cred("integration");

    // Tokens to revoke, one per trial.
    let mut creators = Vec::new();
    for _ in 0..TRIALS {
        let cluster = cluster.clone();
        let integration = integration.clone();
        creators.push(tokio::task::spawn_blocking(move || {
            let made = cluster.admin(&[
                "token",
                "create",
                "--integration",
                &integration,
                "--user",
                "admin@example.com",
                "--role",
                "Integration Role",
                "--json",
            ]);
            let made: serde_json::Value = serde_json::from_str(&made).unwrap();
            (
                made["token_id"].as_str().unwrap().to_owned(),
                made["token_secret"].as_str().unwrap().to_owned(),
            )
        }));
    }
    let mut tokens = Vec::new();
    for creator in creators {
        tokens.push(creator.await.unwrap());
    }

    // Revocation on node 0 (its /rest/revoketoken), seen on nodes 1 and 2.
    let mut revocations = Vec::new();
    for (id, secret) in &tokens {
        let signer = cluster.signer(Some((id, secret)));
        for node in [1, 2] {
            assert_eq!(
                cluster.tokeninfo(node, &signer).await,
                200,
                "warming node {node}"
            );
        }
        let authorization = sign(&signer, "POST", "/rest/revoketoken");
        let (status, body) = cluster
            .send(0, "POST", "/rest/revoketoken", &authorization)
            .await;
        assert_eq!(status, 200, "{body}");
        let revoked = Instant::now();
        revocations.push(slowest(&cluster, &[1, 2], &signer, 401, revoked).await);
    }
    let revocation = report(
        "revocation on node 0 refused on nodes 1 and 2",
        &revocations,
    );

    // Deactivating the user and blocking the integration with the admin CLI (straight to the
    // directory), seen on all three nodes; undone after each trial.
    let signer = cluster.signer(None);
    let mut deactivations = Vec::new();
    let mut blocks = Vec::new();
    for _ in 0..20 {
        for node in 0..3 {
            assert_eq!(cluster.tokeninfo(node, &signer).await, 200);
        }
        cluster.admin(&["user", "disable", "admin@example.com"]);
        let changed = Instant::now();
        deactivations.push(slowest(&cluster, &[0, 1, 2], &signer, 401, changed).await);
        cluster.admin(&["user", "enable", "admin@example.com"]);
        slowest(&cluster, &[0, 1, 2], &signer, 200, Instant::now()).await;

        cluster.admin(&["integration", "block", &integration]);
        let changed = Instant::now();
        blocks.push(slowest(&cluster, &[0, 1, 2], &signer, 401, changed).await);
        cluster.admin(&["integration", "enable", &integration]);
        slowest(&cluster, &[0, 1, 2], &signer, 200, Instant::now()).await;
    }
    let deactivation = report(
        "user deactivated with the CLI, refused on every node",
        &deactivations,
    );
    let block = report(
        "integration blocked with the CLI, refused on every node",
        &blocks,
    );
    assert!(revocation < LIMIT, "revocation took {revocation:?}");
    assert!(deactivation < LIMIT, "deactivation took {deactivation:?}");
    assert!(block < LIMIT, "blocking took {block:?}");
}
