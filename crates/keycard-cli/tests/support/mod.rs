//! Helpers both test binaries (`cli`, `cluster`) use, included by each with `#[path]`.

use std::process::{Command, Output};

/// Runs `keycard` with `args` and a clean `KEYCARD_*` environment.
pub fn keycard(args: &[&str], env: &[(&str, &str)]) -> Output {
    keycard_command(args, env)
        .output()
        .expect("the keycard binary runs")
}

/// `keycard` with `args` and a clean `KEYCARD_*` environment, not started.
pub fn keycard_command(args: &[&str], env: &[(&str, &str)]) -> Command {
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
    command
}

/// `<input … name="NAME" value="…">`.
pub fn input(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The value of the `<option>` whose label is `label`.
pub fn option(html: &str, label: &str) -> String {
    let end = html
        .find(&format!("\">{label}</option>"))
        .unwrap_or_else(|| panic!("no option {label} in {html}"));
    let start = html[..end].rfind("value=\"").unwrap() + "value=\"".len();
    html[start..end].to_owned()
}
