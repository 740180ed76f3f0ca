//! The administration commands, end to end against the real binary and a fresh data directory.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::{at_terminal, keycard, keycard_command, stderr, stdout};

struct Directory {
    dir: tempfile::TempDir,
}

impl Directory {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        keycard(&self.args(args), &[("USER", "tester")])
    }

    /// `args` with the data directory (global flags go after the subcommand path for clap).
    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut ordered = args.to_vec();
        ordered.extend(["--data-dir", self.dir.path().to_str().unwrap()]);
        ordered
    }

    /// Runs a command at a terminal where `typed` was typed.
    fn at_terminal(&self, args: &[&str], typed: &str) -> std::process::Output {
        at_terminal(
            keycard_command(&self.args(args), &[("USER", "tester")]),
            typed,
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "keycard {args:?} failed: {}",
            stderr(&output)
        );
        stdout(&output)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        serde_json::from_str(&self.ok(&with_json)).unwrap()
    }

    /// Runs a command that must fail; returns its message.
    fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            !output.status.success(),
            "keycard {args:?} should have failed: {}",
            stdout(&output)
        );
        let message = stderr(&output);
        assert!(!message.contains("panicked"), "{message}");
        message
    }
}

#[test]
fn init_prints_four_credentials_once_and_records_them_sealed() {
    let d = Directory::new();
    let out = d.json(&["init"]);
    for field in [
        "consumer_key",
        "consumer_secret",
        "token_id",
        "token_secret",
    ] {
        let value = out[field].as_str().unwrap();
        assert_eq!(value.len(), 64, "{field}");
    }
    assert_eq!(out["account"], "1234567");
    // The key file was generated with 0600 and the database holds no secret.
    let key_file = d.dir.path().join("master.key");
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mut db = std::fs::read(d.dir.path().join("keycard.db")).unwrap();
    db.extend(std::fs::read(d.dir.path().join("keycard.db-wal")).unwrap_or_default());
    // The demo administrator's password, shown once too (stored only as an argon2 hash).
    assert_eq!(out["password"].as_str().unwrap().len(), 24);
    for field in ["consumer_secret", "token_secret", "password"] {
        let secret = out[field].as_str().unwrap().as_bytes();
        assert!(
            !db.windows(secret.len()).any(|w| w == secret),
            "{field} is readable in the database file"
        );
    }
    // Secrets never come back out.
    let shown = d.ok(&["token", "show", out["token_id"].as_str().unwrap()]);
    assert!(!shown.contains(out["token_secret"].as_str().unwrap()));
    let listed = d.ok(&["integration", "show", "Demo Integration"]);
    assert!(!listed.contains(out["consumer_secret"].as_str().unwrap()));
    assert!(d.fails(&["init"]).contains("already exists"));
}

/// At a terminal, what cannot be undone is asked first (the question says what it will
/// revoke), and anything but "y"/"yes" changes nothing; `--yes` skips the question. Scripts,
/// whose standard input is no terminal, are not asked (every other test here).
#[test]
fn deleting_revoking_and_new_credentials_ask_first_at_a_terminal() {
    let d = Directory::new();
    let out = d.json(&["init"]);
    let token_id = out["token_id"].as_str().unwrap();
    let state = || d.json(&["token", "show", token_id])["state"]["state"].clone();

    let no = d.at_terminal(&["integration", "delete", "Demo Integration"], "n\n");
    assert!(!no.status.success());
    let asked = stderr(&no);
    assert!(
        asked.contains("Delete integration `Demo Integration` (id 1) and revoke its 1 token?")
            && asked.contains("[y/N]")
            && asked.contains("nothing was changed"),
        "{asked}"
    );
    assert_eq!(state(), "active");
    let empty = d.at_terminal(
        &["integration", "reset-credentials", "Demo Integration"],
        "\n",
    );
    assert!(!empty.status.success(), "{}", stderr(&empty));
    assert_eq!(
        d.json(&["integration", "show", "Demo Integration"])["consumer_key"],
        out["consumer_key"]
    );

    let yes = d.at_terminal(&["token", "revoke", token_id], "y\n");
    assert!(yes.status.success(), "{}", stderr(&yes));
    assert!(stderr(&yes).contains("Revoke token `"), "{}", stderr(&yes));
    assert_eq!(state(), "revoked");
    let user = d.at_terminal(&["user", "delete", "admin@example.com"], "yes\n");
    assert!(
        user.status.success() && stderr(&user).contains("revoke their 0 tokens?"),
        "{}",
        stderr(&user)
    );
    let skipped = d.at_terminal(&["integration", "delete", "Demo Integration", "--yes"], "");
    assert!(skipped.status.success(), "{}", stderr(&skipped));
    assert!(!stderr(&skipped).contains("[y/N]"), "{}", stderr(&skipped));
    assert!(stdout(&skipped).contains("Deleted integration"));
}

