//! A secret in memory: zeroized on drop, never printed.

use zeroize::Zeroizing;

/// A consumer secret, token secret or TOTP secret in plaintext. Only [`Secret::expose`] reads
/// it; `Debug` shows `Secret(***)`; there is no `Display` and no `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time equality, for comparing against something a client sent.
    pub fn ct_eq(&self, other: &str) -> bool {
        subtle::ConstantTimeEq::ct_eq(self.0.as_bytes(), other.as_bytes()).into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The last four characters of an identifier, as NetSuite's token inventory shows them.
pub fn last4(value: &str) -> &str {
    let start = value
        .char_indices()
        .rev()
        .nth(3)
        .map_or(0, |(index, _)| index);
    value.get(start..).unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let secret = Secret::new("s3cr3t-value".into());
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert!(secret.ct_eq("s3cr3t-value") && !secret.ct_eq("s3cr3t-valuf"));
    }

    #[test]
    fn last_four() {
        assert_eq!(last4("abcdef"), "cdef");
        assert_eq!(last4("ab"), "ab");
    }
}
