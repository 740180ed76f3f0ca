//! Accounts: the NetSuite account id and what derives from it (kind, host slug), the enabled
//! features, and the concurrency limit.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{RuleError, Text};

/// A validated NetSuite account id, kept in its canonical upper-case form:
/// `1234567`, `TSTDRV1234567`, `1234567_SB1`, `1234567_RP`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(Text);

/// The longest valid account id: `TSTDRV`, 12 digits, `_SB999`. It is also `Text`'s inline
/// size, so an id never allocates.
const MAX_ACCOUNT_ID_LEN: usize = 24;

/// What kind of account an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Production,
    Sandbox { number: u16 },
    ReleasePreview,
    TestDrive,
}

impl AccountId {
    /// Parses an id in any letter case (`1234567_sb1` is `1234567_SB1`), surrounding space
    /// ignored. The host form (`1234567-sb1`) is not an account id: it is what
    /// [`AccountId::host_slug`] produces.
    pub fn parse(value: &str) -> Result<Self, RuleError> {
        Self::parse_mapped(value, false)
    }

    /// `value` upper-cased (and with `-` read as `_` when `dash_as_underscore`), then checked.
    fn parse_mapped(value: &str, dash_as_underscore: bool) -> Result<Self, RuleError> {
        let invalid = || RuleError::InvalidAccountId {
            value: value.to_owned(),
        };
        let trimmed = value.trim();
        if trimmed.len() > MAX_ACCOUNT_ID_LEN {
            return Err(invalid());
        }
        let mapped = |b: u8| {
            if dash_as_underscore && b == b'-' {
                b'_'
            } else {
                b.to_ascii_uppercase()
            }
        };
        // Ids usually come as stored (a realm on every request): then the text is already
        // canonical, and neither a copy nor a UTF-8 check of one is needed.
        let mut canonical: [u8; MAX_ACCOUNT_ID_LEN];
        let upper = if trimmed.bytes().all(|b| mapped(b) == b) {
            trimmed
        } else {
            canonical = [0; MAX_ACCOUNT_ID_LEN];
            let out = canonical.get_mut(..trimmed.len()).ok_or_else(invalid)?;
            for (to, from) in out.iter_mut().zip(trimmed.bytes()) {
                *to = mapped(from);
            }
            // Only ASCII bytes were changed, into ASCII: still UTF-8.
            std::str::from_utf8(out).map_err(|_| invalid())?
        };
        let rest = upper.strip_prefix("TSTDRV").unwrap_or(upper);
        // `_` is ASCII: a byte search, not `str`'s.
        let (digits, suffix) = match rest.bytes().position(|b| b == b'_') {
            Some(at) => (rest.get(..at).unwrap_or_default(), rest.get(at + 1..)),
            None => (rest, None),
        };
        if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        match suffix {
            None | Some("RP") => {}
            Some(sandbox) => {
                let number = sandbox.strip_prefix("SB").ok_or_else(invalid)?;
                if number.is_empty()
                    || number.len() > 3
                    || number.starts_with('0')
                    || !number.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(invalid());
                }
            }
        }
        Ok(Self(upper.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> AccountKind {
        if let Some((_, suffix)) = self.0.split_once('_') {
            if suffix == "RP" {
                return AccountKind::ReleasePreview;
            }
            let number = suffix.trim_start_matches("SB").parse().unwrap_or(1);
            return AccountKind::Sandbox { number };
        }
        if self.0.starts_with("TSTDRV") {
            AccountKind::TestDrive
        } else {
            AccountKind::Production
        }
    }

    /// The account's part of its host names: lower case, `_` → `-` (`1234567_SB1` →
    /// `1234567-sb1`), as in `1234567-sb1.restlets.api.netsuite.com`.
    pub fn host_slug(&self) -> String {
        self.0.to_ascii_lowercase().replace('_', "-")
    }

    /// Reads a host slug back into an account id.
    pub fn from_host_slug(slug: &str) -> Result<Self, RuleError> {
        Self::parse_mapped(slug, true)
    }
}

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AccountId {
    type Error = RuleError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AccountId> for String {
    fn from(id: AccountId) -> Self {
        id.0.into_string()
    }
}

/// Account features that authentication depends on (Setup > Company > Enable Features).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Feature {
    TokenBasedAuthentication,
    RestWebServices,
    SoapWebServices,
    Oauth2,
}

impl Feature {
    pub const ALL: [Self; 4] = [
        Self::TokenBasedAuthentication,
        Self::RestWebServices,
        Self::SoapWebServices,
        Self::Oauth2,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenBasedAuthentication => "token-based-authentication",
            Self::RestWebServices => "rest-web-services",
            Self::SoapWebServices => "soap-web-services",
            Self::Oauth2 => "oauth2",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|f| {
            f.as_str() == value || (value == "tba" && *f == Self::TokenBasedAuthentication)
        })
    }
}

/// The service tier, which sets the base of the concurrency limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceTier {
    Standard,
    Premium,
    Enterprise,
    Ultimate,
}

