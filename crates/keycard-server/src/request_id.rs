//! Request ids: the `x-request-id` header, the SOAP `nsId` and the audit trail's key for one
//! attempt.

use std::fmt;
use std::ops::Deref;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// 16 lower-case hex characters: a per-process prefix (24 bits) and a counter (40 bits), so no
/// system call per request. `keycard serve` sets the prefix to the directory's next process
/// number ([`set_process_number`]), which makes ids unique across every process that writes one
/// audit trail; elsewhere (tests, embedders) it is random, read once. Ids of one process sort
/// in issue order, which keeps the audit trail's request-id index appending at one place
/// instead of touching a random page per row (the load benchmark measured that). Inline and
/// `Copy`: every request carries one through several layers.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId([u8; 16]);

static PREFIX: OnceLock<u64> = OnceLock::new();
const PREFIX_MASK: u64 = 0xff_ffff;

/// Makes `number` (its low 24 bits: distinct for 16,777,216 consecutive process numbers) the
/// prefix of this process's request ids. Call it before the first id is issued: false when the
/// prefix was already fixed, which then stays.
pub fn set_process_number(number: u64) -> bool {
    PREFIX.set(number & PREFIX_MASK).is_ok()
}

impl RequestId {
    /// The next id.
    pub fn next() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let prefix = *PREFIX.get_or_init(|| {
            let mut bytes = [0u8; 8];
            // Without the OS generator ids are still unique in this process.
            let _ = getrandom::fill(&mut bytes);
            u64::from_le_bytes(bytes) & PREFIX_MASK
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed) & 0xff_ffff_ffff;
        Self::from_value((prefix << 40) | n)
    }

    fn from_value(value: u64) -> Self {
        Self(keycard_core::audit::request_id_digits(value))
    }

    pub fn as_str(&self) -> &str {
        // Hex digits only, so always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl Deref for RequestId {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::RequestId;

    #[test]
    fn ids_are_unique_ordered_hex() {
        let ids: Vec<RequestId> = (0..100_000).map(|_| RequestId::next()).collect();
        assert!(ids.iter().all(|id| {
            id.len() == 16
                && id
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        }));
        assert!(ids.windows(2).all(|w| w[0].as_str() < w[1].as_str()));
        assert_eq!(
            RequestId::from_value(0x0123_4567_89ab_cdef).as_str(),
            "0123456789abcdef"
        );
    }
}
