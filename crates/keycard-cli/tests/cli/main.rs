//! End-to-end tests of the real `keycard` binary. One test binary; one module per command group.

mod admin;
mod audit;
mod sign;
mod toolkit;

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

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}
