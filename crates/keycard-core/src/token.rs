//! Access tokens: the binding of one integration, one user and one role, and NetSuite's rules
//! for creating and using them.

use serde::{Deserialize, Serialize};

use crate::{
    AccountId, Integration, IntegrationState, Role, RuleError, SetupPermission, UnixTime, User,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum TokenState {
    Active,
    /// Reversible.
    Inactive,
    /// Permanent; kept for the audit trail.
    Revoked {
        at: UnixTime,
        by: String,
    },
}

impl TokenState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Revoked { .. } => "revoked",
        }
    }
}

/// An access token record. The secret is sealed in the store and never part of this type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    pub id: i64,
    pub account: AccountId,
    pub name: String,
    pub integration_id: i64,
    pub user_id: i64,
    pub role_id: i64,
    /// The public half (64 hex).
    pub token_id: String,
    pub state: TokenState,
    pub created_at: UnixTime,
    pub created_by: String,
    pub last_used_at: Option<UnixTime>,
    pub last_used_ip: Option<String>,
    pub expires_at: Option<UnixTime>,
}

/// NetSuite's default token name: application, user and role, joined.
pub fn default_token_name(integration: &Integration, user: &User, role: &Role) -> String {
    format!("{} {} {}", integration.name, user.name, role.name)
}

/// Who asks for a token to be created.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// The installation's operator (the `keycard` CLI against the store): may do anything an
    /// Administrator may.
    Operator,
    /// A user acting through one of their roles.
    User { user: &'a User, role: &'a Role },
}

impl Actor<'_> {
    pub fn describe(&self) -> String {
        match self {
            Self::Operator => "operator".to_owned(),
            Self::User { user, role } => format!("{} ({})", user.email, role.name),
        }
    }
}

/// Checks that `actor` may create a token for (`integration`, `user`, `role`).
///
/// The rules: the integration is Enabled with Token-based Authentication; the user is active and
/// holds the role; the role has Log in using Access Tokens. Administrators and the operator may
/// create any token. A user with User Access Tokens may create tokens for themselves and their
/// current role; Access Token Management creates tokens for others, but not Administrator-role
/// tokens for others.
pub fn check_create(
    actor: Actor<'_>,
    integration: &Integration,
    user: &User,
    role: &Role,
) -> Result<(), RuleError> {
    if !integration.flags.tba {
        return Err(RuleError::IntegrationTbaDisabled {
            integration: integration.name.clone(),
        });
    }
    if integration.state == IntegrationState::Deleted {
        return Err(RuleError::IntegrationDeleted {
            integration: integration.name.clone(),
        });
    }
    if integration.state != IntegrationState::Enabled {
        return Err(RuleError::IntegrationNotEnabled {
            integration: integration.name.clone(),
            state: integration.state.label(),
        });
    }
    if !user.is_active() {
        return Err(RuleError::UserNotActive {
            user: user.email.clone(),
            status: user.status.as_str(),
        });
    }
    if !user.holds(role.id) {
        return Err(RuleError::RoleNotHeld {
            user: user.email.clone(),
            role: role.name.clone(),
        });
    }
    if !role.has(SetupPermission::LogInUsingAccessTokens) {
        return Err(RuleError::RoleCannotUseTokens {
            role: role.name.clone(),
        });
    }
    match actor {
        Actor::Operator => Ok(()),
        Actor::User {
            user: actor_user,
            role: actor_role,
        } => {
            if !actor_user.is_active() {
                return Err(RuleError::UserNotActive {
                    user: actor_user.email.clone(),
                    status: actor_user.status.as_str(),
                });
            }
            if actor_role.is_administrator() {
                return Ok(());
            }
            // User Access Tokens: for oneself and one's current role. Access Token Management:
            // for other users only (its holder "cannot create their own tokens", under any of
            // their roles), never with an Administrator role.
            let same_user = actor_user.id == user.id;
            if same_user
                && actor_role.id == role.id
                && actor_role.has(SetupPermission::UserAccessTokens)
            {
                return Ok(());
            }
            if !same_user && actor_role.has(SetupPermission::AccessTokenManagement) {
                if role.is_administrator() {
                    return Err(RuleError::AdministratorTokenForOther);
                }
                return Ok(());
            }
            Err(RuleError::MayNotCreateTokens {
                actor: actor.describe(),
            })
        }
    }
}

/// Why an existing token cannot authenticate right now. The server maps these to NetSuite's
/// login-audit Detail codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    #[error("the token is inactive")]
    TokenInactive,
    #[error("the token was revoked")]
    TokenRevoked,
    #[error("the token expired")]
    TokenExpired,
    #[error("the integration is blocked, waiting for approval or deleted")]
    IntegrationNotEnabled,
    #[error("the integration does not have Token-based Authentication enabled")]
    IntegrationTbaDisabled,
    #[error("the user is not active")]
    UserNotActive,
    #[error("the user no longer holds the token's role")]
    RoleNotHeld,
    #[error("the role lacks Log in using Access Tokens")]
    RoleCannotUseTokens,
}

