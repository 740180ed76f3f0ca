//! Parsing of `Authorization: NLAuth …`, NetSuite's user-credential scheme used by
//! `/rest/issuetoken` and `/rest/roles`. Values are RFC 3986-decoded; the password is held in a
//! zeroizing buffer and never shown by `Debug`.

use zeroize::Zeroizing;

use crate::OAuthError;
use crate::header::{Scheme, for_each_scheme_pair};

/// Passwords and emails may be sent as they are, outside ASCII too.
const NLAUTH: Scheme = Scheme {
    name: "NLAuth",
    ascii_only: false,
};

/// The fields of an NLAuth header.
#[derive(Clone, PartialEq, Eq)]
pub struct NlAuthHeader {
    /// Required by every endpoint except `/rest/roles`, which finds the user's accounts.
    pub account: Option<String>,
    pub email: String,
    /// The user's password (`nlauth_signature`).
    pub password: Zeroizing<String>,
    pub role: Option<String>,
    pub application_id: Option<String>,
    /// A TOTP code, accepted by the issuetoken endpoint only.
    pub otp: Option<Zeroizing<String>>,
}

impl NlAuthHeader {
    pub fn parse(value: &str) -> Result<Self, OAuthError> {
        let mut account = None;
        let mut email = None;
        let mut password = None;
        let mut role = None;
        let mut application_id = None;
        let mut otp = None;
        for_each_scheme_pair(value, &NLAUTH, |name, _, value, _| {
            // The password and the code go straight into wiped buffers, so that one given
            // twice, or a header refused later, leaves no copy behind.
            let secret = match name {
                "nlauth_signature" => Some(&mut password),
                "nlauth_otp" => Some(&mut otp),
                _ => None,
            };
            let given_twice = if let Some(slot) = secret {
                slot.replace(Zeroizing::new(value.into_owned())).is_some()
            } else {
                let slot = match name {
                    "nlauth_account" => &mut account,
                    "nlauth_email" => &mut email,
                    "nlauth_role" => &mut role,
                    "nlauth_application_id" => &mut application_id,
                    // Unknown names are ignored, as NetSuite's clients add their own over time.
                    _ => return Ok(()),
                };
                slot.replace(value.into_owned()).is_some()
            };
            if given_twice {
                return Err(OAuthError::DuplicateParameter { name: name.into() });
            }
            Ok(())
        })?;
        Ok(Self {
            account,
            email: email.ok_or(OAuthError::MissingParameter {
                name: "nlauth_email",
            })?,
            password: password.ok_or(OAuthError::MissingParameter {
                name: "nlauth_signature",
            })?,
            role,
            application_id,
            otp,
        })
    }
}

impl std::fmt::Debug for NlAuthHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NlAuthHeader")
            .field("account", &self.account)
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("role", &self.role)
            .field("application_id", &self.application_id)
            .field("otp", &self.otp.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_fields_decoded() {
        let header = NlAuthHeader::parse(
            "NLAuth nlauth_account=1234567_SB1, nlauth_email=jo%40example.com, \
             nlauth_signature=p%40ss%20w%2Crd, nlauth_role=3, nlauth_application_id=ABC, nlauth_otp=123456",
        )
        .unwrap();
        assert_eq!(header.account.as_deref(), Some("1234567_SB1"));
        assert_eq!(header.email, "jo@example.com");
        assert_eq!(header.password.as_str(), "p@ss w,rd");
        assert_eq!(header.role.as_deref(), Some("3"));
        assert_eq!(header.application_id.as_deref(), Some("ABC"));
        assert_eq!(header.otp.as_deref().map(String::as_str), Some("123456"));
    }

    #[test]
    fn quoted_values_and_missing_optional_fields() {
        let header = NlAuthHeader::parse(
            r#"nlauth nlauth_account="1", nlauth_email="a@b.c", nlauth_signature="pw""#,
        )
        .unwrap();
        assert_eq!(header.role, None);
        assert_eq!(header.otp, None);
    }

    #[test]
    fn missing_required_fields_are_named() {
        let without_account = NlAuthHeader::parse("NLAuth nlauth_email=a, nlauth_signature=b");
        assert_eq!(without_account.unwrap().account, None);
        for (input, missing) in [
            (
                "NLAuth nlauth_account=1, nlauth_signature=b",
                "nlauth_email",
            ),
            (
                "NLAuth nlauth_account=1, nlauth_email=a",
                "nlauth_signature",
            ),
        ] {
            assert_eq!(
                NlAuthHeader::parse(input).unwrap_err(),
                OAuthError::MissingParameter { name: missing }
            );
        }
    }

    #[test]
    fn rejects_duplicates_wrong_scheme_and_bad_encoding() {
        assert_eq!(
            NlAuthHeader::parse("NLAuth nlauth_account=1, nlauth_account=2")
                .unwrap_err()
                .code(),
            "duplicate_parameter"
        );
        assert_eq!(
            NlAuthHeader::parse("OAuth nlauth_account=1")
                .unwrap_err()
                .code(),
            "wrong_scheme"
        );
        assert_eq!(
            NlAuthHeader::parse("NLAuth nlauth_account=%4")
                .unwrap_err()
                .code(),
            "invalid_percent_encoding"
        );
    }

    #[test]
    fn debug_hides_password_and_otp() {
        let header = NlAuthHeader::parse(
            "NLAuth nlauth_account=1, nlauth_email=a, nlauth_signature=hunter2, nlauth_otp=987654",
        )
        .unwrap();
        let debug = format!("{header:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("987654"),
            "{debug}"
        );
    }
}
