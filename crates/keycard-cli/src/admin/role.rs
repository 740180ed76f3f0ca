//! `keycard role create|list|show|grant|revoke|delete`.

use std::collections::BTreeMap;

use anyhow::Result;
use clap::{Args, Subcommand};
use ipnet::IpNet;
use keycard_core::{Level, Role, SetupPermission};
use keycard_store::roles::{NewRole, PermissionChange};

use super::output::{self, Table};
use super::{AccountArg, StoreArgs, actor, parse_bool};

#[derive(Subcommand, Debug)]
pub enum RoleCommand {
    /// Create a role.
    Create(CreateArgs),
    /// List the roles.
    List,
    /// Show one role (by internal id or name).
    Show { role: String },
    /// Add permissions or change the role's restrictions.
    Grant(GrantArgs),
    /// Remove permissions.
    Revoke(RevokeArgs),
    /// Delete a role that no user holds and no token uses.
    Delete { role: String },
}

#[derive(Args, Debug)]
pub struct Permissions {
    /// A setup permission, repeatable: log-in-using-access-tokens, user-access-tokens,
    /// access-token-management, rest-web-services, soap-web-services, integration-application,
    /// log-in-using-oauth2-access-tokens, oauth2-authorized-applications-management, administrator.
    #[arg(long = "setup", value_parser = parse_setup)]
    pub setup: Vec<SetupPermission>,
    /// A record permission RECORD=LEVEL (level: view, create, edit, full), repeatable.
    #[arg(long = "record", value_parser = parse_record)]
    pub records: Vec<(String, Level)>,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub name: String,
    #[command(flatten)]
    pub permissions: Permissions,
    /// Web Services Only (such roles cannot call RESTlets).
    #[arg(long)]
    pub web_services_only: bool,
    /// Require two-factor authentication for logins with a password.
    #[arg(long)]
    pub two_factor: bool,
    /// An allowed IP range in CIDR form, repeatable; none means any address.
    #[arg(long = "allow-ip", value_parser = parse_ip)]
    pub allowed_ips: Vec<IpNet>,
}

#[derive(Args, Debug)]
pub struct GrantArgs {
    pub role: String,
    #[command(flatten)]
    pub permissions: Permissions,
    #[arg(long, value_parser = parse_bool)]
    pub web_services_only: Option<bool>,
    #[arg(long, value_parser = parse_bool)]
    pub two_factor: Option<bool>,
    /// Replace the allowed IP ranges (repeatable); `--allow-ip any` clears them.
    #[arg(long = "allow-ip")]
    pub allowed_ips: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    pub role: String,
    #[arg(long = "setup", value_parser = parse_setup)]
    pub setup: Vec<SetupPermission>,
    /// A record type whose permission is removed, repeatable.
    #[arg(long = "record")]
    pub records: Vec<String>,
}

fn parse_setup(value: &str) -> Result<SetupPermission, String> {
    SetupPermission::parse(value).map_err(|e| e.to_string())
}

fn parse_record(value: &str) -> Result<(String, Level), String> {
    let (record, level) = value
        .split_once('=')
        .ok_or_else(|| format!("`{value}` must be RECORD=LEVEL, e.g. customer=view"))?;
    let record = keycard_core::role::check_record_type(record).map_err(|e| e.to_string())?;
    Ok((record, Level::parse(level).map_err(|e| e.to_string())?))
}

fn parse_ip(value: &str) -> Result<IpNet, String> {
    keycard_core::role::parse_ip_range(value).map_err(|e| e.to_string())
}

