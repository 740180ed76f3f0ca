//! Roles: record permissions with levels, setup permissions, and the role-wide restrictions
//! (Web Services Only, two-factor, allowed IP ranges).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::{AccountId, RuleError};

/// A record permission's level, in increasing order of power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    None,
    View,
    Create,
    Edit,
    Full,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::View => "view",
            Self::Create => "create",
            Self::Edit => "edit",
            Self::Full => "full",
        }
    }

    pub fn parse(value: &str) -> Result<Self, RuleError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "view" => Ok(Self::View),
            "create" => Ok(Self::Create),
            "edit" => Ok(Self::Edit),
            "full" => Ok(Self::Full),
            _ => Err(RuleError::InvalidLevel {
                value: value.to_owned(),
            }),
        }
    }
}

/// Setup permissions, which are only None or Full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SetupPermission {
    LogInUsingAccessTokens,
    UserAccessTokens,
    AccessTokenManagement,
    RestWebServices,
    SoapWebServices,
    IntegrationApplication,
    LogInUsingOauth2AccessTokens,
    Oauth2AuthorizedApplicationsManagement,
    Administrator,
}

impl SetupPermission {
    pub const ALL: [Self; 9] = [
        Self::LogInUsingAccessTokens,
        Self::UserAccessTokens,
        Self::AccessTokenManagement,
        Self::RestWebServices,
        Self::SoapWebServices,
        Self::IntegrationApplication,
        Self::LogInUsingOauth2AccessTokens,
        Self::Oauth2AuthorizedApplicationsManagement,
        Self::Administrator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LogInUsingAccessTokens => "log-in-using-access-tokens",
            Self::UserAccessTokens => "user-access-tokens",
            Self::AccessTokenManagement => "access-token-management",
            Self::RestWebServices => "rest-web-services",
            Self::SoapWebServices => "soap-web-services",
            Self::IntegrationApplication => "integration-application",
            Self::LogInUsingOauth2AccessTokens => "log-in-using-oauth2-access-tokens",
            Self::Oauth2AuthorizedApplicationsManagement => {
                "oauth2-authorized-applications-management"
            }
            Self::Administrator => "administrator",
        }
    }

    /// NetSuite's label, for messages and tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::LogInUsingAccessTokens => "Log in using Access Tokens",
            Self::UserAccessTokens => "User Access Tokens",
            Self::AccessTokenManagement => "Access Token Management",
            Self::RestWebServices => "REST Web Services",
            Self::SoapWebServices => "SOAP Web Services",
            Self::IntegrationApplication => "Integration Application",
            Self::LogInUsingOauth2AccessTokens => "Log in using OAuth 2.0 Access Tokens",
            Self::Oauth2AuthorizedApplicationsManagement => {
                "OAuth 2.0 Authorized Applications Management"
            }
            Self::Administrator => "Administrator",
        }
    }

    pub fn parse(value: &str) -> Result<Self, RuleError> {
        let wanted = value.trim().to_ascii_lowercase().replace([' ', '_'], "-");
        Self::ALL
            .into_iter()
            .find(|p| {
                p.as_str() == wanted || p.label().to_ascii_lowercase().replace(' ', "-") == wanted
            })
            .ok_or_else(|| RuleError::UnknownSetupPermission {
                value: value.to_owned(),
                known: Self::ALL.map(Self::as_str).join(", "),
            })
    }
}

/// A role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub id: i64,
    pub account: AccountId,
    pub name: String,
    /// Record type (an open set, lower case: `customer`, `salesorder`, …) → level.
    pub records: BTreeMap<String, Level>,
    pub setup: BTreeSet<SetupPermission>,
    pub web_services_only: bool,
    pub two_factor_required: bool,
    /// Empty means any address.
    pub allowed_ips: Vec<IpNet>,
}

impl Role {
    pub fn is_administrator(&self) -> bool {
        self.setup.contains(&SetupPermission::Administrator)
    }

    /// Whether the role has a setup permission (Administrator has them all).
    pub fn has(&self, permission: SetupPermission) -> bool {
        self.is_administrator() || self.setup.contains(&permission)
    }

