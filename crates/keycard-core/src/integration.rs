//! Integration records: the application an integration is, its consumer key, its state and the
//! authentication methods it may use.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::{AccountId, RuleError, UnixTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationState {
    Enabled,
    Blocked,
    WaitingForApproval,
    /// Deleted records stay for the audit trail; their tokens are revoked.
    Deleted,
}

impl IntegrationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Blocked => "blocked",
            Self::WaitingForApproval => "waiting_for_approval",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Enabled,
            Self::Blocked,
            Self::WaitingForApproval,
            Self::Deleted,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    /// How NetSuite's UI names the state, for messages.
    pub fn label(self) -> &'static str {
        match self {
            Self::Enabled => "Enabled",
            Self::Blocked => "Blocked",
            Self::WaitingForApproval => "Waiting for Approval",
            Self::Deleted => "deleted",
        }
    }
}

/// The Authentication subtab of an integration record.
// One bool per checkbox on NetSuite's form: they are independent switches, not a state machine.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IntegrationFlags {
    /// Token-based Authentication.
    pub tba: bool,
    /// TBA: Authorization Flow (the three-step browser flow), which needs `callback_url`.
    pub tba_authorization_flow: bool,
    pub callback_url: Option<String>,
    /// TBA: IssueToken Endpoint.
    pub tba_issue_token_endpoint: bool,
    /// User Credentials (NLAuth).
    pub user_credentials: bool,
    /// Reserved for OAuth 2.0.
    pub oauth2_authorization_code: bool,
    pub oauth2_client_credentials: bool,
}

impl IntegrationFlags {
    /// The flags a new record gets when none are given: Token-based Authentication only.
    pub fn tba_only() -> Self {
        Self {
            tba: true,
            ..Self::default()
        }
    }

    pub fn validate(&self) -> Result<(), RuleError> {
        if let Some(url) = &self.callback_url {
            check_callback_url(url)?;
        } else if self.tba_authorization_flow {
            return Err(RuleError::CallbackUrlRequired);
        }
        Ok(())
    }
}

/// A callback URL must be `https://…`, or `http://localhost[:port]…` for developer tools.
pub fn check_callback_url(url: &str) -> Result<(), RuleError> {
    let invalid = || RuleError::InvalidCallbackUrl {
        value: url.to_owned(),
    };
    let lower = url.to_ascii_lowercase();
    let rest = if let Some(rest) = lower.strip_prefix("https://") {
        rest
    } else if let Some(rest) = lower.strip_prefix("http://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let name = host.split(':').next().unwrap_or_default();
        if name != "localhost" {
            return Err(invalid());
        }
        rest
    } else {
        return Err(invalid());
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) || url.len() > 2000 {
        return Err(invalid());
    }
    Ok(())
}

/// The part after `http://localhost[:port]` (port digits or `*`), or `None` for other URLs.
fn localhost_rest(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://localhost")?;
    let after_port = match rest.strip_prefix(':') {
        Some(port) => {
            let end = port.find(['/', '?', '#']).unwrap_or(port.len());
            let (digits, rest) = port.split_at(end);
            (digits == "*" || (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())))
                .then_some(rest)?
        }
        None => rest,
    };
    (after_port.is_empty() || after_port.starts_with(['/', '?', '#'])).then_some(after_port)
}

/// Whether the `oauth_callback` of a request-token step matches the integration's callback URL:
/// exactly, except that a registered `http://localhost` callback accepts any port, as NetSuite
/// allows since 2020.1 (`http://localhost:*`), for developer tools on a random local port.
pub fn callback_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    match (localhost_rest(registered), localhost_rest(requested)) {
        (Some(a), Some(b)) => a == b || (a.is_empty() && b == "/") || (a == "/" && b.is_empty()),
        _ => false,
    }
}

/// An integration record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integration {
    pub id: i64,
    pub account: AccountId,
    pub name: String,
    pub description: String,
    pub state: IntegrationState,
    /// Generated, like NetSuite's Application ID (upper-case UUID form).
    pub application_id: String,
    pub flags: IntegrationFlags,
    pub concurrency_limit: Option<u32>,
    /// The public half of the credentials (64 hex); the secret lives sealed in the store.
    pub consumer_key: String,
    pub created_at: UnixTime,
}