// A whole administrator session, in order: long by nature.
#[allow(clippy::too_many_lines)]
#[test]
fn a_whole_setup_from_the_command_line() {
    let d = Directory::new();
    assert!(
        d.fails(&["account", "create", "12-34", "--name", "X"])
            .contains("is not a NetSuite account id")
    );
    assert!(
        d.fails(&["integration", "list"])
            .contains("there is no account yet")
    );
    let account = d.json(&[
        "account",
        "create",
        "1234567_sb1",
        "--name",
        "Acme Sandbox",
        "--licenses",
        "1",
    ]);
    assert_eq!(account["id"], "1234567_SB1");
    assert!(
        d.ok(&["account", "show", "1234567_SB1"])
            .contains("Concurrency limit:     15")
    );

    let integration = d.json(&[
        "integration",
        "create",
        "Order Sync",
        "--concurrency-limit",
        "4",
    ]);
    assert_eq!(integration["consumer_key"].as_str().unwrap().len(), 64);
    assert!(
        d.fails(&["integration", "create", "Order Sync"])
            .contains("already exists")
    );
    let message = d.fails(&[
        "integration",
        "update",
        "Order Sync",
        "--concurrency-limit",
        "15",
    ]);
    assert!(
        message.contains("above this integration's maximum of 14"),
        "{message}"
    );

    d.ok(&["role", "create", "Reader", "--record", "customer=view"]);
    d.ok(&[
        "role",
        "create",
        "Integrator",
        "--setup",
        "log-in-using-access-tokens",
        "--setup",
        "rest-web-services",
        "--record",
        "customer=edit",
    ]);
    assert!(
        d.fails(&["role", "create", "Bad", "--record", "customer=admin"])
            .contains("not a permission level")
    );
    // IP ranges: `any` beside ranges, and bits past a prefix, would each open the role wider
    // than written (both were accepted before).
    for (args, message) in [
        (
            ["--allow-ip", "10.0.0.0/8", "--allow-ip", "any"],
            "give it alone",
        ),
        (
            ["--allow-ip", "10.1.2.3/8", "--allow-ip", "192.0.2.0/24"],
            "would allow all of 10.0.0.0/8",
        ),
    ] {
        let mut grant = vec!["role", "grant", "Reader"];
        grant.extend_from_slice(&args);
        let refused = d.fails(&grant);
        assert!(refused.contains(message), "{args:?}: {refused}");
    }
    let output = keycard(
        &[
            "user",
            "create",
            "sync@example.com",
            "--name",
            "Sync User",
            "--role",
            "Reader",
            "--role",
            "Integrator",
            "--data-dir",
            d.dir.path().to_str().unwrap(),
        ],
        &[("KEYCARD_USER_PASSWORD", "a long password")],
    );
    assert!(output.status.success(), "{}", stderr(&output));

    // A role without "Log in using Access Tokens": refused, with the fix, and nothing written.
    let message = d.fails(&[
        "token",
        "create",
        "--integration",
        "Order Sync",
        "--user",
        "sync@example.com",
        "--role",
        "Reader",
    ]);
    assert!(
        message.contains(r#"keycard role grant "Reader" --setup log-in-using-access-tokens"#),
        "{message}"
    );
    // Said once (the rule's message was printed twice, as the error and as its source).
    assert_eq!(
        message.matches("lacks the permission").count(),
        1,
        "{message}"
    );
    assert_eq!(d.json(&["token", "list"]), serde_json::json!([]));

    let created = d.json(&[
        "token",
        "create",
        "--integration",
        "Order Sync",
        "--user",
        "sync@example.com",
        "--role",
        "Integrator",
    ]);
    let token_id = created["token_id"].as_str().unwrap().to_owned();
    assert_eq!(created["token"]["name"], "Order Sync Sync User Integrator");
    let inventory = d.ok(&["token", "inventory"]);
    assert!(
        inventory.contains(&format!("…{}", &token_id[60..])),
        "{inventory}"
    );
    assert!(
        inventory.contains("sync@example.com") && inventory.contains("never"),
        "{inventory}"
    );

    d.ok(&["token", "deactivate", &token_id]);
    assert_eq!(
        d.json(&["token", "show", &token_id])["state"]["state"],
        "inactive"
    );
    d.ok(&["token", "activate", &token_id]);
    d.ok(&["integration", "block", "Order Sync"]);
    assert!(
        d.fails(&[
            "token",
            "create",
            "--integration",
            "Order Sync",
            "--user",
            "sync@example.com",
            "--role",
            "Integrator"
        ])
        .contains("Blocked")
    );
    d.ok(&["integration", "enable", "Order Sync"]);
    let reset = d.json(&["integration", "reset-credentials", "Order Sync"]);
    assert_ne!(reset["consumer_key"], integration["consumer_key"]);
    d.ok(&["token", "revoke", &token_id]);
    assert!(
        d.fails(&["token", "activate", &token_id])
            .contains("revoked")
    );
    d.ok(&["user", "remove-role", "sync@example.com", "Reader"]);
    assert!(
        d.fails(&["role", "delete", "Integrator"])
            .contains("in use")
    );
    d.ok(&["role", "delete", "Reader"]);
    d.ok(&["user", "delete", "sync@example.com"]);
    assert_eq!(d.json(&["token", "list"]), serde_json::json!([]));
    assert!(
        d.fails(&["user", "show", "nobody@example.com"])
            .contains("was not found")
    );

    // Two accounts: commands must then say which.
    d.ok(&["account", "create", "7654321", "--name", "Other"]);
    assert!(
        d.fails(&["role", "list"])
            .contains("say which with --account")
    );
    assert!(
        d.ok(&["role", "list", "--account", "7654321"])
            .contains("(none)")
    );
}

#[test]
fn rotating_the_master_key_reseals_and_replaces_it() {
    let d = Directory::new();
    d.json(&["init"]);
    let key_file = d.dir.path().join("master.key");
    let before = std::fs::read_to_string(&key_file).unwrap();
    let out = d.ok(&["keys", "rotate"]);
    assert!(out.contains("Re-sealed 2 secrets"), "{out}");
    let after = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(before, after);
    let key_lines = |text: &str| {
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count()
    };
    assert_eq!(key_lines(&after), 1);
    // Everything still opens and the admin trail recorded it.
    assert!(d.ok(&["token", "inventory"]).contains("Demo Integration"));
    assert!(d.ok(&["keys", "rotate"]).contains("Re-sealed 2 secrets"));

    // Rotations at once take turns on the key file: each saved the ring it had loaded, and a
    // late save could drop the key an earlier rotation had re-sealed everything under.
    std::thread::scope(|scope| {
        let rotations: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| d.ok(&["keys", "rotate"])))
            .collect();
        for rotation in rotations {
            assert!(rotation.join().unwrap().contains("Re-sealed 2 secrets"));
        }
    });
    assert_eq!(key_lines(&std::fs::read_to_string(&key_file).unwrap()), 1);
    assert!(
        d.ok(&["keys", "rotate"]).contains("Re-sealed 2 secrets"),
        "every secret opens"
    );
}

