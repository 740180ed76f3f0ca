//! Time per `NonceStore::consume` as one time bucket fills (the load benchmark signs every
//! request of a run with one timestamp, so all its entries land in one bucket), by quarter of
//! each fill: the later quarters show what a table larger than the cache costs.
//!
//! `cargo run --release -p keycard-server --example nonce_consume -- 8000 600000 3000000`
//! (pin it, e.g. `taskset -c 0`: the figures are wall-clock nanoseconds).

use std::time::Instant;

use keycard_server::shared::nonce::NonceStore;

fn main() {
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.parse().ok())
        .collect();
    // 64 hex characters, like NetSuite token ids.
    let tokens: Vec<String> = (0..10_000).map(|i| format!("{i:064x}")).collect();
    for total in sizes {
        let store = NonceStore::new(300);
        let nonces: Vec<String> = (0..total).map(|i| format!("n{i:020}")).collect();
        let quarter = (total / 4).max(1);
        let mut started = Instant::now();
        let mut quarters = Vec::new();
        for (i, nonce) in (0..total).zip(&nonces) {
            let token = &tokens[i as usize % tokens.len()];
            assert!(store.consume(token, nonce, 1_000_000, 1_000_000));
            if (i + 1) % quarter == 0 {
                let nanos = started.elapsed().as_nanos() / u128::from(quarter);
                quarters.push(nanos.to_string());
                started = Instant::now();
            }
        }
        println!(
            "{total:>9} entries: ns per consume by quarter {}",
            quarters.join(" ")
        );
    }
}