/// Checks a requested per-integration limit against the account's unallocated limit.
pub fn check_concurrency_limit(
    requested: Option<u32>,
    account_limit: u32,
    allocated_to_others: u32,
) -> Result<(), RuleError> {
    match requested {
        None => Ok(()),
        Some(0) => Err(RuleError::ConcurrencyLimitZero),
        Some(requested) => {
            let max = crate::account::max_integration_limit(account_limit, allocated_to_others);
            if requested > max {
                Err(RuleError::ConcurrencyLimitTooHigh { requested, max })
            } else {
                Ok(())
            }
        }
    }
}

/// Formats 16 random bytes as an upper-case UUID, the shape of NetSuite's Application ID.
pub fn application_id_from(bytes: [u8; 16]) -> String {
    let hex = bytes.iter().fold(String::with_capacity(32), |mut hex, b| {
        let _ = write!(hex, "{b:02X}");
        hex
    });
    format!(
        "{}-{}-{}-{}-{}",
        hex.get(0..8).unwrap_or_default(),
        hex.get(8..12).unwrap_or_default(),
        hex.get(12..16).unwrap_or_default(),
        hex.get(16..20).unwrap_or_default(),
        hex.get(20..32).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_match_exactly_or_on_any_localhost_port() {
        use super::callback_matches;
        assert!(callback_matches(
            "https://a.example/cb",
            "https://a.example/cb"
        ));
        assert!(!callback_matches(
            "https://a.example/cb",
            "https://a.example/cb2"
        ));
        assert!(!callback_matches(
            "https://a.example/cb",
            "https://evil.example/cb"
        ));
        assert!(callback_matches(
            "http://localhost:*/cb",
            "http://localhost:49152/cb"
        ));
        assert!(callback_matches(
            "http://localhost:8123/cb",
            "http://localhost:49152/cb"
        ));
        assert!(callback_matches(
            "http://localhost",
            "http://localhost:5000/"
        ));
        assert!(!callback_matches(
            "http://localhost:8123/cb",
            "http://localhost:49152/other"
        ));
        assert!(!callback_matches(
            "http://localhost:*/cb",
            "http://localhost.evil.example/cb"
        ));
        assert!(!callback_matches(
            "http://localhost:*/cb",
            "http://localhost:1@evil.example/cb"
        ));
    }

    #[test]
    fn callback_urls() {
        for ok in [
            "https://app.example.com/cb",
            "http://localhost:8123/callback",
            "http://localhost/x",
            "HTTPS://A.B",
        ] {
            check_callback_url(ok).unwrap();
        }
        for bad in [
            "http://example.com/cb",
            "ftp://x",
            "https://",
            "http://localhost.evil.com/",
            "example.com",
            "https://a b/",
        ] {
            assert_eq!(
                check_callback_url(bad).unwrap_err().code(),
                "invalid_callback_url",
                "{bad}"
            );
        }
        let flow = IntegrationFlags {
            tba: true,
            tba_authorization_flow: true,
            ..IntegrationFlags::default()
        };
        assert_eq!(flow.validate().unwrap_err(), RuleError::CallbackUrlRequired);
    }

    #[test]
    fn limits() {
        check_concurrency_limit(Some(3), 5, 1).unwrap();
        assert_eq!(
            check_concurrency_limit(Some(4), 5, 1).unwrap_err(),
            RuleError::ConcurrencyLimitTooHigh {
                requested: 4,
                max: 3
            }
        );
        assert_eq!(
            check_concurrency_limit(Some(0), 5, 0).unwrap_err(),
            RuleError::ConcurrencyLimitZero
        );
        check_concurrency_limit(None, 5, 5).unwrap();
    }

    #[test]
    fn application_id_shape() {
        assert_eq!(
            application_id_from([0xab; 16]),
            "ABABABAB-ABAB-ABAB-ABAB-ABABABABABAB"
        );
    }
}