impl Unusable {
    pub fn code(self) -> &'static str {
        match self {
            Self::TokenInactive => "token_inactive",
            Self::TokenRevoked => "token_revoked",
            Self::TokenExpired => "token_expired",
            Self::IntegrationNotEnabled => "integration_not_enabled",
            Self::IntegrationTbaDisabled => "integration_tba_disabled",
            Self::UserNotActive => "user_not_active",
            Self::RoleNotHeld => "role_not_held",
            Self::RoleCannotUseTokens => "role_cannot_use_tokens",
        }
    }
}

/// Whether a token in `state`, expiring at `expires_at`, may authenticate at `now`, given the
/// current state of its integration, user and role. Removing the role from the user leaves the
/// token active but unusable here. (State and expiry rather than the whole token: the server's
/// cache keeps only the parts of a token that authentication reads.)
pub fn check_usable(
    state: &TokenState,
    expires_at: Option<UnixTime>,
    integration: &Integration,
    user: &User,
    role: &Role,
    now: UnixTime,
) -> Result<(), Unusable> {
    match state {
        TokenState::Active => {}
        TokenState::Inactive => return Err(Unusable::TokenInactive),
        TokenState::Revoked { .. } => return Err(Unusable::TokenRevoked),
    }
    if expires_at.is_some_and(|at| now >= at) {
        return Err(Unusable::TokenExpired);
    }
    if integration.state != IntegrationState::Enabled {
        return Err(Unusable::IntegrationNotEnabled);
    }
    if !integration.flags.tba {
        return Err(Unusable::IntegrationTbaDisabled);
    }
    if !user.is_active() {
        return Err(Unusable::UserNotActive);
    }
    if !user.holds(role.id) {
        return Err(Unusable::RoleNotHeld);
    }
    if !role.has(SetupPermission::LogInUsingAccessTokens) {
        return Err(Unusable::RoleCannotUseTokens);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::{IntegrationFlags, UserStatus};

    fn account() -> AccountId {
        AccountId::parse("1234567").unwrap()
    }

    fn integration() -> Integration {
        Integration {
            id: 1,
            account: account(),
            name: "Order Sync".into(),
            description: String::new(),
            state: IntegrationState::Enabled,
            application_id: "A".into(),
            flags: IntegrationFlags::tba_only(),
            concurrency_limit: None,
            consumer_key: "ck".into(),
            created_at: 0,
        }
    }

    fn role(id: i64, setup: &[SetupPermission]) -> Role {
        Role {
            id,
            account: account(),
            name: format!("role{id}"),
            records: BTreeMap::new(),
            setup: setup.iter().copied().collect::<BTreeSet<_>>(),
            web_services_only: false,
            two_factor_required: false,
            allowed_ips: vec![],
        }
    }

    fn user(id: i64, roles: &[i64]) -> User {
        User {
            id,
            account: account(),
            email: format!("u{id}@example.com"),
            name: format!("User {id}"),
            status: UserStatus::Active,
            roles: roles.to_vec(),
            has_password: false,
            has_totp: false,
        }
    }

    use SetupPermission::{
        AccessTokenManagement, Administrator, LogInUsingAccessTokens, UserAccessTokens,
    };

    #[test]
    fn creation_rules() {
        let integration = integration();
        let login = role(1, &[LogInUsingAccessTokens]);
        let holder = user(10, &[1]);
        check_create(Actor::Operator, &integration, &holder, &login).unwrap();

        let no_login = role(2, &[]);
        let holder2 = user(11, &[2]);
        assert_eq!(
            check_create(Actor::Operator, &integration, &holder2, &no_login)
                .unwrap_err()
                .code(),
            "role_cannot_use_tokens"
        );
        assert_eq!(
            check_create(Actor::Operator, &integration, &user(12, &[]), &login)
                .unwrap_err()
                .code(),
            "role_not_held"
        );

        let mut blocked = integration.clone();
        blocked.state = IntegrationState::Blocked;
        assert_eq!(
            check_create(Actor::Operator, &blocked, &holder, &login)
                .unwrap_err()
                .code(),
            "integration_not_enabled"
        );
        // A deleted integration is not one to enable (its message said to enable it).
        let mut deleted = integration.clone();
        deleted.state = IntegrationState::Deleted;
        assert_eq!(
            check_create(Actor::Operator, &deleted, &holder, &login)
                .unwrap_err()
                .code(),
            "integration_deleted"
        );
        // The command the message gives can be pasted as it is, a role name with spaces too.
        let mut spaced = no_login.clone();
        spaced.name = "Integration Role".into();
        let message = check_create(Actor::Operator, &integration, &holder2, &spaced)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains(r#"keycard role grant "Integration Role" --setup"#),
            "{message}"
        );
        let mut no_tba = integration.clone();
        no_tba.flags.tba = false;
        assert_eq!(
            check_create(Actor::Operator, &no_tba, &holder, &login)
                .unwrap_err()
                .code(),
            "integration_tba_disabled"
        );
        let mut inactive = holder.clone();
        inactive.status = UserStatus::Inactive;
        assert_eq!(
            check_create(Actor::Operator, &integration, &inactive, &login)
                .unwrap_err()
                .code(),
            "user_not_active"
        );
    }

    #[test]
    fn access_token_management_is_for_others_and_actors_must_be_active() {
        let integration = integration();
        let manager = role(2, &[AccessTokenManagement]);
        let plain = role(4, &[LogInUsingAccessTokens]);
        let other = user(11, &[4]);
        let mgr = user(12, &[2]);
        // Access Token Management is for others: not for oneself, under any role one holds
        // (before, only the same user *and* role counted as oneself).
        let mgr_with_login = user(13, &[2, 4]);
        assert_eq!(
            check_create(
                Actor::User {
                    user: &mgr_with_login,
                    role: &manager
                },
                &integration,
                &mgr_with_login,
                &plain
            )
            .unwrap_err()
            .code(),
            "may_not_create_tokens"
        );
        // An actor who is no longer active creates nothing.
        let mut gone = mgr.clone();
        gone.status = UserStatus::Inactive;
        assert_eq!(
            check_create(
                Actor::User {
                    user: &gone,
                    role: &manager
                },
                &integration,
                &other,
                &plain
            )
            .unwrap_err()
            .code(),
            "user_not_active"
        );
    }

    #[test]
    fn who_may_create() {
        let integration = integration();
        let self_service = role(1, &[LogInUsingAccessTokens, UserAccessTokens]);
        let manager = role(2, &[AccessTokenManagement]);
        let admin = role(3, &[Administrator]);
        let plain = role(4, &[LogInUsingAccessTokens]);
        let me = user(10, &[1, 4]);
        let other = user(11, &[4, 3]);
        let mgr = user(12, &[2]);

        // User Access Tokens: for oneself and one's current role only.
        check_create(
            Actor::User {
                user: &me,
                role: &self_service,
            },
            &integration,
            &me,
            &self_service,
        )
        .unwrap();
        assert_eq!(
            check_create(
                Actor::User {
                    user: &me,
                    role: &self_service
                },
                &integration,
                &other,
                &plain
            )
            .unwrap_err()
            .code(),
            "may_not_create_tokens"
        );
        // Access Token Management: for others, not Administrator-role tokens of others.
        check_create(
            Actor::User {
                user: &mgr,
                role: &manager,
            },
            &integration,
            &other,
            &plain,
        )
        .unwrap();
        assert_eq!(
            check_create(
                Actor::User {
                    user: &mgr,
                    role: &manager
                },
                &integration,
                &other,
                &admin
            )
            .unwrap_err(),
            RuleError::AdministratorTokenForOther
        );
        // Administrators may create any token.
        check_create(
            Actor::User {
                user: &other,
                role: &admin,
            },
            &integration,
            &me,
            &plain,
        )
        .unwrap();
        // A role with only Log in using Access Tokens cannot create tokens.
        assert_eq!(
            check_create(
                Actor::User {
                    user: &me,
                    role: &plain
                },
                &integration,
                &me,
                &plain
            )
            .unwrap_err()
            .code(),
            "may_not_create_tokens"
        );
    }

    #[test]
    fn usability() {
        let integration = integration();
        let login = role(1, &[LogInUsingAccessTokens]);
        let mut holder = user(10, &[1]);
        let mut token = AccessToken {
            id: 1,
            account: account(),
            name: "t".into(),
            integration_id: 1,
            user_id: 10,
            role_id: 1,
            token_id: "tk".into(),
            state: TokenState::Active,
            created_at: 0,
            created_by: "operator".into(),
            last_used_at: None,
            last_used_ip: None,
            expires_at: None,
        };
        check_usable(
            &token.state,
            token.expires_at,
            &integration,
            &holder,
            &login,
            100,
        )
        .unwrap();
        holder.roles.clear();
        assert_eq!(
            check_usable(
                &token.state,
                token.expires_at,
                &integration,
                &holder,
                &login,
                100
            ),
            Err(Unusable::RoleNotHeld)
        );
        holder.roles.push(1);
        token.expires_at = Some(100);
        assert_eq!(
            check_usable(
                &token.state,
                token.expires_at,
                &integration,
                &holder,
                &login,
                100
            ),
            Err(Unusable::TokenExpired)
        );
        token.expires_at = None;
        token.state = TokenState::Inactive;
        assert_eq!(
            check_usable(
                &token.state,
                token.expires_at,
                &integration,
                &holder,
                &login,
                100
            ),
            Err(Unusable::TokenInactive)
        );
        token.state = TokenState::Revoked {
            at: 5,
            by: "x".into(),
        };
        assert_eq!(
            check_usable(
                &token.state,
                token.expires_at,
                &integration,
                &holder,
                &login,
                100
            ),
            Err(Unusable::TokenRevoked)
        );
    }
}
