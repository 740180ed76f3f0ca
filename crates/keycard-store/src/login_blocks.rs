//! The SQLite login trail's storage format: records in blocks, one row per batch written.
//!
//! A row per record cost about 9,900 instructions of a request's 65,000 (13 bound texts that
//! rusqlite copies, a 13-column record, a B-tree insert for the table and one for the text
//! request-id index), all on the server's one core. A block is a batch's records end to end
//! in a compact encoding, one INSERT per batch; the block's request ids, as integers
//! ([`request_key`]), go into an index as ranges ([`key_ranges`]: usually one per block), so a
//! lookup by id reads one block. Listings decode blocks
//! newest first and filter here ([`matches`]): the plan SQLite ran on rows (walk newest first,
//! stop at the limit), without a row per record. PostgreSQL keeps a row per record: its
//! server, not the request's core, does that work.
//!
//! Format, version 3 (written since the twenty-fifth session): the byte `3`, then per record:
//! - `at` as a zigzag varint of its difference from the previous record's (from 0 for the
//!   first): records of a block are seconds apart at most, so one byte;
//! - the request id as a varint `n`: keycard's own ids (16 lower-case hex digits, counting up)
//!   as `n = zigzag(value - previous value) + 1`, the previous value being that of the last id
//!   so written in the block (0 before any): one or two bytes instead of seventeen; `n = 0`
//!   for any other id, followed by it as a version-2 field (below);
//! - which of the eleven other fields differ from the previous record's (before the first
//!   record, all are absent), as a varint of bits in [`CHANGE_ORDER`]: the token name, the
//!   path, the status, the detail, the diagnosis, the user, the integration, the role, the
//!   account, the IP and the surface. The fields that change most come first, so the mask is
//!   one byte unless the role, account, IP or surface changed;
//! - each field that differs, in that order, as a varint `n`: 0 when absent (`None`, or a
//!   null diagnosis), else `n - 1` bytes of UTF-8 that follow. The diagnosis is JSON text.
//!
//! A block's records mostly share their client, account, integration, user, path and outcome,
//! so a record is usually its time, its id, one byte of mask and its token's name.
//!
//! Version 2 (written from the twenty-first session to the twenty-fourth; read): `at` and the
//! request id as in version 3, then the eleven fields in [`LoginRecord`]'s order, each a
//! varint `n`: 0 when absent, 1 when equal to the previous record's, else `n - 2` bytes of
//! UTF-8; the diagnosis is never a repeat. Version 1 (read): per record `at` as a zigzag
//! varint of its value and the twelve fields, the request id among them, each as in version
//! 2. The benchmark's tokeninfo records (a token name of ten characters that changes from
//! one record to the next) took about 26 bytes in version 2 and 15 in version 3, so the
//! trail's log, checkpoints and file grow by little more than half as much.
//! `bench/harness/audit.py` decodes all three independently. A keycard from before version 3
//! reads none of its blocks (its trail reads fail as on a damaged block): like the
//! migrations, the upgrade is one way.

use keycard_core::audit::{request_id_digits, request_id_value};
use keycard_core::{LoginRecord, Text};

use crate::StoreError;
use crate::audit::LoginQuery;

const VERSION: u8 = 3;
/// The second format, still read: a byte per field.
const VERSION_2: u8 = 2;
/// The first format, still read.
const VERSION_1: u8 = 1;
const ABSENT: u64 = 0;
/// Versions 1 and 2: the previous record's value.
const REPEAT: u64 = 1;
/// Versions 2 and 3: a request id that is not keycard's follows as a version-2 field.
const OTHER_ID: u64 = 0;
/// Version 3: the fields by the bit that marks them changed ([`texts`]' indexes, and
/// [`DIAGNOSIS`]): those that change most often first.
const CHANGE_ORDER: [usize; 11] = [
    TOKEN_NAME,
    REQUEST_URI,
    STATUS,
    DETAIL,
    DIAGNOSIS,
    USER,
    INTEGRATION,
    ROLE,
    ACCOUNT,
    IP,
    SURFACE,
];
/// Text fields: every field after `at` but the diagnosis.
const TEXTS: usize = 11;

/// The text fields of `r` in the format's order.
fn texts(r: &LoginRecord) -> [Option<&str>; TEXTS] {
    [
        Some(&r.request_id),
        Some(&r.ip),
        r.account.as_deref(),
        r.integration.as_deref(),
        r.token_name.as_deref(),
        r.user.as_deref(),
        r.role.as_deref(),
        Some(&r.surface),
        Some(&r.request_uri),
        Some(&r.status),
        Some(&r.detail),
    ]
}

