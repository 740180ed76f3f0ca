//! Users (NetSuite's employees and other entities that log in) and their roles.

use serde::{Deserialize, Serialize};

use crate::{AccountId, RuleError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Inactive,
    Locked,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Locked => "locked",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Active, Self::Inactive, Self::Locked]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

/// A user. The password hash and TOTP secret stay in the store; this is what the rules need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub account: AccountId,
    pub email: String,
    pub name: String,
    pub status: UserStatus,
    /// Internal ids of the roles the user holds.
    pub roles: Vec<i64>,
    pub has_password: bool,
    pub has_totp: bool,
}

impl User {
    pub fn holds(&self, role_id: i64) -> bool {
        self.roles.contains(&role_id)
    }

    pub fn is_active(&self) -> bool {
        self.status == UserStatus::Active
    }
}

/// Normalizes an email (trimmed, lower case) and checks its shape: one `@`, a local part, and
/// a domain with a dot.
pub fn check_email(value: &str) -> Result<String, RuleError> {
    let email = value.trim().to_ascii_lowercase();
    let invalid = || RuleError::InvalidEmail {
        value: value.to_owned(),
    };
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    if local.is_empty()
        || domain.len() < 3
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || email.len() > 254
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
        || domain.contains('@')
    {
        return Err(invalid());
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            check_email(" Admin@Example.COM ").unwrap(),
            "admin@example.com"
        );
        for bad in [
            "", "a", "@x.io", "a@b", "a@.io", "a@io.", "a b@x.io", "a@b@c.io",
        ] {
            assert_eq!(
                check_email(bad).unwrap_err().code(),
                "invalid_email",
                "{bad}"
            );
        }
    }
}
