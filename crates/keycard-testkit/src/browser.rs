//! Chromium for the tests that need a real browser: Debian's Chromium (found through
//! `KEYCARD_TEST_CHROMIUM`, which `scripts/test` sets after `tools/browser/setup.sh`) driven by
//! `tools/browser/authorize.mjs` (puppeteer-core) through keycard's authorize page. The script
//! only reports (each page seen, the final URL, every complaint of the browser); the tests judge.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn chromium() -> String {
    std::env::var("KEYCARD_TEST_CHROMIUM").expect(
        "KEYCARD_TEST_CHROMIUM is not set: run the tests with scripts/test, which installs Chromium and puppeteer-core (tools/browser/setup.sh)",
    )
}

fn script() -> &'static str {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tools/browser/authorize.mjs"
    )
}

fn with_chromium(mut options: Value) -> Value {
    options["chromium"] = json!(chromium());
    options
}

fn parse_report(succeeded: bool, stdout: &str, stderr: &str) -> Value {
    assert!(succeeded, "authorize.mjs failed: {stderr}\n{stdout}");
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Drives the authorize page at `options["url"]` as `options` say (see `authorize.mjs`) and
/// returns the script's report. Blocks until the browser is done: call it from a thread that
/// may block while the server answers on another.
pub fn drive_authorize_page(options: &Value) -> Value {
    let output = Command::new("node")
        .arg(script())
        .arg(with_chromium(options.clone()).to_string())
        .output()
        .expect("node runs");
    parse_report(
        output.status.success(),
        &String::from_utf8_lossy(&output.stdout),
        &String::from_utf8_lossy(&output.stderr),
    )
}

/// A `BROWSER` command (a script in a temporary directory) for a program that opens a URL
/// itself, such as `keycard login`: it drives the authorize page at the URL it is given as
/// `options` say, and leaves the report for [`report`](Self::report).
pub struct BrowserCommand {
    dir: tempfile::TempDir,
}

impl BrowserCommand {
    pub fn new(options: &Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        std::fs::write(
            path.join("options.json"),
            with_chromium(options.clone()).to_string(),
        )
        .unwrap();
        let quoted = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
        // The report is renamed into place only when the script has ended, with its status.
        let body = format!(
            "#!/bin/sh\ncd {dir}\nnode {script} \"$(cat options.json)\" \"$1\" > report.partial 2> stderr.txt\necho $? > status.partial\nmv report.partial report.json\nmv status.partial status\n",
            dir = quoted(path),
            script = quoted(Path::new(script())),
        );
        let command = path.join("browser");
        std::fs::write(&command, body).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&command, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Self { dir }
    }

    /// The value for `BROWSER`.
    pub fn command(&self) -> PathBuf {
        self.dir.path().join("browser")
    }

    /// Whether the command was started at all (it writes its status when it ends).
    pub fn started(&self) -> bool {
        self.dir.path().join("stderr.txt").exists()
    }

    /// Waits up to `limit` for the browser to finish and returns its report.
    pub fn report(&self, limit: Duration) -> Value {
        let path = self.dir.path();
        let started = Instant::now();
        while !path.join("status").exists() {
            assert!(
                started.elapsed() < limit,
                "the BROWSER command did not finish within {limit:?} (started: {})",
                self.started()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let read = |name: &str| std::fs::read_to_string(path.join(name)).unwrap_or_default();
        parse_report(
            read("status").trim() == "0",
            &read("report.json"),
            &read("stderr.txt"),
        )
    }
}
