//! `keycard keys rotate`: a new master key, and every secret re-sealed under it.

use std::io::Write;

use anyhow::{Context, Result};
use clap::Subcommand;
use keycard_store::KeySource;
use keycard_store::crypto::MasterKey;

use super::{StoreArgs, actor};

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Generate a new master key (key file) or use the newest one in KEYCARD_MASTER_KEY, and
    /// re-seal every secret under it.
    Rotate,
}

pub async fn run(command: KeysCommand, store_args: &StoreArgs) -> Result<()> {
    let KeysCommand::Rotate = command;
    let (ring, source) = store_args.keys()?;
    // One rotation at a time on a key file, from loading it to its last save: two at once
    // could each save the ring they loaded, and the second save could drop the key the first
    // had re-sealed every secret under.
    let _rotating = match &source {
        KeySource::File(path) | KeySource::Generated(path) => Some(lock_beside(path)?),
        KeySource::Env => None,
    };
    // Loaded again under the lock (what an earlier rotation left), unless it was generated
    // just now: that must stay known as generated, for the foreign-directory check below.
    let (mut ring, source) = if matches!(source, KeySource::Generated(_)) {
        (ring, source)
    } else {
        store_args.keys()?
    };
    let store = store_args.open_with(ring.clone()).await?;
    super::refuse_a_foreign_directory(&store, &source).await?;
    if matches!(source, KeySource::Env) {
        eprintln!(
            "keys come from KEYCARD_MASTER_KEY: re-sealing under its last key ({})",
            ring.current_id()
        );
    } else {
        ring.push(MasterKey::generate()?);
        // Save both keys first: if anything stops midway, every secret stays readable.
        ring.save(&source)
            .context("cannot save the new master key")?;
    }
    let total = store.sealed_secret_count().await?;
    let mut stderr = std::io::stderr();
    let done = store
        .rotate_keys(&actor(), ring.clone(), |n| {
            let width = 30usize;
            let filled =
                usize::try_from(n.saturating_mul(width as u64) / total.max(1)).unwrap_or(width);
            let _ = write!(
                stderr,
                "\rre-sealing [{}{}] {n}/{total}",
                "#".repeat(filled),
                " ".repeat(width.saturating_sub(filled))
            );
        })
        .await?;
    eprintln!();
    if matches!(source, KeySource::Env) {
        println!(
            "Re-sealed {done} secrets under key {}. You may now remove older keys from KEYCARD_MASTER_KEY.",
            ring.current_id()
        );
    } else {
        ring.retain_only_current();
        ring.save(&source)
            .context("cannot save the master key file")?;
        println!(
            "Re-sealed {done} secrets under the new master key {}; older keys were removed from the key file.",
            ring.current_id()
        );
    }
    Ok(())
}

/// An exclusive lock on `<key file>.lock`, held until the file is dropped.
fn lock_beside(key_file: &std::path::Path) -> Result<std::fs::File> {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".lock");
    crate::lockfile::exclusive(std::path::Path::new(&name))
}
