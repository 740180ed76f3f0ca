//! SOAP web services: `/services/NetSuitePort_<version>`. The header's `tokenPassport` goes
//! through the same pipeline as OAuth headers (nonce, timestamp, permissions); the operations
//! are `getServerTime`, and `get` / `add` of records from the same store as REST.

use std::fmt::Write as _;

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keycard_core::Level;
use quick_xml::events::Event;
use serde_json::Value;

use super::{Incoming, Refusal, audit_outcome};
use crate::AppState;
use crate::pipeline::{Need, Presented, Proof, authenticate_presented};
use crate::respond::{ClientError, SoapVersion, Surface, error_response, with_request_id};

/// What the envelope carries, as far as authentication and our operations need.
#[derive(Default, Debug)]
pub struct Envelope {
    passport: Option<Passport>,
    /// Other credentials in the header (`applicationInfo`, `passport`).
    other_credentials: Vec<String>,
    operation: Option<String>,
    /// `get`: the `baseRef`'s type and internal id.
    base_ref: Option<(String, String)>,
    /// `add`: the record's type (from `xsi:type`) and its simple fields.
    record: Option<(String, Vec<(String, String)>)>,
    /// A second passport in the header (refused).
    two_passports: bool,
}

#[derive(Default, Debug)]
struct Passport {
    account: Option<String>,
    consumer_key: Option<String>,
    token: Option<String>,
    nonce: Option<String>,
    timestamp: Option<String>,
    signature: Option<String>,
    algorithm: Option<String>,
}

impl Envelope {
    /// An element opened at `path` (its ancestors' local names).
    /// `attribute(name, prefixed)`: the value of the attribute of that local name, with a
    /// namespace prefix (`xsi:type`) or without one (`type`).
    fn open(
        &mut self,
        path: &[String],
        name: &str,
        attribute: impl Fn(&str, bool) -> Option<String>,
    ) {
        let parent = path.last().map(String::as_str);
        let in_header = path.get(1).is_some_and(|p| p == "Header");
        let in_body = path.get(1).is_some_and(|p| p == "Body");
        if in_header && path.len() == 2 {
            match name {
                // One passport per request (netsuite-tba.md §3.3): a second one is refused,
                // not taken in place of the first.
                "tokenPassport" if self.passport.is_some() => self.two_passports = true,
                "tokenPassport" => self.passport = Some(Passport::default()),
                "applicationInfo" | "passport" => {
                    self.other_credentials.push(name.to_owned());
                }
                _ => {}
            }
        }
        if in_header && parent == Some("tokenPassport") && name == "signature" {
            if let Some(passport) = self.passport.as_mut() {
                passport.algorithm = attribute("algorithm", false);
            }
        }
        if in_body && path.len() == 2 && self.operation.is_none() {
            self.operation = Some(name.to_owned());
        }
        if in_body && path.len() == 3 {
            match name {
                "baseRef" => {
                    // `type`, not `xsi:type` (the reference's own type, `core:RecordRef`),
                    // whichever comes first.
                    self.base_ref = Some((
                        attribute("type", false).unwrap_or_default(),
                        attribute("internalId", false).unwrap_or_default(),
                    ));
                }
                "record" => {
                    let kind = attribute("type", true).unwrap_or_default();
                    self.record = Some((local(kind.as_bytes()).to_ascii_lowercase(), Vec::new()));
                }
                _ => {}
            }
        }
    }

    /// An element closed with its trimmed text.
    fn close(&mut self, path: &[String], name: String, value: String) {
        let parent = path.last().map(String::as_str);
        // The header's passport only: one deeper in the body does not fill it.
        let in_passport = path.len() == 3
            && path.get(1).is_some_and(|p| p == "Header")
            && parent == Some("tokenPassport");
        if in_passport {
            if let Some(p) = self.passport.as_mut() {
                let slot = match name.as_str() {
                    "account" => &mut p.account,
                    "consumerKey" => &mut p.consumer_key,
                    "token" => &mut p.token,
                    "nonce" => &mut p.nonce,
                    "timestamp" => &mut p.timestamp,
                    "signature" => &mut p.signature,
                    _ => return,
                };
                *slot = Some(value);
            }
        } else if parent == Some("record") && path.len() == 4 {
            if let Some((_, fields)) = self.record.as_mut() {
                fields.push((name, value));
            }
        }
    }
}

fn local(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    name.rsplit(':').next().unwrap_or_default().to_owned()
}

/// How deep elements may nest: a SOAP request needs a handful of levels, and each level read
/// costs memory before anyone is authenticated.
const MAX_DEPTH: usize = 64;