/// Appends the block encoding of `records` to `out`, and returns their request keys
/// ([`request_key`]) in order: the encoding reads keycard's ids as numbers anyway.
pub(crate) fn encode(records: &[LoginRecord], out: &mut Vec<u8>) -> Vec<i64> {
    let mut keys = Vec::with_capacity(records.len());
    out.push(VERSION);
    // Before the first record every field counts as absent.
    let mut previous: [Option<&str>; TEXTS] = [None; TEXTS];
    let mut previous_diagnosis: Option<String> = None;
    let (mut previous_at, mut previous_id) = (0i64, 0u64);
    for r in records {
        put_varint(out, zigzag(r.at.wrapping_sub(previous_at)));
        previous_at = r.at;
        let value = request_id_value(&r.request_id);
        keys.push(key_of(&r.request_id, value));
        let step = value.and_then(|value| {
            let n = zigzag(signed(value.wrapping_sub(previous_id))).checked_add(1)?;
            previous_id = value;
            Some(n)
        });
        if let Some(n) = step {
            put_varint(out, n);
        } else {
            put_varint(out, OTHER_ID);
            put_text(out, &r.request_id);
        }
        let fields = texts(r);
        // Most attempts succeed and carry no diagnosis: no serializing for those.
        let diagnosis = match &r.diagnosis {
            serde_json::Value::Null => None,
            diagnosis => Some(diagnosis.to_string()),
        };
        let mut changed = 0u64;
        for (bit, &field) in CHANGE_ORDER.iter().enumerate() {
            let now = pick(&fields, diagnosis.as_deref(), field);
            let before = pick(&previous, previous_diagnosis.as_deref(), field);
            if !same_field(now, before) {
                changed |= 1 << bit;
            }
        }
        put_varint(out, changed);
        for (bit, &field) in CHANGE_ORDER.iter().enumerate() {
            if changed & (1 << bit) != 0 {
                put_present(out, pick(&fields, diagnosis.as_deref(), field));
            }
        }
        previous = fields;
        previous_diagnosis = diagnosis;
    }
    keys
}

/// Field `field` of a record whose texts are `texts` ([`DIAGNOSIS`] for `diagnosis`).
fn pick<'a>(
    texts: &[Option<&'a str>; TEXTS],
    diagnosis: Option<&'a str>,
    field: usize,
) -> Option<&'a str> {
    if field == DIAGNOSIS {
        diagnosis
    } else {
        texts.get(field).copied().flatten()
    }
}

/// A record as it lies in a block: its texts borrowed, so a read can filter a block's records
/// before it copies the few it keeps ([`Stored::to_record`]).
pub(crate) struct Stored<'a> {
    at: i64,
    request_id: StoredId<'a>,
    /// In [`texts`]' order; the request id's place is empty (it is in `request_id`).
    texts: [Option<&'a str>; TEXTS],
    diagnosis: Option<&'a str>,
}

/// A request id as a block holds it.
#[derive(Clone, Copy)]
enum StoredId<'a> {
    Text(&'a str),
    /// keycard's own, written as a number: its 16 hex digits, made again.
    Keycard([u8; 16]),
}

const REQUEST_ID: usize = 0;
const IP: usize = 1;
const ACCOUNT: usize = 2;
const INTEGRATION: usize = 3;
const TOKEN_NAME: usize = 4;
const USER: usize = 5;
const ROLE: usize = 6;
const SURFACE: usize = 7;
const REQUEST_URI: usize = 8;
const STATUS: usize = 9;
const DETAIL: usize = 10;
/// The diagnosis, after the texts (version 3's [`CHANGE_ORDER`]).
const DIAGNOSIS: usize = TEXTS;

