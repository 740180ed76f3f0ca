//! A request accepted by one node is a replay on every other one.

use crate::harness::{Cluster, ONE_AT_A_TIME, sign};

const PATH: &str = "/rest/tokeninfo";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_accepted_by_one_node_is_refused_as_a_replay_by_the_others() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(&[]).await;
    let signer = cluster.signer(None);
    let mut replays_accepted = 0;
    let mut tries = 0;

    // One after another: accepted on node i % 3, then sent again to the two others.
    for i in 0..400 {
        let authorization = sign(&signer, "GET", PATH);
        let first = i % 3;
        let (status, body) = cluster.send(first, "GET", PATH, &authorization).await;
        assert_eq!(status, 200, "a fresh request on node {first}: {body}");
        for other in (0..3).filter(|n| *n != first) {
            let (status, body) = cluster.send(other, "GET", PATH, &authorization).await;
            tries += 1;
            if status == 200 {
                replays_accepted += 1;
            }
            assert_eq!(status, 401, "a replay on node {other}: {body}");
            assert!(body.contains("INVALID_LOGIN_ATTEMPT"), "{body}");
        }
    }

    // At the same moment: the same request to all three nodes at once; exactly one accepts.
    for _ in 0..400 {
        let authorization = sign(&signer, "GET", PATH);
        let (a, b, c) = tokio::join!(
            cluster.send(0, "GET", PATH, &authorization),
            cluster.send(1, "GET", PATH, &authorization),
            cluster.send(2, "GET", PATH, &authorization),
        );
        let statuses = [a.0, b.0, c.0];
        let accepted = statuses.iter().filter(|s| **s == 200).count();
        tries += 2;
        replays_accepted += accepted.saturating_sub(1);
        assert_eq!(accepted, 1, "statuses {statuses:?}");
        assert_eq!(
            statuses.iter().filter(|s| **s == 401).count(),
            2,
            "{statuses:?}"
        );
    }
    eprintln!("replays accepted: {replays_accepted} of {tries} tries");
    assert_eq!(replays_accepted, 0);
    assert!(tries >= 1_000);

    // The refusals are in the shared audit trail as NetSuite's nonce_used.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let listed = cluster.admin(&[
            "audit",
            "list",
            "--detail",
            "nonce_used",
            "--limit",
            "5000",
            "--json",
        ]);
        let records: serde_json::Value = serde_json::from_str(&listed).unwrap();
        let count = records.as_array().map_or(0, Vec::len);
        if count == tries {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{count} nonce_used records, {tries} expected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // Each node took its own number from the fresh directory at startup, and its request ids
    // start with it: no two processes sharing the trail issue the same id.
    let mut prefixes = Vec::new();
    for node in 0..3 {
        let authorization = sign(&signer, "GET", PATH);
        let (status, _, id) = cluster.send_full(node, "GET", PATH, &authorization).await;
        assert_eq!(status, 200);
        let id = id.expect("every answer carries x-request-id");
        prefixes.push(u32::from_str_radix(&id[..6], 16).unwrap());
    }
    prefixes.sort_unstable();
    assert_eq!(prefixes, [1, 2, 3], "the nodes' request-id prefixes");
}