// One arm per subcommand (or one step per demo record): long, but flat.
#[allow(clippy::too_many_lines)]
pub async fn run(command: RoleCommand, store_args: &StoreArgs, account: &AccountArg) -> Result<()> {
    let store = store_args
        .open_for(matches!(command, RoleCommand::List))
        .await?;
    let account = account.resolve(&store).await?;
    let json = store_args.json;
    let who = actor();
    match command {
        RoleCommand::Create(args) => {
            let new = NewRole {
                name: args.name,
                records: args
                    .permissions
                    .records
                    .into_iter()
                    .collect::<BTreeMap<_, _>>(),
                setup: args.permissions.setup.into_iter().collect(),
                web_services_only: args.web_services_only,
                two_factor_required: args.two_factor,
                allowed_ips: args.allowed_ips,
            };
            show(&store.create_role(&who, &account, new).await?, json)
        }
        RoleCommand::List => {
            let roles = store.roles(&account).await?;
            if json {
                return output::json(&roles);
            }
            let mut table = Table::new(&[
                "ID",
                "NAME",
                "SETUP PERMISSIONS",
                "RECORDS",
                "WS ONLY",
                "IPS",
            ]);
            for r in &roles {
                table.row(vec![
                    r.id.to_string(),
                    r.name.clone(),
                    r.setup
                        .iter()
                        .map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    r.records
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str()))
                        .collect::<Vec<_>>()
                        .join(","),
                    if r.web_services_only { "yes" } else { "no" }.to_owned(),
                    if r.allowed_ips.is_empty() {
                        "any".to_owned()
                    } else {
                        r.allowed_ips.len().to_string()
                    },
                ]);
            }
            table.print();
            Ok(())
        }
        RoleCommand::Show { role } => show(&store.role(&account, &role).await?, json),
        RoleCommand::Grant(args) => {
            let any = args
                .allowed_ips
                .iter()
                .any(|ip| ip.eq_ignore_ascii_case("any"));
            let allowed_ips = if args.allowed_ips.is_empty() {
                None
            } else if any {
                // `any` with ranges would silently drop the ranges and open the role to every
                // address: one or the other.
                anyhow::ensure!(
                    args.allowed_ips.len() == 1,
                    "--allow-ip any allows every address; give it alone, or give only ranges"
                );
                Some(Vec::new())
            } else {
                Some(
                    args.allowed_ips
                        .iter()
                        .map(|ip| keycard_core::role::parse_ip_range(ip))
                        .collect::<Result<Vec<_>, _>>()?,
                )
            };
            let change = PermissionChange {
                records: args.permissions.records.into_iter().collect(),
                setup: args.permissions.setup.into_iter().collect(),
                web_services_only: args.web_services_only,
                two_factor_required: args.two_factor,
                allowed_ips,
            };
            show(
                &store.grant(&who, &account, &args.role, change).await?,
                json,
            )
        }
        RoleCommand::Revoke(args) => {
            let records = args
                .records
                .iter()
                .map(|r| keycard_core::role::check_record_type(r).map(|r| (r, Level::None)))
                .collect::<Result<BTreeMap<_, _>, _>>()?;
            let change = PermissionChange {
                records,
                setup: args.setup.into_iter().collect(),
                ..PermissionChange::default()
            };
            show(
                &store
                    .revoke_permissions(&who, &account, &args.role, change)
                    .await?,
                json,
            )
        }
        RoleCommand::Delete { role } => {
            let deleted = store.delete_role(&who, &account, &role).await?;
            if json {
                return output::json(&deleted);
            }
            println!("Deleted role `{}` (id {}).", deleted.name, deleted.id);
            Ok(())
        }
    }
}

fn show(role: &Role, json: bool) -> Result<()> {
    if json {
        return output::json(role);
    }
    output::fields(&[
        ("Role", format!("{} (id {})", role.name, role.id)),
        (
            "Setup permissions",
            role.setup
                .iter()
                .map(|p| p.label())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "Record permissions",
            role.records
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("Web Services Only", role.web_services_only.to_string()),
        ("Two-factor required", role.two_factor_required.to_string()),
        (
            "Allowed IP ranges",
            if role.allowed_ips.is_empty() {
                "any".to_owned()
            } else {
                role.allowed_ips
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
    ]);
    Ok(())
}
