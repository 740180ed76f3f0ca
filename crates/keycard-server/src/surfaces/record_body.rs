//! A REST record's answer, written from the record's stored text: its fields plus `id`, in
//! the order `serde_json`'s map keeps (by key), every field's value copied as stored.
//!
//! The store keeps a record as the compact JSON `serde_json` writes for a `Value`, so parsing
//! it into a `Value`, setting `id` and writing it out again (as the answer was made before)
//! gives these same bytes. That round trip allocated every field and string, and for the load
//! benchmark's four-field customer cost about 4,500 instructions, a quarter of what a record
//! GET costs beyond a tokeninfo. Here the text is still parsed in full (a stored text that is
//! not JSON is never half-copied), but into the top level's keys and the raw text of their
//! values.

use std::collections::BTreeMap;

use serde_json::Value;
use serde_json::value::RawValue;

/// The answer to a GET of record `id` stored as `stored`: the document with `id` set to the
/// record's id as a string (NetSuite's REST shape), whatever `id` the stored body held.
pub fn record_answer(stored: &str, id: i64) -> Vec<u8> {
    let mut id_text = itoa::Buffer::new();
    let id_text = id_text.format(id);
    // Keys are borrowed from the text; one written with an escape cannot be, and fails the
    // parse. A stored body that is not an object fails it too. Both take the round trip.
    match serde_json::from_str::<BTreeMap<&str, &RawValue>>(stored) {
        Ok(fields) => with_id(&fields, stored.len(), id_text),
        Err(_) => rebuilt(stored, id_text),
    }
}

/// `fields` as a JSON object with `"id": id` in its place among them. A borrowed key holds no
/// quote, backslash or control character (any of those is written escaped), so it is written
/// as is, as `serde_json` would write it.
fn with_id(fields: &BTreeMap<&str, &RawValue>, stored_len: usize, id: &str) -> Vec<u8> {
    // Every member is copied from `stored` or is `"id":"…",`: no more than that.
    let mut out = Vec::with_capacity(stored_len + id.len() + 8);
    out.push(b'{');
    let mut id_pending = true;
    for (&key, value) in fields {
        if id_pending && key >= "id" {
            member(&mut out, "id", id.as_bytes(), true);
            id_pending = false;
            if key == "id" {
                continue;
            }
        }
        member(&mut out, key, value.get().as_bytes(), false);
    }
    if id_pending {
        member(&mut out, "id", id.as_bytes(), true);
    }
    out.push(b'}');
    out
}