impl Stored<'_> {
    fn text(&self, index: usize) -> Option<&str> {
        if index != REQUEST_ID {
            return self.texts.get(index).copied().flatten();
        }
        match &self.request_id {
            StoredId::Text(text) => Some(text),
            StoredId::Keycard(digits) => std::str::from_utf8(digits).ok(),
        }
    }

    /// The record, owned. Fails on a required field left absent or a diagnosis that is not
    /// JSON.
    pub(crate) fn to_record(&self) -> Result<LoginRecord, StoreError> {
        let [
            _,
            ip,
            account,
            integration,
            token_name,
            user,
            role,
            surface,
            request_uri,
            status,
            detail,
        ] = self.texts.map(|text| text.map(Text::from));
        let required = |field: Option<Text>| field.ok_or_else(corrupt);
        Ok(LoginRecord {
            at: self.at,
            request_id: required(self.text(REQUEST_ID).map(Text::from))?,
            ip: required(ip)?,
            account,
            integration,
            token_name,
            user,
            role,
            surface: required(surface)?,
            request_uri: required(request_uri)?,
            status: required(status)?,
            detail: required(detail)?,
            diagnosis: match self.diagnosis {
                None => serde_json::Value::Null,
                Some(text) => serde_json::from_str(text).map_err(|_| corrupt())?,
            },
        })
    }
}

/// The records of a block as stored, in the order they were written.
pub(crate) fn read(block: &[u8]) -> Result<Vec<Stored<'_>>, StoreError> {
    let mut reader = Reader { rest: block };
    let version = reader.byte()?;
    if !(VERSION_1..=VERSION).contains(&version) {
        return Err(corrupt());
    }
    // Versions 2 and 3 write `at` and keycard's ids as differences.
    let differences = version >= VERSION_2;
    let mut records: Vec<Stored<'_>> = Vec::new();
    let (mut previous_at, mut previous_id) = (0i64, 0u64);
    while !reader.rest.is_empty() {
        let at = unzigzag(reader.varint()?);
        let at = if differences {
            previous_at.wrapping_add(at)
        } else {
            at
        };
        previous_at = at;
        let request_id = if differences {
            match reader.varint()? {
                OTHER_ID => match reader.field()? {
                    Field::Text(text) => StoredId::Text(text),
                    Field::Absent | Field::Repeat => return Err(corrupt()),
                },
                n => {
                    previous_id = previous_id.wrapping_add(unsigned(unzigzag(n - 1)));
                    StoredId::Keycard(request_id_digits(previous_id))
                }
            }
        } else {
            match reader.field()? {
                Field::Text(text) => StoredId::Text(text),
                Field::Repeat => records.last().ok_or_else(corrupt)?.request_id,
                Field::Absent => return Err(corrupt()),
            }
        };
        if version == VERSION {
            let (texts, diagnosis) = changed_fields(&mut reader, records.last())?;
            records.push(Stored {
                at,
                request_id,
                texts,
                diagnosis,
            });
            continue;
        }
        let mut texts = [None; TEXTS];
        for (i, slot) in texts.iter_mut().enumerate().skip(REQUEST_ID + 1) {
            *slot = match reader.field()? {
                Field::Absent => None,
                Field::Repeat => Some(
                    records
                        .last()
                        .and_then(|previous| previous.texts.get(i).copied().flatten())
                        .ok_or_else(corrupt)?,
                ),
                Field::Text(text) => Some(text),
            };
        }
        let diagnosis = match reader.field()? {
            Field::Absent => None,
            Field::Text(text) => Some(text),
            Field::Repeat => return Err(corrupt()),
        };
        records.push(Stored {
            at,
            request_id,
            texts,
            diagnosis,
        });
    }
    Ok(records)
}

/// Version 3: a record's fields, those the mask marks changed read from `reader`, the others
/// the previous record's (none before the first).
fn changed_fields<'a>(
    reader: &mut Reader<'a>,
    previous: Option<&Stored<'a>>,
) -> Result<([Option<&'a str>; TEXTS], Option<&'a str>), StoreError> {
    let changed = reader.varint()?;
    if changed >> CHANGE_ORDER.len() != 0 {
        return Err(corrupt());
    }
    let (mut texts, mut diagnosis) =
        previous.map_or(([None; TEXTS], None), |p| (p.texts, p.diagnosis));
    for (bit, &field) in CHANGE_ORDER.iter().enumerate() {
        if changed & (1 << bit) == 0 {
            continue;
        }
        let value = reader.present()?;
        match texts.get_mut(field) {
            Some(slot) => *slot = value,
            None => diagnosis = value,
        }
    }
    Ok((texts, diagnosis))
}

/// The records of a block, owned, in the order they were written.
#[cfg(test)]
fn decode(block: &[u8]) -> Result<Vec<LoginRecord>, StoreError> {
    read(block)?.iter().map(Stored::to_record).collect()
}

/// The integer a request id is indexed under. keycard's own ids are 16 hex digits that count
/// up within a process, so their value keeps the index appending at one end; any other text
/// (records from tests, embedders) is hashed. Equal ids give equal keys; a shared key only
/// means one more block to decode, as lookups compare the ids themselves.
pub(crate) fn request_key(request_id: &str) -> i64 {
    key_of(request_id, request_id_value(request_id))
}

/// [`request_key`] of `request_id`, whose [`request_id_value`] is `value`.
fn key_of(request_id: &str, value: Option<u64>) -> i64 {
    signed(value.unwrap_or_else(|| {
        // FNV-1a: stable across processes and releases, unlike std's hasher.
        request_id
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            })
    }))
}

