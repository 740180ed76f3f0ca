//! Pre-signing. Every request of a run is signed and serialized to bytes before the clock starts,
//! so the timed loop only writes bytes and reads answers: signing (~2 µs of HMAC and base-string
//! work) never limits the rate the generator can offer.

use std::path::Path;

use anyhow::{Context, Result};
use keycard_oauth1::client::{ClientRequest, Credentials, SignOptions, sign};
use serde::Deserialize;

/// One account's credentials: one integration, many tokens (written by the harness' setup).
#[derive(Deserialize)]
pub struct Creds {
    pub realm: String,
    pub consumer_key: String,
    pub consumer_secret: String,
    pub tokens: Vec<TokenCreds>,
}

#[derive(Deserialize)]
pub struct TokenCreds {
    pub token_id: String,
    pub token_secret: String,
}

impl Creds {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let creds: Self = serde_json::from_str(&text).context("bad credentials file")?;
        anyhow::ensure!(
            !creds.tokens.is_empty(),
            "the credentials file lists no token"
        );
        Ok(creds)
    }
}

/// What the server should make of a request; it decides which histogram its latency goes to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// Correctly signed, fresh nonce: must succeed (2xx).
    Good,
    /// Signed with a wrong token secret: must be refused (401).
    BadSignature,
    /// A byte-for-byte copy of a warm-up request, whose nonce the server has already seen.
    Replay,
}

pub struct Planned {
    pub bytes: Vec<u8>,
    pub kind: Kind,
}

/// The request every planned request is a signed copy of.
pub struct Target {
    pub method: String,
    /// The `Host` header, which is also the host the client signs (e.g. `localhost:8910`).
    pub host: String,
    /// Path and query, e.g. `/rest/tokeninfo`.
    pub path: String,
    /// A JSON body (not signed: OAuth signs only form bodies).
    pub body: Option<String>,
}

pub struct Signer<'a> {
    pub creds: &'a Creds,
    pub target: &'a Target,
    /// Random per process: nonces are `prefix + index`, unique without a lookup.
    pub nonce_prefix: String,
    pub timestamp: String,
}

impl Signer<'_> {
    pub fn new<'a>(creds: &'a Creds, target: &'a Target) -> Signer<'a> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Signer {
            creds,
            target,
            nonce_prefix: format!("{:08x}", random_u32()),
            timestamp: now.to_string(),
        }
    }

    /// The serialized request number `index` (unique per process; it picks the token and the
    /// nonce). `bad_signature` signs with a wrong token secret.
    pub fn request(&self, index: u64, bad_signature: bool) -> Result<Vec<u8>> {
        let tokens = &self.creds.tokens;
        let token = &tokens[usize::try_from(index % tokens.len() as u64)?];
        let wrong_secret;
        let token_secret = if bad_signature {
            wrong_secret = format!("{}x", token.token_secret);
            &wrong_secret
        } else {
            &token.token_secret
        };
        // 20 characters, like NetSuite's own clients send.
        let nonce = format!("{}{:012x}", self.nonce_prefix, index);
        let url = format!("http://{}{}", self.target.host, self.target.path);
        let mut options = SignOptions::new(&nonce, &self.timestamp);
        options.realm = Some(&self.creds.realm);
        let signed = sign(
            &ClientRequest {
                method: &self.target.method,
                url: &url,
                form_body: None,
            },
            &Credentials {
                consumer_key: &self.creds.consumer_key,
                consumer_secret: &self.creds.consumer_secret,
                token: Some(&token.token_id),
                token_secret,
            },
            &options,
        )
        .map_err(|e| anyhow::anyhow!("cannot sign: {e}"))?;
        Ok(serialize(self.target, &signed.authorization))
    }
}

pub fn serialize(target: &Target, authorization: &str) -> Vec<u8> {
    let mut out = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nAuthorization: {authorization}\r\nAccept: application/json\r\n",
        target.method, target.path, target.host
    );
    if let Some(body) = &target.body {
        out.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// A thread's share of a run: warm-up requests (all good) and measured requests, with about
/// `fail_ppm` per million of the measured ones bad signatures or replays (half each).
pub fn plan(
    signer: &Signer<'_>,
    thread: u64,
    warmup: usize,
    measured: usize,
    fail_ppm: u64,
) -> Result<(Vec<Planned>, Vec<Planned>)> {
    // Disjoint index ranges per thread keep nonces unique across threads.
    let base = thread << 40;
    let warm: Vec<Planned> = (0..warmup as u64)
        .map(|i| {
            Ok(Planned {
                bytes: signer.request(base + i, false)?,
                kind: Kind::Good,
            })
        })
        .collect::<Result<_>>()?;
    anyhow::ensure!(
        fail_ppm == 0 || !warm.is_empty(),
        "replays copy warm-up requests: give --warmup > 0"
    );
    let mut rng = SplitMix(0x5eed ^ thread);
    let mut out = Vec::with_capacity(measured);
    for i in 0..measured as u64 {
        let index = base + warmup as u64 + i;
        let kind = if rng.next() % 1_000_000 < fail_ppm {
            if rng.next() & 1 == 0 {
                Kind::BadSignature
            } else {
                Kind::Replay
            }
        } else {
            Kind::Good
        };
        let bytes = match kind {
            Kind::Good => signer.request(index, false)?,
            Kind::BadSignature => signer.request(index, true)?,
            Kind::Replay => {
                let pick = usize::try_from(rng.next() % warm.len() as u64)?;
                warm[pick].bytes.clone()
            }
        };
        out.push(Planned { bytes, kind });
    }
    Ok((warm, out))
}

/// Deterministic placement of failures, so two runs of a scenario send the same mix.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    // A nonce prefix only needs to differ between runs; the clock is a fine fallback.
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_err()
    {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    }
    u32::from_le_bytes(bytes)
}
