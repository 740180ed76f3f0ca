//! End-to-end tests of the real `keycard` binary. One test binary; one module per command group.

mod admin;
mod audit;
mod sign;
mod toolkit;

use std::io::{BufRead, BufReader};
#[path = "../support/mod.rs"]
mod support;

use std::process::{Child, Command, Output, Stdio};

pub use support::{input, keycard, keycard_command, option};

/// Runs `command` with a terminal (a pseudo-terminal) as its standard input, on which
/// `typed` was typed; standard output and error are captured as usual.
pub fn at_terminal(mut command: Command, typed: &str) -> Output {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("a pseudo-terminal");
    grantpt(&controller).unwrap();
    unlockpt(&controller).unwrap();
    let name = ptsname(&controller, Vec::new()).unwrap();
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    // Typed ahead: the terminal keeps the line until the command reads it.
    rustix::io::write(&controller, typed.as_bytes()).unwrap();
    let output = command
        .stdin(Stdio::from(terminal))
        .output()
        .expect("the command runs");
    drop(controller);
    output
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

/// A `keycard serve` process on a free port; killed when dropped.
pub struct Served {
    child: Child,
    pub port: u16,
    logs: Option<std::thread::JoinHandle<Vec<String>>>,
}

/// Starts `keycard serve` on the SQLite directory in `data_dir` (JSON logs) and waits for its
/// "serving on" line.
pub fn serve(data_dir: &str, extra: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keycard"))
        .args(["serve", "--data-dir", data_dir, "--listen", "127.0.0.1:0"])
        .args(["--log-format", "json"])
        .args(extra)
        .env_remove("KEYCARD_DATABASE_URL")
        .env_remove("KEYCARD_REDIS_URL")
        .stderr(Stdio::piped())
        .spawn()
        .expect("the keycard binary runs");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
    let line = lines.next().and_then(Result::ok).unwrap_or_default();
    let port = line
        .split("://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no address in `{line}`"));
    // Keep draining stderr so the server never blocks on a full pipe.
    let logs = std::thread::spawn(move || lines.map_while(Result::ok).collect());
    Served {
        child,
        port,
        logs: Some(logs),
    }
}

impl Served {
    /// Stops it the way an operator does (SIGTERM), checks it exits cleanly, returns its log.
    pub fn stop(mut self) -> Vec<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        assert!(self.child.wait().expect("the server is a child").success());
        self.logs
            .take()
            .map(|logs| logs.join().expect("the log reader ends"))
            .unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