/// `"key":value` after a comma unless it is the first member; `quoted` puts value in quotes.
fn member(out: &mut Vec<u8>, key: &str, value: &[u8], quoted: bool) {
    if out.len() > 1 {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    if quoted {
        out.push(b'"');
        out.extend_from_slice(value);
        out.push(b'"');
    } else {
        out.extend_from_slice(value);
    }
}

/// The round trip through a `Value`: for a stored body with an escaped key, or one that is
/// not a JSON object (answered as it parses, `null` when it does not).
fn rebuilt(stored: &str, id: &str) -> Vec<u8> {
    let mut document = keycard_store::records::parse_body(stored);
    if let Value::Object(fields) = &mut document {
        fields.insert("id".into(), Value::String(id.into()));
    }
    // A `Value` always serializes: its map keys are strings.
    serde_json::to_vec(&document).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::{Map, Number, json};

    use super::*;

    /// A small deterministic generator (xorshift), so that every run checks the same
    /// documents and a failure names its seed.
    struct Draw(u64);

    impl Draw {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap()
        }

        /// Keys around `id` in the order, and ones that need escaping.
        fn key(&mut self) -> String {
            const KEYS: [&str; 14] = [
                "id",
                "i",
                "ic",
                "ie",
                "iD",
                "Id",
                "",
                "a",
                "zip",
                "companyName",
                "é",
                "a\"b",
                "tab\there",
                "\u{1}",
            ];
            KEYS[self.below(KEYS.len())].to_owned()
        }

        fn string(&mut self) -> String {
            const PIECES: [&str; 10] = [
                "Acme", " ", "\"", "\\", "\n", "\u{7}", "é", "😀", "/", "\u{2028}",
            ];
            (0..self.below(5))
                .map(|_| PIECES[self.below(PIECES.len())])
                .collect()
        }

        fn value(&mut self, depth: usize) -> Value {
            match self.below(if depth < 3 { 9 } else { 6 }) {
                0 => Value::Null,
                1 => Value::Bool(self.below(2) == 0),
                2 => json!(self.next().cast_signed()),
                3 => Number::from_f64(f64::from_bits(self.next() >> 2))
                    .map_or(Value::Null, Value::Number),
                4 => json!(12.5),
                5 => Value::String(self.string()),
                6 | 7 => self.object(depth + 1),
                _ => Value::Array((0..self.below(4)).map(|_| self.value(depth + 1)).collect()),
            }
        }

        fn object(&mut self, depth: usize) -> Value {
            let mut fields = Map::new();
            for _ in 0..self.below(6) {
                let key = self.key();
                fields.insert(key, self.value(depth));
            }
            Value::Object(fields)
        }
    }

    #[test]
    fn the_answer_is_the_stored_document_with_its_id_byte_for_byte() {
        for seed in 1..5_000u64 {
            let mut draw = Draw(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut document = draw.object(0);
            let stored = document.to_string();
            let id = i64::try_from(draw.next() >> 1).unwrap();
            if let Value::Object(fields) = &mut document {
                fields.insert("id".into(), Value::String(id.to_string()));
            }
            assert_eq!(
                String::from_utf8(record_answer(&stored, id)).unwrap(),
                document.to_string(),
                "seed {seed}, stored {stored}"
            );
        }
    }

    #[test]
    fn id_takes_its_place_among_the_keys_and_replaces_a_stored_one() {
        let answer = |stored: &str| String::from_utf8(record_answer(stored, 7)).unwrap();
        assert_eq!(answer("{}"), r#"{"id":"7"}"#);
        assert_eq!(
            answer(r#"{"companyName":"Acme","email":"a@b.c","subsidiary":{"id":"1"}}"#),
            r#"{"companyName":"Acme","email":"a@b.c","id":"7","subsidiary":{"id":"1"}}"#
        );
        assert_eq!(answer(r#"{"a":1,"id":"99"}"#), r#"{"a":1,"id":"7"}"#);
        assert_eq!(
            answer(r#"{"a":[1,{"b":null}]}"#),
            r#"{"a":[1,{"b":null}],"id":"7"}"#
        );
        assert_eq!(answer(r#"{"ia":true}"#), r#"{"ia":true,"id":"7"}"#);
        assert_eq!(answer(r#"{"ie":true}"#), r#"{"id":"7","ie":true}"#);
    }

    #[test]
    fn a_body_that_is_not_a_plain_object_answers_as_it_parses() {
        let answer = |stored: &str| String::from_utf8(record_answer(stored, 7)).unwrap();
        // An escaped key, repeated keys (the last wins), whitespace: the round trip's bytes.
        assert_eq!(answer(r#"{"a\"b":1}"#), r#"{"a\"b":1,"id":"7"}"#);
        assert_eq!(
            answer(r#"{"b":1,"a":2,"b":3}"#),
            r#"{"a":2,"b":3,"id":"7"}"#
        );
        assert_eq!(
            answer(r#"{ "b" : 1 , "a":2 }"#),
            r#"{"a":2,"b":1,"id":"7"}"#
        );
        // Not an object, or not JSON: never half-copied.
        assert_eq!(answer("[1,2]"), "[1,2]");
        assert_eq!(answer(r#"{"a":[1,}"#), "null");
        assert_eq!(answer(r#"{"a":1}trailing"#), "null");
        assert_eq!(answer(""), "null");
    }
}