impl ServiceTier {
    /// NetSuite's base limits since June 2020: 5 / 15 / 20 / 20.
    pub fn base_limit(self) -> u32 {
        match self {
            Self::Standard => 5,
            Self::Premium => 15,
            Self::Enterprise | Self::Ultimate => 20,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Premium => "premium",
            Self::Enterprise => "enterprise",
            Self::Ultimate => "ultimate",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "standard" => Some(Self::Standard),
            "premium" => Some(Self::Premium),
            "enterprise" => Some(Self::Enterprise),
            "ultimate" => Some(Self::Ultimate),
            _ => None,
        }
    }
}

/// An account on this installation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub features: BTreeSet<Feature>,
    pub tier: ServiceTier,
    pub suitecloud_plus_licenses: u32,
    /// Overrides the tier-derived limit when set.
    pub concurrency_limit_override: Option<u32>,
    pub require_approval_for_auto_installed: bool,
    pub created_at: crate::UnixTime,
}

impl Account {
    /// The account-wide concurrency limit: tier base + 10 per SuiteCloud Plus licence, unless set
    /// explicitly.
    pub fn concurrency_limit(&self) -> u32 {
        self.concurrency_limit_override.unwrap_or_else(|| {
            self.tier
                .base_limit()
                .saturating_add(self.suitecloud_plus_licenses.saturating_mul(10))
        })
    }

    pub fn has(&self, feature: Feature) -> bool {
        self.features.contains(&feature)
    }

    pub fn kind(&self) -> AccountKind {
        self.id.kind()
    }
}

/// The largest limit an integration may be given: the unallocated limit minus one, because
/// the unallocated pool never drops below 1 (it serves unallocated and auto-installed ones).
/// `allocated_to_others` is the sum of the other integrations' limits.
pub fn max_integration_limit(account_limit: u32, allocated_to_others: u32) -> u32 {
    account_limit
        .saturating_sub(allocated_to_others)
        .saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        for (input, canonical, slug, kind) in [
            ("1234567", "1234567", "1234567", AccountKind::Production),
            (
                "1234567_sb1",
                "1234567_SB1",
                "1234567-sb1",
                AccountKind::Sandbox { number: 1 },
            ),
            (
                "1234567_SB12",
                "1234567_SB12",
                "1234567-sb12",
                AccountKind::Sandbox { number: 12 },
            ),
            (
                "1234567_RP",
                "1234567_RP",
                "1234567-rp",
                AccountKind::ReleasePreview,
            ),
            (
                "tstdrv1234567",
                "TSTDRV1234567",
                "tstdrv1234567",
                AccountKind::TestDrive,
            ),
            // The longest valid id (24 bytes), with whitespace around it.
            (
                " tstdrv123456789012_sb999\t",
                "TSTDRV123456789012_SB999",
                "tstdrv123456789012-sb999",
                AccountKind::Sandbox { number: 999 },
            ),
        ] {
            let id = AccountId::parse(input).unwrap();
            assert_eq!(id.as_str(), canonical);
            assert_eq!(id.host_slug(), slug);
            assert_eq!(id.kind(), kind);
            assert_eq!(AccountId::from_host_slug(slug).unwrap(), id);
        }
        for bad in [
            "",
            "abc",
            "1234567-sb1",
            "1234567_SB",
            "1234567_SB0",
            "1234567_XX",
            "_SB1",
            "12 34",
            "1234567_SB1234",
            "1234567890123",
            "TSTDRV1234567890123_SB999",
            "１２３４５６７",
            "1234567\u{e9}",
        ] {
            assert_eq!(
                AccountId::parse(bad).unwrap_err().code(),
                "invalid_account_id",
                "{bad}"
            );
        }
    }

    #[test]
    fn concurrency_limits() {
        let mut account = Account {
            id: AccountId::parse("1").unwrap(),
            name: "a".into(),
            features: BTreeSet::new(),
            tier: ServiceTier::Premium,
            suitecloud_plus_licenses: 5,
            concurrency_limit_override: None,
            require_approval_for_auto_installed: false,
            created_at: 0,
        };
        assert_eq!(account.concurrency_limit(), 65);
        account.tier = ServiceTier::Standard;
        account.suitecloud_plus_licenses = 1;
        assert_eq!(account.concurrency_limit(), 15);
        account.concurrency_limit_override = Some(7);
        assert_eq!(account.concurrency_limit(), 7);
        assert_eq!(max_integration_limit(5, 2), 2);
        assert_eq!(max_integration_limit(5, 5), 0);
    }
}