#[test]
fn a_command_without_the_directorys_key_is_refused_and_leaves_no_key_behind() {
    let d = Directory::new();
    d.json(&["init"]);
    let key_file = d.dir.path().join("master.key");
    let key = std::fs::read(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    // Without it a fresh key would be generated, and a token sealed under it would be
    // unreadable by every server holding the directory's key.
    for command in [
        &["token", "list"][..],
        &[
            "token",
            "create",
            "--integration",
            "Demo Integration",
            "--user",
            "1",
            "--role",
            "Administrator",
        ],
        &["keys", "rotate"],
    ] {
        let message = d.fails(command);
        assert!(
            message.contains("sealed under a master key"),
            "{command:?}: {message}"
        );
        assert!(
            !key_file.exists(),
            "{command:?} left the generated key behind"
        );
    }
    std::fs::write(&key_file, key).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(d.ok(&["token", "list"]).contains("Demo Integration"));
    // A fresh directory still gets its key on first use.
    let fresh = Directory::new();
    fresh.json(&["init"]);
    assert!(fresh.dir.path().join("master.key").exists());
}

#[test]
fn reading_commands_refuse_a_directory_that_does_not_exist() {
    let d = Directory::new();
    let missing = d.dir.path().join("typo");
    for command in [
        &["audit", "list"][..],
        &["audit", "show", "0123456789abcdef"],
        &["audit", "export"],
        &["token", "list"],
        &["account", "list"],
        &["integration", "list"],
        &["role", "list"],
        &["user", "list"],
    ] {
        let mut args = command.to_vec();
        args.extend_from_slice(&["--data-dir", missing.to_str().unwrap()]);
        let output = keycard(&args, &[("USER", "tester")]);
        assert!(!output.status.success(), "{command:?} succeeded");
        let message = stderr(&output);
        assert!(
            message.contains("there is no keycard directory at")
                && message.contains("keycard init"),
            "{command:?}: {message}"
        );
        assert!(
            !missing.exists(),
            "{command:?} created {}",
            missing.display()
        );
    }
    // Commands that write still create a directory on first use.
    d.ok(&["account", "create", "7654321", "--name", "Other"]);
    assert!(d.ok(&["account", "list"]).contains("7654321"));
}

#[test]
fn the_same_commands_work_on_postgresql() {
    let admin_url = std::env::var("KEYCARD_TEST_DATABASE_URL")
        .expect("KEYCARD_TEST_DATABASE_URL is not set: run the tests with scripts/test, which starts a throwaway PostgreSQL");
    let name = format!("kc_cli_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        let done = std::process::Command::new("psql")
            .args([admin_url.as_str(), "-qc", &sql])
            .output()
            .unwrap();
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
    }
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    let d = Directory::new();
    let out = d.json(&["init", "--database-url", &url]);
    let token_id = out["token_id"].as_str().unwrap();
    let inventory = d.ok(&["token", "inventory", "--database-url", &url]);
    assert!(inventory.contains(&token_id[60..]), "{inventory}");
    // The embedded directory in the data dir was not used.
    assert!(!d.dir.path().join("keycard.db").exists());
}
