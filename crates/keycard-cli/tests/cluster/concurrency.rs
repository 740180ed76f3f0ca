//! An account's concurrency limit is one limit across the nodes, and the slots of a node that
//! dies come back when their leases run out.

use std::time::{Duration, Instant};

use crate::harness::{Cluster, ONE_AT_A_TIME, sign, slots_held};

const LEASE_MS: u64 = 1_500;

fn restlet(delay_ms: u32) -> String {
    format!("/app/site/hosting/restlet.nl?script=echo&deploy=1&delay_ms={delay_ms}")
}

/// Sends a held RESTlet call to `node` in the background.
fn hold(
    cluster: &std::sync::Arc<Cluster>,
    node: usize,
    delay_ms: u32,
) -> tokio::task::JoinHandle<u16> {
    let cluster = cluster.clone();
    tokio::spawn(async move {
        let path = restlet(delay_ms);
        let signer = cluster.signer(None);
        let authorization = sign(&signer, "GET", &path);
        cluster.send(node, "GET", &path, &authorization).await.0
    })
}

async fn wait_until_held(cluster: &Cluster, nodes: &[usize], expected: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut held = 0;
        for node in nodes {
            held += slots_held(cluster, *node).await;
        }
        if held == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{held} slots held, {expected} expected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One quick RESTlet call on `node`: (status, body).
async fn quick(cluster: &Cluster, node: usize) -> (u16, String) {
    let path = restlet(0);
    let signer = cluster.signer(None);
    let authorization = sign(&signer, "GET", &path);
    cluster.send(node, "GET", &path, &authorization).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_account_limit_holds_across_nodes_and_a_dead_nodes_slots_come_back() {
    let _one = ONE_AT_A_TIME.lock().await;
    let lease = LEASE_MS.to_string();
    let cluster = std::sync::Arc::new(Cluster::start(&["--slot-lease-ms", &lease]).await);

    // The demo account's limit is 5: take them on nodes 0, 0, 1, 1, 2.
    let holders: Vec<_> = [0, 0, 1, 1, 2]
        .into_iter()
        .map(|node| hold(&cluster, node, 3_000))
        .collect();
    wait_until_held(&cluster, &[0, 1, 2], 5).await;

    // The sixth is refused on every node, in the RESTlet shape; still so past the lease time
    // (the nodes renew the leases of requests that run longer).
    let taken = Instant::now();
    for node in 0..3 {
        let (status, body) = quick(&cluster, node).await;
        assert_eq!(status, 400, "node {node}: {body}");
        assert!(body.contains("SSS_REQUEST_LIMIT_EXCEEDED"), "{body}");
    }
    tokio::time::sleep(Duration::from_millis(LEASE_MS + 300).saturating_sub(taken.elapsed())).await;
    for node in 0..3 {
        let (status, body) = quick(&cluster, node).await;
        assert_eq!(status, 400, "node {node}, past the lease time: {body}");
    }
    for holder in holders {
        assert_eq!(holder.await.unwrap(), 200);
    }
    // The slots came back with the responses.
    wait_until_held(&cluster, &[0, 1, 2], 0).await;
    for node in 0..3 {
        let (status, body) = quick(&cluster, node).await;
        assert_eq!(status, 200, "node {node}: {body}");
    }

    // Node 2 takes all five and dies with them (SIGKILL: nothing is released).
    let holders: Vec<_> = (0..5).map(|_| hold(&cluster, 2, 10_000)).collect();
    wait_until_held(&cluster, &[2], 5).await;
    cluster.nodes[2].kill();
    let killed_at = Instant::now();
    let (status, body) = quick(&cluster, 0).await;
    assert_eq!(
        status, 400,
        "right after the kill the slots are still leased: {body}"
    );
    let back = loop {
        let (status, body) = quick(&cluster, 0).await;
        if status == 200 {
            break killed_at.elapsed();
        }
        assert_eq!(status, 400, "{body}");
        assert!(
            killed_at.elapsed() < Duration::from_millis(LEASE_MS + 2_000),
            "the dead node's slots did not come back"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    eprintln!(
        "a dead node's 5 slots came back {} ms after the kill (lease {LEASE_MS} ms)",
        back.as_millis()
    );
    assert!(back <= Duration::from_millis(LEASE_MS + 500), "{back:?}");
    for holder in holders {
        assert_eq!(holder.await.unwrap(), 0, "the killed node answered");
    }
}
