//! The request rules that need no storage: timestamp window, nonce length, version. Pure
//! functions; the caller passes `now`.

use crate::OAuthError;

/// Limits a verifier applies. `Default` is NetSuite's: ±300 s, nonces of 6–64 characters,
/// HMAC-SHA256 only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub timestamp_window_secs: u64,
    pub nonce_min_len: usize,
    pub nonce_max_len: usize,
    pub allow_legacy_sha1: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            timestamp_window_secs: 300,
            nonce_min_len: 6,
            nonce_max_len: 64,
            allow_legacy_sha1: false,
        }
    }
}

impl Rules {
    /// Parses `oauth_timestamp` and checks it lies within the window around `now_unix`.
    pub fn check_timestamp(&self, timestamp: &str, now_unix: i64) -> Result<i64, OAuthError> {
        self.check_timestamp_window(parse_timestamp(timestamp)?, now_unix)
    }

    /// Checks that a timestamp already parsed ([`parse_timestamp`]) lies within the window.
    pub fn check_timestamp_window(&self, seconds: i64, now_unix: i64) -> Result<i64, OAuthError> {
        let skew_secs = seconds.saturating_sub(now_unix);
        if skew_secs.unsigned_abs() > self.timestamp_window_secs {
            return Err(OAuthError::TimestampOutOfWindow {
                skew_secs,
                window_secs: self.timestamp_window_secs,
            });
        }
        Ok(seconds)
    }

    /// Checks the nonce's length in characters.
    pub fn check_nonce(&self, nonce: &str) -> Result<(), OAuthError> {
        let len = nonce.chars().count();
        if len < self.nonce_min_len {
            return Err(OAuthError::NonceTooShort {
                len,
                min: self.nonce_min_len,
            });
        }
        if len > self.nonce_max_len {
            return Err(OAuthError::NonceTooLong {
                len,
                max: self.nonce_max_len,
            });
        }
        Ok(())
    }
}

/// A positive integer of seconds, digits only (no sign, no spaces).
pub fn parse_timestamp(timestamp: &str) -> Result<i64, OAuthError> {
    if timestamp.is_empty()
        || timestamp.len() > 12
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(OAuthError::MalformedTimestamp);
    }
    match timestamp.parse::<i64>() {
        Ok(seconds) if seconds > 0 => Ok(seconds),
        _ => Err(OAuthError::MalformedTimestamp),
    }
}

/// `oauth_version` must be absent or exactly `1.0`.
pub fn check_version(version: Option<&str>) -> Result<(), OAuthError> {
    match version {
        None | Some("1.0") => Ok(()),
        Some(_) => Err(OAuthError::UnsupportedVersion),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn timestamp_window_is_inclusive_and_reports_skew() {
        let rules = Rules::default();
        assert_eq!(rules.check_timestamp("1700000300", NOW), Ok(1_700_000_300));
        assert_eq!(rules.check_timestamp("1699999700", NOW), Ok(1_699_999_700));
        assert_eq!(
            rules.check_timestamp("1700000301", NOW),
            Err(OAuthError::TimestampOutOfWindow {
                skew_secs: 301,
                window_secs: 300
            })
        );
        assert_eq!(
            rules.check_timestamp("1699999699", NOW),
            Err(OAuthError::TimestampOutOfWindow {
                skew_secs: -301,
                window_secs: 300
            })
        );
        let wide = Rules {
            timestamp_window_secs: 900,
            ..Rules::default()
        };
        assert!(wide.check_timestamp("1700000800", NOW).is_ok());
    }

    #[test]
    fn malformed_timestamps() {
        for bad in [
            "",
            "0",
            "-5",
            "+5",
            "12.5",
            " 1700000000",
            "1e9",
            "9999999999999",
            "abc",
        ] {
            assert_eq!(
                parse_timestamp(bad),
                Err(OAuthError::MalformedTimestamp),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn nonce_bounds() {
        let rules = Rules::default();
        assert_eq!(
            rules.check_nonce("abcde"),
            Err(OAuthError::NonceTooShort { len: 5, min: 6 })
        );
        assert_eq!(rules.check_nonce("abcdef"), Ok(()));
        assert_eq!(rules.check_nonce(&"a".repeat(64)), Ok(()));
        assert_eq!(
            rules.check_nonce(&"a".repeat(65)),
            Err(OAuthError::NonceTooLong { len: 65, max: 64 })
        );
        // Length is in characters, not bytes.
        assert_eq!(
            rules.check_nonce("ééééé"),
            Err(OAuthError::NonceTooShort { len: 5, min: 6 })
        );
    }

    #[test]
    fn version_rule() {
        assert_eq!(check_version(None), Ok(()));
        assert_eq!(check_version(Some("1.0")), Ok(()));
        for bad in ["1", "2.0", "1.0a", ""] {
            assert_eq!(
                check_version(Some(bad)),
                Err(OAuthError::UnsupportedVersion)
            );
        }
    }
}