/// The widest key range one row of `login_audit_key_ranges` covers. A lookup reads the ranges
/// that start up to this far below its key: with keycard's ids (one process's count up, a
/// block holds about 32 nearly consecutive ones) about `MAX_KEY_RANGE_WIDTH / 32` rows, and
/// at most this many where migration 0008 made a range of each key written before. Wider
/// spreads (a record written 80 ms after its request's id at 50k req/s) become more ranges.
pub(crate) const MAX_KEY_RANGE_WIDTH: u64 = 1 << 12;

/// The request `keys` of a block's records ([`encode`] gives them) as the fewest ranges
/// `(first, last)`, each no wider than
/// [`MAX_KEY_RANGE_WIDTH`], that cover every key: one row per block instead of one per record
/// (the per-record rows cost about 2,000 instructions a request). Hashed keys of other ids
/// land in ranges of their own, or share one with a key nearby: a range may hold keys of
/// requests not in its block, and a lookup compares the ids it finds.
pub(crate) fn key_ranges(mut keys: Vec<i64>) -> Vec<(i64, i64)> {
    keys.sort_unstable();
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for key in keys {
        match ranges.last_mut() {
            Some((first, last)) if key.abs_diff(*first) <= MAX_KEY_RANGE_WIDTH => *last = key,
            _ => ranges.push((key, key)),
        }
    }
    ranges
}

/// Whether `record` passes every filter of `query` (its limit aside), as the SQL on rows
/// decides it: a filter on a column the record leaves empty does not match.
pub(crate) fn matches(query: &LoginQuery, record: &Stored<'_>) -> bool {
    let equal = |filter: Option<&String>, index| {
        filter.is_none_or(|wanted| record.text(index) == Some(wanted.as_str()))
    };
    equal(query.request_id.as_ref(), REQUEST_ID)
        && equal(query.account.as_ref(), ACCOUNT)
        && query.since.is_none_or(|since| record.at >= since)
        && query.until.is_none_or(|until| record.at <= until)
        && equal(query.status.as_ref(), STATUS)
        && equal(query.detail.as_ref(), DETAIL)
        && equal(query.user.as_ref(), USER)
        && equal(query.integration.as_ref(), INTEGRATION)
        && equal(query.token_name.as_ref(), TOKEN_NAME)
        && equal(query.ip.as_ref(), IP)
        && equal(query.surface.as_ref(), SURFACE)
}

/// The same 64 bits, read as signed (a difference of two ids, which may be negative).
fn signed(value: u64) -> i64 {
    i64::from_ne_bytes(value.to_ne_bytes())
}

fn unsigned(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes())
}

fn zigzag(value: i64) -> u64 {
    u64::from_ne_bytes(((value << 1) ^ (value >> 63)).to_ne_bytes())
}

fn unzigzag(value: u64) -> i64 {
    i64::from_ne_bytes((value >> 1).to_ne_bytes()) ^ -i64::from_ne_bytes((value & 1).to_ne_bytes())
}

/// Whether a field is the previous record's (`previous`), as [`encode`] asks for eleven
/// fields a record: both absent, or equal texts.
fn same_field(now: Option<&str>, previous: Option<&str>) -> bool {
    match (now, previous) {
        (None, None) => true,
        (Some(now), Some(previous)) => same_text(now.as_bytes(), previous.as_bytes()),
        _ => false,
    }
}

/// `a == b`, inline for the short texts a record's fields mostly are (up to 16 bytes: two
/// overlapping words, or a few bytes). `==` on slices calls the C library's `memcmp`, and
/// with ten of those a record the encoder's compares took about 1% of a loaded server's CPU.
fn same_text(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| {
        s.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map(u64::from_le_bytes)
    };
    match n {
        0..8 => a.iter().zip(b).all(|(x, y)| x == y),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(u8::try_from(value & 0x7f).unwrap_or_default() | 0x80);
        value >>= 7;
    }
    out.push(u8::try_from(value).unwrap_or_default());
}