/// Reads the envelope. Errors are the client's (not XML, not SOAP, a DTD).
pub fn parse_envelope(xml: &[u8]) -> Result<Envelope, &'static str> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    // Not trim_text: it would trim around `&amp;` too (text arrives in pieces); values are
    // trimmed whole at their end tag instead.
    let mut envelope = Envelope::default();
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut saw_envelope = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|_| "The request is not well-formed XML.")?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                // An empty element has no end event: it never enters the path.
                let opens = matches!(event, Event::Start(_));
                let name = local(e.name().as_ref());
                if path.is_empty() {
                    if name != "Envelope" {
                        return Err("The request is not a SOAP envelope.");
                    }
                    if saw_envelope {
                        return Err("The request holds more than one SOAP envelope.");
                    }
                    saw_envelope = true;
                }
                if path.len() >= MAX_DEPTH {
                    return Err("The request's elements are nested too deeply.");
                }
                let attribute = |wanted: &str, prefixed: bool| {
                    e.attributes().flatten().find_map(|a| {
                        let key = a.key.as_ref();
                        (local(key) == wanted && key.contains(&b':') == prefixed)
                            .then(|| a.unescape_value().ok().map(std::borrow::Cow::into_owned))
                            .flatten()
                    })
                };
                envelope.open(&path, &name, attribute);
                text.clear();
                if opens {
                    path.push(name);
                }
            }
            Event::Text(t) => text.push_str(&t.decode().map_err(|_| "The request is not UTF-8.")?),
            Event::CData(t) => text.push_str(&String::from_utf8_lossy(&t)),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    Ok(None) => match r.as_ref() {
                        b"amp" => Some('&'),
                        b"lt" => Some('<'),
                        b"gt" => Some('>'),
                        b"quot" => Some('"'),
                        b"apos" => Some('\''),
                        _ => None,
                    },
                    Err(_) => None,
                };
                text.push(resolved.ok_or("The request uses an unknown XML entity.")?);
            }
            Event::End(_) => {
                let Some(name) = path.pop() else {
                    return Err("The request is not well-formed XML.");
                };
                let value = std::mem::take(&mut text).trim().to_owned();
                envelope.close(&path, name, value);
            }
            Event::DocType(_) => return Err("Document type declarations are not accepted."),
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_envelope || !path.is_empty() {
        return Err("The request is not a SOAP envelope.");
    }
    if envelope.two_passports {
        return Err("The request holds more than one token passport.");
    }
    Ok(envelope)
}

/// A response envelope with `documentInfo` (NetSuite's `nsId` carries our request id).
fn envelope(version: SoapVersion, request_id: &str, body: &str) -> Response {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Header><platformMsgs:documentInfo xmlns:platformMsgs="urn:messages_{version}.platform.webservices.netsuite.com"><platformMsgs:nsId>{request_id}</platformMsgs:nsId></platformMsgs:documentInfo></soapenv:Header><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    );
    with_request_id(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            xml,
        )
            .into_response(),
        request_id,
    )
}

