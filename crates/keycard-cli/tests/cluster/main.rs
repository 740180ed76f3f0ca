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

#[path = "../support/mod.rs"]
mod support;

pub use support::{input, keycard, option};