/// A version-2 field's text (for a request id that is not keycard's).
fn put_text(out: &mut Vec<u8>, text: &str) {
    put_varint(out, text.len() as u64 + 2);
    out.extend_from_slice(text.as_bytes());
}

/// A version-3 field: absent, or its text.
fn put_present(out: &mut Vec<u8>, field: Option<&str>) {
    match field {
        None => put_varint(out, ABSENT),
        Some(text) => {
            put_varint(out, text.len() as u64 + 1);
            out.extend_from_slice(text.as_bytes());
        }
    }
}

fn corrupt() -> StoreError {
    StoreError::Corrupt {
        what: "a block of the login audit trail",
    }
}

/// Reads a block front to back; any shortfall or malformed field is [`corrupt`].
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, StoreError> {
        let (&first, rest) = self.rest.split_first().ok_or_else(corrupt)?;
        self.rest = rest;
        Ok(first)
    }

    fn varint(&mut self) -> Result<u64, StoreError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt())
    }

    fn field(&mut self) -> Result<Field<'a>, StoreError> {
        let len = match self.varint()? {
            ABSENT => return Ok(Field::Absent),
            REPEAT => return Ok(Field::Repeat),
            n => usize::try_from(n - 2).map_err(|_| corrupt())?,
        };
        self.text(len).map(Field::Text)
    }

    /// A version-3 field.
    fn present(&mut self) -> Result<Option<&'a str>, StoreError> {
        match self.varint()? {
            ABSENT => Ok(None),
            n => self
                .text(usize::try_from(n - 1).map_err(|_| corrupt())?)
                .map(Some),
        }
    }

    fn text(&mut self, len: usize) -> Result<&'a str, StoreError> {
        if len > self.rest.len() {
            return Err(corrupt());
        }
        let (text, rest) = self.rest.split_at(len);
        self.rest = rest;
        std::str::from_utf8(text).map_err(|_| corrupt())
    }
}

