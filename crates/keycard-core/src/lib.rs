//! keycard's domain: accounts, integration records, roles, users and access tokens, the audit
//! events about them, and NetSuite's rules over them. Pure: no sockets, no SQL, no clock (times
//! are Unix seconds passed in), no randomness (callers hand in generated credentials).

pub mod account;
pub mod audit;
pub mod error;
pub mod integration;
pub mod role;
pub mod secret;
pub mod time;
pub mod token;
pub mod user;

pub use account::{Account, AccountId, AccountKind, Feature, ServiceTier};
pub use audit::{AdminAction, AdminEvent, ChangeEvent, EntityKind, LoginRecord, Text};
pub use error::RuleError;
pub use integration::{Integration, IntegrationFlags, IntegrationState};
pub use role::{Level, Role, SetupPermission};
pub use secret::Secret;
pub use token::{AccessToken, Actor, TokenState, Unusable};
pub use user::{User, UserStatus};

/// Unix time in seconds. The domain never reads a clock; callers pass `now`.
pub type UnixTime = i64;
