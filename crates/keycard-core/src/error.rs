//! Why a change to the directory is refused: one variant per rule, each with a stable code and
//! a message that says what is wrong and how to fix it.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error(
        "`{value}` is not a NetSuite account id: use digits, optionally prefixed TSTDRV, optionally followed by _SB<n> (sandbox) or _RP (release preview), e.g. 1234567 or 1234567_SB1"
    )]
    InvalidAccountId { value: String },
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} is too long (at most {max} characters)")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} must not hold control characters (tabs, line breaks, NUL and the like)")]
    ControlCharacter { field: &'static str },
    #[error(
        "{field} `{value}` is only digits, which would read as an internal id: add a letter or a sign"
    )]
    NumericName { field: &'static str, value: String },
    #[error("`{value}` is not a valid email address")]
    InvalidEmail { value: String },
    #[error("the callback URL `{value}` must be https, or http://localhost with any port")]
    InvalidCallbackUrl { value: String },
    #[error("TBA: Authorization Flow needs a callback URL (--callback-url)")]
    CallbackUrlRequired,
    #[error(
        "the concurrency limit {requested} is above this integration's maximum of {max} (the account's unallocated limit minus 1); lower it or raise the account's limit"
    )]
    ConcurrencyLimitTooHigh { requested: u32, max: u32 },
    #[error("a concurrency limit must be at least 1")]
    ConcurrencyLimitZero,
    #[error(
        "`{value}` is not an IP range: use CIDR notation such as 203.0.113.0/24 or 2001:db8::/32"
    )]
    InvalidIpRange { value: String },
    #[error(
        "`{value}` has bits set past its prefix, so it would allow all of {network}: write {network} if that is meant, or fix the prefix"
    )]
    IpRangeHostBits { value: String, network: String },
    #[error("`{value}` is not a permission level: use none, view, create, edit or full")]
    InvalidLevel { value: String },
    #[error("`{value}` is not a setup permission; known ones: {known}")]
    UnknownSetupPermission { value: String, known: String },
    #[error(
        "the integration `{integration}` does not have Token-based Authentication enabled; enable it with `keycard integration update --tba true`"
    )]
    IntegrationTbaDisabled { integration: String },
    #[error(
        "the integration `{integration}` is {state}; enable it first with `keycard integration enable`"
    )]
    IntegrationNotEnabled {
        integration: String,
        state: &'static str,
    },
    #[error(
        "the integration `{integration}` was deleted and cannot be enabled again; create a new integration record"
    )]
    IntegrationDeleted { integration: String },
    #[error(
        "the user `{user}` does not hold the role `{role}`; assign it first with `keycard user assign-role`"
    )]
    RoleNotHeld { user: String, role: String },
    #[error(
        "the role `{role}` lacks the permission \"Log in using Access Tokens\"; grant it with `keycard role grant \"{role}\" --setup log-in-using-access-tokens`"
    )]
    RoleCannotUseTokens { role: String },
    #[error("the user `{user}` is {status}; enable the user first")]
    UserNotActive { user: String, status: &'static str },
    #[error(
        "{actor} may not create access tokens: the role needs Access Token Management (for others) or User Access Tokens (for oneself)"
    )]
    MayNotCreateTokens { actor: String },
    #[error(
        "Access Token Management does not allow creating Administrator-role tokens for other users"
    )]
    AdministratorTokenForOther,
    #[error("the token was revoked; revoked tokens stay revoked (create a new one)")]
    TokenRevoked,
    #[error("the token expiry must be in the future")]
    ExpiryInPast,
}

impl RuleError {
    /// A stable code for scripts and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidAccountId { .. } => "invalid_account_id",
            Self::Empty { .. } => "empty",
            Self::TooLong { .. } => "too_long",
            Self::ControlCharacter { .. } => "control_character",
            Self::NumericName { .. } => "numeric_name",
            Self::InvalidEmail { .. } => "invalid_email",
            Self::InvalidCallbackUrl { .. } => "invalid_callback_url",
            Self::CallbackUrlRequired => "callback_url_required",
            Self::ConcurrencyLimitTooHigh { .. } => "concurrency_limit_too_high",
            Self::ConcurrencyLimitZero => "concurrency_limit_zero",
            Self::InvalidIpRange { .. } => "invalid_ip_range",
            Self::IpRangeHostBits { .. } => "ip_range_host_bits",
            Self::InvalidLevel { .. } => "invalid_level",
            Self::UnknownSetupPermission { .. } => "unknown_setup_permission",
            Self::IntegrationTbaDisabled { .. } => "integration_tba_disabled",
            Self::IntegrationNotEnabled { .. } => "integration_not_enabled",
            Self::IntegrationDeleted { .. } => "integration_deleted",
            Self::RoleNotHeld { .. } => "role_not_held",
            Self::RoleCannotUseTokens { .. } => "role_cannot_use_tokens",
            Self::UserNotActive { .. } => "user_not_active",
            Self::MayNotCreateTokens { .. } => "may_not_create_tokens",
            Self::AdministratorTokenForOther => "administrator_token_for_other",
            Self::TokenRevoked => "token_revoked",
            Self::ExpiryInPast => "expiry_in_past",
        }
    }
}

/// Checks a free-text field: trimmed, non-empty, at most `max` characters, no control
/// characters (a NUL cannot be stored in PostgreSQL text, and a line break forges lines in
/// listings and logs).
pub fn check_text(field: &'static str, value: &str, max: usize) -> Result<String, RuleError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(RuleError::Empty { field });
    }
    if value.chars().count() > max {
        return Err(RuleError::TooLong { field, max });
    }
    if value.chars().any(char::is_control) {
        return Err(RuleError::ControlCharacter { field });
    }
    Ok(value.to_owned())
}

/// Checks the name of a record that is also found by its internal id ([`check_text`], and
/// not only digits): lookups read a key of digits as an id, so such a name could never be
/// named, and once it were, "17" would be two records.
pub fn check_name(field: &'static str, value: &str, max: usize) -> Result<String, RuleError> {
    let name = check_text(field, value, max)?;
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RuleError::NumericName { field, value: name });
    }
    Ok(name)
}