    /// The level on a record type (Administrator has Full on everything).
    pub fn level(&self, record: &str) -> Level {
        if self.is_administrator() {
            return Level::Full;
        }
        self.records
            .get(&record.to_ascii_lowercase())
            .copied()
            .unwrap_or(Level::None)
    }

    pub fn allows(&self, record: &str, needed: Level) -> bool {
        self.level(record) >= needed
    }

    /// An IPv4 client seen on a dual-stack socket (`::ffff:203.0.113.5`) is its IPv4 address.
    pub fn ip_allowed(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allowed_ips.is_empty() || self.allowed_ips.iter().any(|net| net.contains(&ip))
    }
}

pub fn parse_ip_range(value: &str) -> Result<IpNet, RuleError> {
    let value = value.trim();
    let net = value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| RuleError::InvalidIpRange {
            value: value.to_owned(),
        })?;
    // `10.1.2.3/8` was read as 10.0.0.0/8: a typo in the prefix opened a whole /8.
    if net.trunc() != net {
        return Err(RuleError::IpRangeHostBits {
            value: value.to_owned(),
            network: net.trunc().to_string(),
        });
    }
    Ok(net)
}

/// A record type name: lower-case letters, digits and `_`.
pub fn check_record_type(value: &str) -> Result<String, RuleError> {
    let value = value.trim().to_ascii_lowercase();
    if value.is_empty()
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(RuleError::Empty {
            field: "record type (letters, digits and _)",
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role() -> Role {
        Role {
            id: 1,
            account: AccountId::parse("1").unwrap(),
            name: "r".into(),
            records: BTreeMap::from([("customer".into(), Level::Edit)]),
            setup: BTreeSet::from([SetupPermission::LogInUsingAccessTokens]),
            web_services_only: false,
            two_factor_required: false,
            allowed_ips: vec![],
        }
    }

    #[test]
    fn levels_and_permissions() {
        let mut role = role();
        assert!(role.allows("Customer", Level::View) && role.allows("customer", Level::Edit));
        assert!(!role.allows("customer", Level::Full) && !role.allows("salesorder", Level::View));
        assert!(
            role.has(SetupPermission::LogInUsingAccessTokens)
                && !role.has(SetupPermission::RestWebServices)
        );
        role.setup.insert(SetupPermission::Administrator);
        assert!(
            role.allows("salesorder", Level::Full) && role.has(SetupPermission::RestWebServices)
        );
        assert_eq!(Level::parse("bogus").unwrap_err().code(), "invalid_level");
        assert_eq!(
            SetupPermission::parse("Log in using Access Tokens").unwrap(),
            SetupPermission::LogInUsingAccessTokens
        );
        assert_eq!(
            SetupPermission::parse("rest_web_services").unwrap(),
            SetupPermission::RestWebServices
        );
        assert_eq!(
            SetupPermission::parse("x").unwrap_err().code(),
            "unknown_setup_permission"
        );
    }

    #[test]
    fn ip_ranges() {
        let mut role = role();
        assert!(role.ip_allowed("198.51.100.7".parse().unwrap()));
        role.allowed_ips = vec![
            parse_ip_range("203.0.113.0/24").unwrap(),
            parse_ip_range("2001:db8::1").unwrap(),
        ];
        assert_eq!(role.allowed_ips[1].to_string(), "2001:db8::1/128");
        assert!(role.ip_allowed("203.0.113.200".parse().unwrap()));
        assert!(role.ip_allowed("2001:db8::1".parse().unwrap()));
        assert!(!role.ip_allowed("198.51.100.7".parse().unwrap()));
        // An IPv4 client on a dual-stack socket is its IPv4 address.
        assert!(role.ip_allowed("::ffff:203.0.113.5".parse().unwrap()));
        assert!(!role.ip_allowed("::ffff:198.51.100.7".parse().unwrap()));
        // Bits past the prefix are a typo, not a wider range (10.1.2.3/8 allowed all of 10/8).
        let refused = parse_ip_range("203.0.113.9/24").unwrap_err();
        assert_eq!(refused.code(), "ip_range_host_bits");
        assert!(refused.to_string().contains("203.0.113.0/24"), "{refused}");
        assert_eq!(
            parse_ip_range("300.1.1.1/8").unwrap_err().code(),
            "invalid_ip_range"
        );
    }
}
