//! Asking before a change that cannot be undone (a deletion, a revocation, new credentials).

use std::io::{IsTerminal as _, Write as _};

use anyhow::{Context as _, Result, bail};

/// Whether to ask: a person is at the terminal (standard input is one) and did not pass
/// `--yes`. Scripts are not asked: their author chose the command when writing it.
pub fn wanted(yes: bool) -> bool {
    !yes && std::io::stdin().is_terminal()
}

/// Asks `question` on standard error; `Ok` on "y" or "yes", an error saying nothing changed
/// on anything else (an empty line, end of input).
pub fn ask(question: &str) -> Result<()> {
    let mut err = std::io::stderr().lock();
    write!(err, "{question} [y/N] ")
        .and_then(|()| err.flush())
        .context("cannot write the question")?;
    drop(err);
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        bail!("not confirmed: nothing was changed (pass --yes to skip the question)")
    }
}

/// `--yes`, for a command that asks before it changes something for good.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct Yes {
    /// Do not ask for confirmation (asked only when standard input is a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
}

impl Yes {
    /// See [`wanted`].
    pub fn wanted(self) -> bool {
        wanted(self.yes)
    }
}

/// "1 token", "3 tokens": the tokens a change revokes.
pub fn tokens(count: usize) -> String {
    if count == 1 {
        "1 token".to_owned()
    } else {
        format!("{count} tokens")
    }
}

/// How many of `tokens` are not revoked yet and satisfy `mine`.
pub fn live_tokens(
    tokens: &[keycard_core::AccessToken],
    mine: impl Fn(&keycard_core::AccessToken) -> bool,
) -> usize {
    tokens
        .iter()
        .filter(|t| !matches!(t.state, keycard_core::TokenState::Revoked { .. }) && mine(t))
        .count()
}
