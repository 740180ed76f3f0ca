//! Scale-out (issue 6): three `keycard serve` nodes on loopback sharing one PostgreSQL
//! directory and one Redis. Replays across nodes, the concurrency limit across nodes and after
//! a node dies, how fast a change on one node reaches the others, the three-step flow across
//! nodes, and Redis / PostgreSQL restarts under load.

mod concurrency;
mod flow;
mod harness;
mod propagation;
mod replay;
mod restarts;

use std::process::{Command, Output};

/// Runs `keycard` with `args` and a clean `KEYCARD_*` environment.
pub fn keycard(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keycard"));
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("KEYCARD_") {
            command.env_remove(name);
        }
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the keycard binary runs")
}
