//! What the audit trail records: every administrative change, and every authentication
//! attempt (the server records those); and the change events that invalidate caches.

use serde::{Deserialize, Serialize};

use crate::{AccountId, UnixTime};

/// The kinds of directory entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Account,
    Integration,
    Role,
    User,
    Token,
    MasterKey,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Integration => "integration",
            Self::Role => "role",
            Self::User => "user",
            Self::Token => "token",
            Self::MasterKey => "master_key",
        }
    }
}

/// Everything an administrator can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminAction {
    AccountCreated,
    AccountUpdated,
    IntegrationCreated,
    IntegrationUpdated,
    IntegrationBlocked,
    IntegrationEnabled,
    IntegrationCredentialsReset,
    IntegrationDeleted,
    RoleCreated,
    RolePermissionGranted,
    RolePermissionRevoked,
    RoleUpdated,
    RoleDeleted,
    UserCreated,
    UserRoleAssigned,
    UserRoleRemoved,
    UserDisabled,
    UserEnabled,
    UserPasswordSet,
    UserDeleted,
    TokenCreated,
    TokenDeactivated,
    TokenActivated,
    TokenRevoked,
    KeysRotated,
}

impl AdminAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccountCreated => "account_created",
            Self::AccountUpdated => "account_updated",
            Self::IntegrationCreated => "integration_created",
            Self::IntegrationUpdated => "integration_updated",
            Self::IntegrationBlocked => "integration_blocked",
            Self::IntegrationEnabled => "integration_enabled",
            Self::IntegrationCredentialsReset => "integration_credentials_reset",
            Self::IntegrationDeleted => "integration_deleted",
            Self::RoleCreated => "role_created",
            Self::RolePermissionGranted => "role_permission_granted",
            Self::RolePermissionRevoked => "role_permission_revoked",
            Self::RoleUpdated => "role_updated",
            Self::RoleDeleted => "role_deleted",
            Self::UserCreated => "user_created",
            Self::UserRoleAssigned => "user_role_assigned",
            Self::UserRoleRemoved => "user_role_removed",
            Self::UserDisabled => "user_disabled",
            Self::UserEnabled => "user_enabled",
            Self::UserPasswordSet => "user_password_set",
            Self::UserDeleted => "user_deleted",
            Self::TokenCreated => "token_created",
            Self::TokenDeactivated => "token_deactivated",
            Self::TokenActivated => "token_activated",
            Self::TokenRevoked => "token_revoked",
            Self::KeysRotated => "keys_rotated",
        }
    }

    pub fn entity(self) -> EntityKind {
        match self.as_str().split('_').next() {
            Some("account") => EntityKind::Account,
            Some("integration") => EntityKind::Integration,
            Some("role") => EntityKind::Role,
            Some("user") => EntityKind::User,
            Some("token") => EntityKind::Token,
            _ => EntityKind::MasterKey,
        }
    }
}

/// One administrative change, as the audit trail keeps it. `detail` never holds a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminEvent {
    pub at: UnixTime,
    pub actor: String,
    pub account: Option<AccountId>,
    pub action: AdminAction,
    pub entity_id: String,
    pub detail: serde_json::Value,
}

/// Published after every committed change, so caches (this node's and, through the shared bus,
/// other nodes') drop what they hold about the entity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub account: Option<AccountId>,
    pub entity: EntityKind,
    pub entity_id: String,
}

/// A login record's text: up to 24 bytes inline (ids, addresses, names and paths mostly fit),
/// and a `&'static str` (a surface, a status, a Detail code) by reference, so queueing a record
/// allocates nothing for them on the request path.
pub type Text = compact_str::CompactString;

/// One authentication attempt, as the login audit trail keeps it: what NetSuite shows
/// (status, Detail code, application, token, user, role) plus keycard's diagnosis for the
/// account owner. Never holds a secret or a full signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginRecord {
    pub at: UnixTime,
    pub request_id: Text,
    pub ip: Text,
    pub account: Option<Text>,
    pub integration: Option<Text>,
    pub token_name: Option<Text>,
    pub user: Option<Text>,
    pub role: Option<Text>,
    /// `rest`, `restlet`, `soap` or `token` (the `/rest/*` endpoints).
    pub surface: Text,
    pub request_uri: Text,
    /// `Success` or `Failure`, as NetSuite's trail says.
    pub status: Text,
    /// NetSuite's Detail code (empty on success).
    pub detail: Text,
    pub diagnosis: serde_json::Value,
}

/// keycard's own request ids are a `u64` written as 16 lower-case hex digits (the server
/// makes them; the trail stores them as their values): the digits of `value`.
pub fn request_id_digits(value: u64) -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 16];
    for (pair, byte) in text.chunks_exact_mut(2).zip(value.to_be_bytes()) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0xf)];
    }
    text
}

/// The value of a request id in keycard's form ([`request_id_digits`]); `None` for any other.
pub fn request_id_value(request_id: &str) -> Option<u64> {
    if request_id.len() != 16 {
        return None;
    }
    request_id.bytes().try_fold(0u64, |value, byte| {
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' => byte - b'a' + 10,
            _ => return None,
        };
        Some(value << 4 | u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_read_back_as_their_values() {
        for value in [0, 1, 0x0123_4567_89ab_cdef, u64::MAX] {
            let digits = request_id_digits(value);
            let text = std::str::from_utf8(&digits).unwrap();
            assert_eq!(text.len(), 16);
            assert_eq!(request_id_value(text), Some(value));
        }
        assert_eq!(
            request_id_digits(0x0123_4567_89ab_cdef),
            *b"0123456789abcdef"
        );
        for other in [
            "0123456789ABCDEF",
            "0123456789abcde",
            "0123456789abcdeg",
            "",
        ] {
            assert_eq!(request_id_value(other), None, "{other}");
        }
    }

    #[test]
    fn actions_know_their_entity() {
        assert_eq!(AdminAction::TokenRevoked.entity(), EntityKind::Token);
        assert_eq!(
            AdminAction::IntegrationCredentialsReset.entity(),
            EntityKind::Integration
        );
        assert_eq!(AdminAction::KeysRotated.entity(), EntityKind::MasterKey);
    }
}