fn status(version: SoapVersion, error: Option<(&str, &str)>) -> String {
    let core = format!("urn:core_{version}.platform.webservices.netsuite.com");
    match error {
        None => format!(r#"<platformCore:status isSuccess="true" xmlns:platformCore="{core}"/>"#),
        Some((error_code, text)) => format!(
            r#"<platformCore:status isSuccess="false" xmlns:platformCore="{core}"><platformCore:statusDetail type="ERROR"><platformCore:code>{error_code}</platformCore:code><platformCore:message>{text}</platformCore:message></platformCore:statusDetail></platformCore:status>"#
        ),
    }
}

/// The namespace prefix and URN of a record type's schema, for the few we name; others get a
/// keycard namespace so the document still validates as XML.
fn record_namespace(record: &str, version: SoapVersion) -> (&'static str, String) {
    match record {
        "customer" | "contact" | "vendor" | "partner" => (
            "listRel",
            format!("urn:relationships_{version}.lists.webservices.netsuite.com"),
        ),
        "employee" => (
            "listEmp",
            format!("urn:employees_{version}.lists.webservices.netsuite.com"),
        ),
        "salesorder" | "invoice" | "estimate" | "cashsale" => (
            "tranSales",
            format!("urn:sales_{version}.transactions.webservices.netsuite.com"),
        ),
        _ => ("rec", format!("urn:keycard:records:{record}")),
    }
}

/// Refusals decided before the pipeline: no passport, a passport with other credentials
/// ("Ambiguous authentication"), or a passport missing a field.
fn refusal_before_pipeline(parsed: &Envelope, session_cookie: bool) -> Option<Refusal> {
    let Some(p) = &parsed.passport else {
        return Some((
            ClientError::InvalidLogin,
            "MissingTokenPassportRequiredFields",
            serde_json::json!({ "problem": "no tokenPassport in the SOAP header (keycard's SOAP surface accepts Token-based Authentication only)" }),
        ));
    };
    if !parsed.other_credentials.is_empty() || session_cookie {
        return Some((
            ClientError::AmbiguousAuthentication,
            "AmbiguousAuthentication",
            serde_json::json!({ "problem": "a tokenPassport came with other credentials", "others": parsed.other_credentials, "session_cookie": session_cookie }),
        ));
    }
    let missing: Vec<&str> = [
        ("account", p.account.is_none()),
        ("consumerKey", p.consumer_key.is_none()),
        ("token", p.token.is_none()),
        ("nonce", p.nonce.is_none()),
        ("timestamp", p.timestamp.is_none()),
        ("signature", p.signature.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, absent)| absent.then_some(name))
    .collect();
    (!missing.is_empty()).then(|| {
        (
            ClientError::InvalidLogin,
            "MissingTokenPassportRequiredFields",
            serde_json::json!({ "missing": missing }),
        )
    })
}

impl Passport {
    fn presented(&self) -> Presented<'_> {
        Presented {
            realm: self.account.as_deref(),
            consumer_key: self.consumer_key.as_deref().unwrap_or_default(),
            token: self.token.as_deref().unwrap_or_default(),
            nonce: self.nonce.as_deref().unwrap_or_default(),
            timestamp: self.timestamp.as_deref().unwrap_or_default(),
            method: self.algorithm.as_deref().unwrap_or("HMAC-SHA256"),
            signature: self.signature.as_deref().unwrap_or_default(),
            version: None,
            proof: Proof::Passport,
        }
    }
}

pub async fn handle(state: &AppState, port: &str, incoming: &Incoming) -> Response {
    let id = incoming.request_id;
    let Some(version) = SoapVersion::of_port(port) else {
        let surface = Surface::Soap(SoapVersion::DEFAULT);
        return error_response(surface, ClientError::NotFound, None, &id);
    };
    let surface = Surface::Soap(version);
    if version < SoapVersion::FIRST_WITH_TBA {
        return error_response(
            surface,
            ClientError::BadRequest(
                "Token-based authentication needs the 2015_2 SOAP endpoint or a later one.",
            ),
            None,
            &id,
        );
    }
    if incoming.method != Method::POST {
        // POST only: this server publishes no WSDL (a GET ?wsdl).
        return error_response(
            surface,
            ClientError::MethodNotAllowed { allow: "POST" },
            None,
            &id,
        );
    }
    let parsed = match parse_envelope(&incoming.body) {
        Ok(parsed) => parsed,
        Err(problem) => {
            return error_response(surface, ClientError::BadRequest(problem), None, &id);
        }
    };
    let session_cookie = incoming
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("JSESSIONID="));
    if let Some(refusal) = refusal_before_pipeline(&parsed, session_cookie) {
        tracing::info!(request_id = %id, surface = "soap", detail = refusal.1, "login refused");
        let error = refusal.0;
        let outcome: Result<(), Refusal> = Err(refusal);
        let record = incoming.login_record(state, surface);
        if !audit_outcome(state, record, &outcome).await {
            return error_response(surface, ClientError::Unavailable, None, &id);
        }
        return error_response(surface, error, None, &id);
    }
    let Some(passport) = parsed.passport.as_ref() else {
        return error_response(surface, ClientError::InvalidLogin, None, &id);
    };
    let operation = parsed.operation.clone().unwrap_or_default();
    let record = match operation.as_str() {
        "get" => parsed
            .base_ref
            .as_ref()
            .map(|(kind, _)| (kind.to_ascii_lowercase(), Level::View)),
        "add" => parsed
            .record
            .as_ref()
            .map(|(kind, _)| (kind.clone(), Level::Create)),
        _ => None,
    };
    let facts = incoming.facts(surface);
    let principal =
        match authenticate_presented(state, &facts, &passport.presented(), &Need::Soap { record })
            .await
        {
            Ok(principal) => principal,
            Err(response) => return response,
        };
    let call = Call {
        state,
        account: &principal.account.id,
        version,
        request_id: &id,
    };
    match operation.as_str() {
        "getServerTime" => call.get_server_time(),
        "get" => call.get(parsed.base_ref.unwrap_or_default()).await,
        "add" => call.add(parsed.record.unwrap_or_default()).await,
        _ => error_response(
            surface,
            ClientError::BadRequest(
                "This server supports the SOAP operations getServerTime, get and add.",
            ),
            None,
            &id,
        ),
    }
}

