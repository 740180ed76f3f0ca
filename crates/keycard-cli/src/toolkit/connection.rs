//! `keycard test-connection`: tokeninfo plus one REST call with a saved profile; prints the
//! account, integration, user, role and each round-trip time.

use anyhow::Result;
use clap::Args;
use keycard_client::Call;

use super::profile::ProfileStore;
use super::{AuthId, ConfigDir, client_for, explain};
use crate::admin::output;

#[derive(Args, Debug)]
pub struct ConnectionArgs {
    #[command(flatten)]
    pub auth: AuthId,
    #[command(flatten)]
    pub config: ConfigDir,
    /// The record type of the REST call (a one-record list; the role needs View on it).
    #[arg(long, default_value = "customer")]
    pub record: String,
}

fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}

pub async fn run(args: ConnectionArgs) -> Result<()> {
    let store = ProfileStore::open(&args.config)?;
    let profile = store.resolve(args.auth.auth_id.as_deref())?;
    let client = client_for(&profile, &store.credentials(&profile)?)?;
    let tokeninfo = Call::get("/rest/tokeninfo");
    eprintln!("Calling {}…", client.url(&tokeninfo)?);
    let info = client
        .send(&tokeninfo)
        .await
        .map_err(|e| explain(&e, &profile, "tokeninfo (GET /rest/tokeninfo)"))?;
    // A 2xx that is not JSON is not a keycard or NetSuite tokeninfo: a login page, a proxy's
    // page, another service on that host.
    let json = info.json().map_err(|e| {
        anyhow::anyhow!(
            "tokeninfo (GET /rest/tokeninfo) answered {} with something else ({e}): the profile's server `{}` is probably not a NetSuite or keycard API host (`keycard profile show {}`)",
            info.status, profile.server, profile.auth_id
        )
    })?;
    let path = format!("/services/rest/record/v1/{}", args.record);
    let listing = Call::get(&path).query("limit", "1");
    eprintln!("Calling {}…", client.url(&listing)?);
    let rest = client
        .send(&listing)
        .await
        .map_err(|e| explain(&e, &profile, &format!("the REST call (GET {path}?limit=1)")))?;
    let rest_json = rest.json().unwrap_or_default();
    output::fields(&[
        ("Server", profile.server.clone()),
        (
            "Account",
            format!(
                "{} ({})",
                text(&json["companyId"]),
                text(&json["companyName"])
            ),
        ),
        ("Integration", text(&json["integrationName"])),
        (
            "User",
            format!(
                "{} <{}>",
                text(&json["entityName"]),
                text(&json["entityEmail"])
            ),
        ),
        (
            "Role",
            format!("{} (id {})", text(&json["roleName"]), text(&json["roleId"])),
        ),
        ("Token", text(&json["tokenName"])),
        (
            "tokeninfo",
            format!(
                "HTTP {} in {} ms (request id {})",
                info.status,
                info.elapsed.as_millis(),
                info.request_id.as_deref().unwrap_or("-")
            ),
        ),
        (
            "REST",
            format!(
                "GET {path}?limit=1: HTTP {} in {} ms, {} record(s) in all (request id {})",
                rest.status,
                rest.elapsed.as_millis(),
                text(&rest_json["totalResults"]),
                rest.request_id.as_deref().unwrap_or("-")
            ),
        ),
    ]);
    println!("Connection OK.");
    Ok(())
}
