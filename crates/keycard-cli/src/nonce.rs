//! Nonces and timestamps for requests this binary signs: the one place the CLI draws
//! randomness and reads the clock for signing.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A 20-character alphanumeric nonce (NetSuite's recommended length) from the OS CSPRNG.
pub fn fresh_nonce() -> anyhow::Result<String> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).context("the operating system's random source failed")?;
    // 248 = 4 × 62: rejecting larger bytes keeps every character equally likely.
    let mut nonce = String::with_capacity(20);
    while nonce.len() < 20 {
        for &byte in &bytes {
            if byte < 248 && nonce.len() < 20 {
                nonce.push(char::from(ALPHABET[usize::from(byte % 62)]));
            }
        }
        getrandom::fill(&mut bytes).context("the operating system's random source failed")?;
    }
    Ok(nonce)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> anyhow::Result<u64> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_secs())
}