/// One authenticated operation.
struct Call<'a> {
    state: &'a AppState,
    account: &'a keycard_core::AccountId,
    version: SoapVersion,
    request_id: &'a str,
}

impl Call<'_> {
    fn messages(&self) -> String {
        format!(
            "urn:messages_{}.platform.webservices.netsuite.com",
            self.version
        )
    }

    fn core(&self) -> String {
        format!(
            "urn:core_{}.platform.webservices.netsuite.com",
            self.version
        )
    }

    fn reply(&self, body: &str) -> Response {
        envelope(self.version, self.request_id, body)
    }

    fn unavailable(&self) -> Response {
        error_response(
            Surface::Soap(self.version),
            ClientError::Unavailable,
            None,
            self.request_id,
        )
    }

    fn get_server_time(&self) -> Response {
        self.reply(&format!(
            r#"<getServerTimeResponse xmlns="{}"><getServerTimeResult>{}<platformCore:serverTime xmlns:platformCore="{}">{}</platformCore:serverTime></getServerTimeResult></getServerTimeResponse>"#,
            self.messages(),
            status(self.version, None),
            self.core(),
            keycard_core::time::Civil::from_unix(self.state.now()).iso8601()
        ))
    }

    async fn get(&self, (kind, internal_id): (String, String)) -> Response {
        let type_name = schema_type_name(&kind);
        let kind = kind.to_ascii_lowercase();
        let found = match internal_id.parse::<i64>() {
            Ok(n) => self.state.store.rest_record(self.account, &kind, n).await,
            Err(_) => Ok(None),
        };
        let result = match found {
            Ok(Some(document)) => {
                let (prefix, ns) = record_namespace(&kind, self.version);
                format!(
                    r#"{}<record xsi:type="{prefix}:{type_name}" internalId="{}" xmlns:{prefix}="{ns}">{}</record>"#,
                    status(self.version, None),
                    super::escape_markup(&internal_id),
                    record_fields(prefix, &document)
                )
            }
            Ok(None) => status(
                self.version,
                Some(("RCRD_DSNT_EXIST", "That record does not exist.")),
            ),
            Err(error) => {
                tracing::error!(%error, "cannot read a record");
                return self.unavailable();
            }
        };
        self.reply(&format!(
            r#"<getResponse xmlns="{}"><readResponse>{result}</readResponse></getResponse>"#,
            self.messages()
        ))
    }

    async fn add(&self, (kind, fields): (String, Vec<(String, String)>)) -> Response {
        let messages = self.messages();
        if keycard_core::role::check_record_type(&kind).is_err() {
            return self.reply(&format!(
                r#"<addResponse xmlns="{messages}"><writeResponse>{}</writeResponse></addResponse>"#,
                status(
                    self.version,
                    Some(("INVALID_RCRD_TYPE", "The record type is not supported."))
                )
            ));
        }
        let document: serde_json::Map<String, Value> = fields
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        match self
            .state
            .store
            .create_rest_record(self.account, &kind, &Value::Object(document))
            .await
        {
            Ok(new_id) => self.reply(&format!(
                r#"<addResponse xmlns="{messages}"><writeResponse>{}<baseRef internalId="{new_id}" type="{kind}" xsi:type="platformCore:RecordRef" xmlns:platformCore="{}"/></writeResponse></addResponse>"#,
                status(self.version, None),
                self.core()
            )),
            Err(error) => {
                tracing::error!(%error, "cannot create a record");
                self.unavailable()
            }
        }
    }
}

/// The schema's name of a record type, from the type as the client wrote it (`salesOrder` →
/// `SalesOrder`; lower-cased first, it came back as `Salesorder`, which no schema has).
fn schema_type_name(kind: &str) -> String {
    kind.get(..1).unwrap_or_default().to_ascii_uppercase() + kind.get(1..).unwrap_or_default()
}

/// A JSON record's simple top-level fields as `<prefix:name>` elements (names that are not
/// XML names, nested values and `id` are left out).
fn record_fields(prefix: &str, document: &Value) -> String {
    let mut fields = String::new();
    let Value::Object(map) = document else {
        return fields;
    };
    for (name, value) in map {
        let xml_name = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        let text = match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
            _ => None,
        };
        if let (true, Some(text), false) = (xml_name, text, name == "id") {
            let _ = write!(
                fields,
                "<{prefix}:{name}>{}</{prefix}:{name}>",
                super::escape_markup(&text)
            );
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_keep_the_clients_word_breaks() {
        assert_eq!(schema_type_name("salesOrder"), "SalesOrder");
        assert_eq!(schema_type_name("customer"), "Customer");
        assert_eq!(schema_type_name(""), "");
    }
}
