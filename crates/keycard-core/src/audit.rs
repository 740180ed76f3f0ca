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
    let digits: &[u8; 16] = request_id.as_bytes().try_into().ok()?;
    let (high, low) = digits.split_at(8);
    Some(hex_word(high)? << 32 | hex_word(low)?)
}

/// Eight lower-case hex digits (`None` unless exactly that) as their value, eight bytes at a
/// time: the trail's writer reads every record's id back, and a digit at a time took about
/// 140 instructions a request (counted).
fn hex_word(digits: &[u8]) -> Option<u64> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES * 0x80;
    let x = u64::from_be_bytes(digits.try_into().ok()?);
    // Each byte's two nibbles in bytes of their own (0 to 15), so that adding at most 0x80
    // never carries into the next byte: a byte's high bit then says whether it passed.
    let (upper, lower) = ((x >> 4) & (ONES * 0x0f), x & (ONES * 0x0f));
    let equals = |nibbles: u64, n: u64| !((nibbles ^ (ONES * n)) + ONES * 0x7f) & HIGH;
    let below = |nibbles: u64, n: u64| !(nibbles + ONES * (0x80 - n)) & HIGH;
    let digit = equals(upper, 3) & below(lower, 10); // '0'..='9' are 0x30..=0x39
    let letter = equals(upper, 6) & !below(lower, 1) & below(lower, 7); // 'a'..='f': 0x61..=0x66
    if digit | letter != HIGH {
        return None;
    }
    // A digit's value is its low nibble, a letter's its low nibble plus 9; then the eight
    // values (the first digit in the top byte) are packed pairwise into 32 bits.
    let values = lower + (letter >> 7) * 9;
    let pairs = (values | (values >> 4)) & 0x00ff_00ff_00ff_00ff;
    let quads = (pairs | (pairs >> 8)) & 0x0000_ffff_0000_ffff;
    Some((quads | (quads >> 16)) & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digit-at-a-time reading that [`request_id_value`] replaced.
    fn value_by_digits(request_id: &[u8]) -> Option<u64> {
        if request_id.len() != 16 {
            return None;
        }
        request_id.iter().try_fold(0u64, |value, &byte| {
            let digit = match byte {
                b'0'..=b'9' => byte - b'0',
                b'a'..=b'f' => byte - b'a' + 10,
                _ => return None,
            };
            Some(value << 4 | u64::from(digit))
        })
    }

    #[test]
    fn request_ids_are_read_as_digit_by_digit_reading_reads_them() {
        // Every byte value in every position of a few ids, and many ids.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut ids: Vec<[u8; 16]> = [0, 1, u64::MAX, 0x0123_4567_89ab_cdef]
            .into_iter()
            .map(request_id_digits)
            .collect();
        for _ in 0..2000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ids.push(request_id_digits(state));
        }
        for base in ids.clone().iter().take(6) {
            for position in 0..16 {
                for byte in 0..=u8::MAX {
                    let mut changed = *base;
                    changed[position] = byte;
                    ids.push(changed);
                }
            }
        }
        for id in ids {
            let expected = value_by_digits(&id);
            // Bytes that are not UTF-8 are never a `str`: their reading is `None` anyway.
            if let Ok(text) = std::str::from_utf8(&id) {
                assert_eq!(request_id_value(text), expected, "{text:?}");
            } else {
                assert_eq!(expected, None);
            }
        }
    }

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