/// One encoded field.
enum Field<'a> {
    Absent,
    /// The previous record's value.
    Repeat,
    Text(&'a str),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn texts_compare_as_equal_exactly_when_they_are() {
        let mut texts = Vec::new();
        for n in 0..=40u8 {
            let base: Vec<u8> = (0..n).map(|i| b'a' + i % 26).collect();
            texts.push(base.clone());
            // The same length, differing at the first, a middle or the last byte.
            for at in [0, n / 2, n.saturating_sub(1)] {
                let mut variant = base.clone();
                if let Some(byte) = variant.get_mut(usize::from(at)) {
                    *byte = b'Z';
                    texts.push(variant);
                }
            }
        }
        for a in &texts {
            for b in &texts {
                assert_eq!(same_text(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    fn record(i: i64) -> LoginRecord {
        LoginRecord {
            at: 1_700_000_000 + i,
            request_id: format!("{i:016x}").into(),
            ip: "2001:db8::1".into(),
            account: Some("1234567_SB1".into()),
            integration: (i % 2 == 0).then(|| "Order Sync — ünïcode".into()),
            token_name: None,
            user: Some("ap@acme.example".into()),
            role: Some("Administrator".into()),
            surface: "rest".into(),
            request_uri: "/rest/tokeninfo?q='1'".into(),
            status: if i % 3 == 0 { "Failure" } else { "Success" }.into(),
            detail: if i % 3 == 0 { "InvalidSignature" } else { "" }.into(),
            diagnosis: if i % 3 == 0 {
                serde_json::json!({ "problem": "mismatch", "n": i })
            } else {
                serde_json::Value::Null
            },
        }
    }

    #[test]
    fn blocks_round_trip_every_field() {
        let mut records: Vec<_> = (0..40).map(record).collect();
        records[1].at = -5;
        records[2].at = i64::MAX;
        records[3].at = i64::MIN;
        records[4].detail = "x".repeat(300).into();
        let mut block = Vec::new();
        encode(&records, &mut block);
        assert_eq!(decode(&block).unwrap(), records);
        let mut empty = Vec::new();
        encode(&[], &mut empty);
        assert!(decode(&empty).unwrap().is_empty());
    }

    #[test]
    fn damaged_blocks_are_errors_not_panics() {
        let mut block = Vec::new();
        encode(&(0..3).map(record).collect::<Vec<_>>(), &mut block);
        assert!(decode(&[]).is_err());
        assert!(decode(&[4]).is_err(), "an unknown version");
        assert!(decode(&[0]).is_err(), "an unknown version");
        // Versions 2 and 3: another id must follow as text; a delta runs past the block's end.
        for version in [2, 3] {
            assert!(decode(&[version, 0, 0, 0]).is_err());
            assert!(decode(&[version, 0, 0x80]).is_err());
        }
        // Version 3: a mask bit past the eleven fields; a changed field missing; a required
        // field (the IP) absent in the first record, where nothing changed.
        assert!(decode(&[3, 0, 3, 0x80, 0x10]).is_err());
        assert!(decode(&[3, 0, 3, 0b1]).is_err());
        assert!(decode(&[3, 0, 3, 0]).is_err());
        for len in 1..block.len() {
            // Cut inside a record: never a panic; an error unless the cut falls on a boundary.
            let _ = decode(&block[..len]);
        }
        assert!(decode(&block[..block.len() - 1]).is_err());
        let mut bad_utf8 = block.clone();
        let ip = bad_utf8.windows(4).position(|w| w == b"2001").unwrap();
        bad_utf8[ip] = 0xff;
        assert!(decode(&bad_utf8).is_err());
        assert!(
            decode(&[
                1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ])
            .is_err()
        );
    }

    #[test]
    fn repeats_shrink_a_block_and_need_a_previous_value() {
        let records: Vec<_> = (1..=32).map(|i| record(i * 3 + 1)).collect();
        let mut block = Vec::new();
        encode(&records, &mut block);
        assert_eq!(decode(&block).unwrap(), records);
        // at, the id and the alternating integration; the rest repeats.
        let fresh: usize = records.iter().map(|r| 60 + r.request_id.len()).sum();
        assert!(block.len() < fresh, "{} bytes", block.len());
        // Records by hand in version 1: at 0, ids "a" and "b", the account field given, no
        // integration, token, user or role, surface "s", path "/", Success, no detail, no
        // diagnosis.
        let block = |accounts: &[&[u8]]| {
            let mut bytes = vec![VERSION_1];
            for account in accounts {
                bytes.extend_from_slice(&[0, 3, b'a', 3, b'b']);
                bytes.extend_from_slice(account);
                bytes.extend_from_slice(&[0, 0, 0, 0, 3, b's', 3, b'/', 9]);
                bytes.extend_from_slice(b"Success");
                bytes.extend_from_slice(&[2, 0]);
            }
            bytes
        };
        let two = decode(&block(&[&[3, b'x'], &[1]])).unwrap();
        assert_eq!(two[1].account.as_deref(), Some("x"));
        assert_eq!(decode(&block(&[&[0], &[0]])).unwrap()[1].account, None);
        // A repeat in the first record, or of a field the previous record lacked.
        assert!(decode(&block(&[&[1]])).is_err());
        assert!(decode(&block(&[&[0], &[1]])).is_err());
    }

    #[test]
    fn keycard_ids_and_times_are_written_as_differences() {
        // keycard's ids counting up, one out of order, and ids of other forms between them.
        let ids = [
            "0000010000000001",
            "0000010000000002",
            "0000010000000005",
            "0000010000000003",
            "not-keycards",
            "00000100000000AB",
            "000001000000000",
            "0000010000000006",
            "ffffffffffffffff",
            "0000000000000000",
        ];
        let records: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| LoginRecord {
                request_id: (*id).into(),
                // Times that go back as well as forward, and the extremes.
                at: [
                    1_700_000_000,
                    1_700_000_001,
                    1_699_999_990,
                    i64::MIN,
                    i64::MAX,
                ][i % 5],
                ..record(3)
            })
            .collect();
        let mut block = Vec::new();
        encode(&records, &mut block);
        assert_eq!(block[0], VERSION);
        assert_eq!(decode(&block).unwrap(), records);

        // A block of the benchmark's shape: one second, ids one apart, the rest repeated.
        let alike: Vec<_> = (0..32)
            .map(|i| LoginRecord {
                request_id: format!("{:016x}", (1u64 << 40) + i).into(),
                at: 1_700_000_000,
                ..record(1)
            })
            .collect();
        let mut block = Vec::new();
        encode(&alike, &mut block);
        assert_eq!(decode(&block).unwrap(), alike);
        let first_record = block.len() - 31 * 3;
        assert!(
            first_record < 150,
            "after the first record, 3 bytes each ({} bytes in all)",
            block.len()
        );
        // Every record after the first: `at` 0, id +1 (zigzag 2, + 1), nothing changed.
        let mut tail = block[first_record..].chunks(3);
        assert!(tail.all(|record| record == [0, 3, 0]));
    }

    #[test]
    fn a_record_whose_token_alone_changes_is_its_time_id_mask_and_token_name() {
        // The benchmark's tokeninfo records: tokens taken in turn, everything else alike.
        let records: Vec<_> = (0..32u64)
            .map(|i| LoginRecord {
                request_id: format!("{:016x}", (1u64 << 40) + i).into(),
                at: 1_700_000_000,
                token_name: Some(format!("bench-{:04}", i % 100).into()),
                ..record(1)
            })
            .collect();
        let mut block = Vec::new();
        encode(&records, &mut block);
        assert_eq!(decode(&block).unwrap(), records);
        let first_record = block.len() - 31 * 14;
        assert!(first_record < 150, "{} bytes in all", block.len());
        // `at` 0, id +1, the mask's first bit (the token name), then its 10 bytes.
        for (record, i) in block[first_record..].chunks(14).zip(1..) {
            assert_eq!(record[..4], [0, 3, 1, 11]);
            assert_eq!(record[4..], *format!("bench-{i:04}").as_bytes());
        }
    }

    #[test]
    fn fields_that_come_and_go_round_trip() {
        // Each optional field present, absent, present again, and changing value, alone.
        let mut records = Vec::new();
        for step in 0..12i64 {
            let mut r = record(1);
            let text = |k: i64| Some(Text::from(format!("v{}", step / k)));
            r.account = (step % 3 != 1).then(|| text(3)).flatten();
            r.integration = (step % 4 != 2).then(|| text(2)).flatten();
            r.token_name = (step % 2 == 0).then(|| text(1)).flatten();
            r.user = (step % 5 == 4).then(|| text(1)).flatten();
            r.role = None;
            r.diagnosis = if step % 3 == 0 {
                serde_json::json!({ "same": true })
            } else {
                serde_json::Value::Null
            };
            records.push(r);
        }
        let mut block = Vec::new();
        encode(&records, &mut block);
        assert_eq!(decode(&block).unwrap(), records);
    }

    #[test]
    fn version_2_blocks_still_read() {
        // Two records by hand: at 5 and 6 (zigzag 10, then +1: 2), keycard's ids 7 and 8
        // (zigzag 14 + 1, then +1: 3), ip "i", no account, integration, token, user or role,
        // surface "s", path "/", Success, an empty detail, no diagnosis; the second repeats
        // every field but the diagnosis (never a repeat in version 2).
        let mut block = vec![
            VERSION_2, 10, 15, 3, b'i', 0, 0, 0, 0, 0, 3, b's', 3, b'/', 9,
        ];
        block.extend_from_slice(b"Success");
        block.extend_from_slice(&[2, 0]);
        block.extend_from_slice(&[2, 3, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0]);
        let records = decode(&block).unwrap();
        assert_eq!(
            records
                .iter()
                .map(|r| (
                    r.at,
                    r.request_id.as_str(),
                    r.ip.as_str(),
                    r.request_uri.as_str(),
                    r.status.as_str()
                ))
                .collect::<Vec<_>>(),
            [
                (5, "0000000000000007", "i", "/", "Success"),
                (6, "0000000000000008", "i", "/", "Success")
            ]
        );
        // A repeat in the first record is damage.
        assert!(decode(&[VERSION_2, 10, 15, 1]).is_err());
    }

    #[test]
    fn version_1_blocks_still_read() {
        // Two records by hand: at 1,700,000,000 and 1,700,000,001 (zigzag varints), ids
        // "0000010000000001" then a repeat of it, no account and the rest as in
        // `repeats_shrink_a_block_and_need_a_previous_value`.
        let mut block = vec![VERSION_1];
        for (at, id) in [
            (
                &[0x80, 0xc4, 0x9f, 0xd5, 0x0c][..],
                &b"\x120000010000000001"[..],
            ),
            (&[0x82, 0xc4, 0x9f, 0xd5, 0x0c][..], &[1][..]),
        ] {
            block.extend_from_slice(at);
            block.extend_from_slice(id);
            block.extend_from_slice(&[3, b'i', 0, 0, 0, 0, 0, 3, b's', 3, b'/', 9]);
            block.extend_from_slice(b"Success");
            block.extend_from_slice(&[2, 0]);
        }
        let records = decode(&block).unwrap();
        assert_eq!(
            records
                .iter()
                .map(|r| (r.at, r.request_id.as_str(), r.ip.as_str()))
                .collect::<Vec<_>>(),
            [
                (1_700_000_000, "0000010000000001", "i"),
                (1_700_000_001, "0000010000000001", "i")
            ]
        );
    }

    #[test]
    fn keycard_ids_key_by_value_and_others_by_hash() {
        assert_eq!(request_key("0000010000000007"), (1 << 40) | 7);
        assert_eq!(request_key("ffffffffffffffff"), -1);
        assert!(request_key("0000010000000007") < request_key("0000010000000008"));
        assert_eq!(request_key("f05"), request_key("f05"));
        assert_ne!(request_key("f05"), request_key("f06"));
        // Upper-case hex is not keycard's form: hashed, still stable.
        assert_eq!(
            request_key("00000100000000AB"),
            request_key("00000100000000AB")
        );
    }

    #[test]
    fn key_ranges_cover_every_key_within_the_width() {
        // The keys as the encoding gives them, held below to `request_key`'s.
        let keys_of = |ids: &[String]| -> Vec<i64> {
            let records: Vec<LoginRecord> = ids
                .iter()
                .map(|id| LoginRecord {
                    request_id: id.clone().into(),
                    ..record(1)
                })
                .collect();
            encode(&records, &mut Vec::new())
        };
        let keycard = |value: u64| format!("{value:016x}");
        // One process's ids out of order: one range.
        let ids: Vec<String> = [9, 3, 5, 4, 40].map(|n| keycard((7 << 40) | n)).to_vec();
        assert_eq!(
            key_ranges(keys_of(&ids)),
            [(request_key(&ids[1]), request_key(&ids[4]))]
        );
        // A straggler further back than the width, two processes (one with a negative key),
        // text ids and a repeat: every key in exactly one range, none wider than allowed.
        let ids: Vec<String> = [
            keycard((7 << 40) + 100_000),
            keycard((7 << 40) + 10),
            keycard((7 << 40) + 100_001),
            keycard((0xff_fff0 << 40) + 5),
            "text-id".to_owned(),
            "text-id".to_owned(),
            "other".to_owned(),
        ]
        .to_vec();
        let ranges = key_ranges(keys_of(&ids));
        for id in &ids {
            let key = request_key(id);
            let covering = ranges
                .iter()
                .filter(|(first, last)| (*first..=*last).contains(&key));
            assert_eq!(covering.count(), 1, "{id}");
        }
        assert!(
            ranges
                .iter()
                .all(|(first, last)| first <= last && last.abs_diff(*first) <= MAX_KEY_RANGE_WIDTH)
        );
        assert!(ranges.contains(&(request_key(&ids[0]), request_key(&ids[2]))));
        assert!(ranges.windows(2).all(|pair| pair[0].1 < pair[1].0));
        assert!(key_ranges(Vec::new()).is_empty());
    }

    #[test]
    fn filters_treat_an_empty_column_as_no_match() {
        let r = record(1);
        let mut block = Vec::new();
        encode(std::slice::from_ref(&r), &mut block);
        let stored = read(&block).unwrap();
        assert!(matches(&LoginQuery::default(), &stored[0]));
        let only = |q: LoginQuery| matches(&q, &stored[0]);
        assert!(only(LoginQuery {
            account: Some("1234567_SB1".into()),
            ..Default::default()
        }));
        assert!(!only(LoginQuery {
            account: Some("1234567".into()),
            ..Default::default()
        }));
        assert!(!only(LoginQuery {
            token_name: Some(String::new()),
            ..Default::default()
        }));
        assert!(!only(LoginQuery {
            integration: Some("Order Sync".into()),
            ..Default::default()
        }));
        assert!(only(LoginQuery {
            since: Some(r.at),
            until: Some(r.at),
            ..Default::default()
        }));
        assert!(!only(LoginQuery {
            since: Some(r.at + 1),
            ..Default::default()
        }));
        assert!(!only(LoginQuery {
            until: Some(r.at - 1),
            ..Default::default()
        }));
    }
}
