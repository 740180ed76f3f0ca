//! Time and randomness for the [`Client`](crate::Client): the only place this crate reads the
//! clock or draws random bytes. Both are traits so tests can fix them.

use std::time::{SystemTime, UNIX_EPOCH};

/// A source of Unix time in seconds (for `oauth_timestamp`).
pub trait Clock: Send + Sync {
    fn unix_now(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_now(&self) -> u64 {
        // A clock before 1970 signs timestamp 0, which the server then refuses with a clear
        // Detail code (InvalidTimestamp), rather than failing here.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// Nonces and jitter.
pub trait Randomness: Send + Sync {
    /// A fresh `oauth_nonce` (NetSuite accepts 6 to 64 characters; 20 is its recommendation).
    fn nonce(&self) -> String;
    /// A uniformly random number, for backoff jitter.
    fn next_u32(&self) -> u32;
}

/// The operating system's CSPRNG.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Randomness for OsRandom {
    fn nonce(&self) -> String {
        let mut nonce = String::with_capacity(20);
        let mut bytes = [0u8; 32];
        while nonce.len() < 20 {
            // Without an OS generator nothing secure can be signed; a failure here is not
            // recoverable and would otherwise produce a predictable nonce.
            getrandom::fill(&mut bytes).expect("the operating system's random source failed");
            // 248 = 4 × 62: rejecting larger bytes keeps every character equally likely.
            for &byte in &bytes {
                if byte < 248 && nonce.len() < 20 {
                    nonce.push(char::from(ALPHABET[usize::from(byte % 62)]));
                }
            }
        }
        nonce
    }

    fn next_u32(&self) -> u32 {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        u32::from_le_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_twenty_alphanumerics_and_differ() {
        let (a, b) = (OsRandom.nonce(), OsRandom.nonce());
        assert_eq!(a.len(), 20);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
