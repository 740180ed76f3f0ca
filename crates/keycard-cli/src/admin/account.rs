//! `keycard account create|list|show|update`.

use std::collections::BTreeSet;

use anyhow::{Result, anyhow};
use clap::{Args, Subcommand};
use keycard_core::{Account, AccountId, Feature, ServiceTier};
use keycard_store::accounts::{AccountUpdate, NewAccount};

use super::output::{self, Table};
use super::{StoreArgs, actor, parse_bool, parse_limit};

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Create an account (id like 1234567, TSTDRV1234567, 1234567_SB1 or 1234567_RP).
    Create(CreateArgs),
    /// List the accounts.
    List,
    /// Show one account.
    Show { id: String },
    /// Change an account's name, features, service tier or concurrency limit.
    Update(UpdateArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub id: String,
    #[arg(long)]
    pub name: String,
    /// Service tier: standard (5), premium (15), enterprise or ultimate (20).
    #[arg(long, default_value = "standard", value_parser = parse_tier)]
    pub tier: ServiceTier,
    /// SuiteCloud Plus licences (each adds 10 concurrent requests).
    #[arg(long, default_value_t = 0)]
    pub licenses: u32,
    /// An explicit account concurrency limit instead of the tier's.
    #[arg(long)]
    pub concurrency_limit: Option<u32>,
    /// Features, comma separated (token-based-authentication, rest-web-services,
    /// soap-web-services, oauth2). Default: all but oauth2.
    #[arg(long, value_delimiter = ',', value_parser = parse_feature)]
    pub features: Option<Vec<Feature>>,
    /// Auto-installed integrations wait for approval.
    #[arg(long)]
    pub require_approval: bool,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    /// Enable a feature (repeatable).
    #[arg(long, value_parser = parse_feature)]
    pub enable: Vec<Feature>,
    /// Disable a feature (repeatable).
    #[arg(long, value_parser = parse_feature)]
    pub disable: Vec<Feature>,
    #[arg(long, value_parser = parse_tier)]
    pub tier: Option<ServiceTier>,
    #[arg(long)]
    pub licenses: Option<u32>,
    /// A number, or `none` to go back to the tier's limit.
    #[arg(long, value_parser = parse_limit)]
    pub concurrency_limit: Option<super::LimitArg>,
    #[arg(long, value_parser = parse_bool)]
    pub require_approval: Option<bool>,
}

fn parse_tier(value: &str) -> Result<ServiceTier, String> {
    ServiceTier::parse(value).ok_or_else(|| {
        format!("`{value}` is not a tier: use standard, premium, enterprise or ultimate")
    })
}

fn parse_feature(value: &str) -> Result<Feature, String> {
    Feature::parse(value).ok_or_else(|| {
        format!(
            "`{value}` is not a feature: use {}",
            Feature::ALL.map(Feature::as_str).join(", ")
        )
    })
}

pub async fn run(command: AccountCommand, store_args: &StoreArgs) -> Result<()> {
    let store = store_args
        .open_for(matches!(command, AccountCommand::List))
        .await?;
    let json = store_args.json;
    match command {
        AccountCommand::Create(args) => {
            let new = NewAccount {
                id: AccountId::parse(&args.id)?,
                name: args.name,
                features: args
                    .features
                    .map(|f| f.into_iter().collect::<BTreeSet<_>>()),
                tier: args.tier,
                suitecloud_plus_licenses: args.licenses,
                concurrency_limit_override: args.concurrency_limit,
                require_approval_for_auto_installed: args.require_approval,
            };
            if new.concurrency_limit_override == Some(0) {
                return Err(anyhow!("a concurrency limit must be at least 1"));
            }
            let account = store.create_account(&actor(), new).await?;
            show(&account, json)
        }
        AccountCommand::List => {
            let accounts = store.accounts().await?;
            if json {
                return output::json(&accounts);
            }
            let mut table = Table::new(&["ID", "NAME", "KIND", "HOST", "LIMIT", "FEATURES"]);
            for a in &accounts {
                table.row(vec![
                    a.id.to_string(),
                    a.name.clone(),
                    kind(&a.id),
                    a.id.host_slug(),
                    a.concurrency_limit().to_string(),
                    a.features
                        .iter()
                        .map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ]);
            }
            table.print();
            Ok(())
        }
        AccountCommand::Show { id } => show(&store.account(&AccountId::parse(&id)?).await?, json),
        AccountCommand::Update(args) => {
            let update = AccountUpdate {
                name: args.name,
                enable: args.enable,
                disable: args.disable,
                tier: args.tier,
                suitecloud_plus_licenses: args.licenses,
                concurrency_limit_override: args.concurrency_limit.map(|l| l.0),
                require_approval_for_auto_installed: args.require_approval,
            };
            let account = store
                .update_account(&actor(), &AccountId::parse(&args.id)?, update)
                .await?;
            show(&account, json)
        }
    }
}

fn kind(id: &AccountId) -> String {
    match id.kind() {
        keycard_core::AccountKind::Production => "production".into(),
        keycard_core::AccountKind::Sandbox { number } => format!("sandbox {number}"),
        keycard_core::AccountKind::ReleasePreview => "release preview".into(),
        keycard_core::AccountKind::TestDrive => "test drive".into(),
    }
}

fn show(account: &Account, json: bool) -> Result<()> {
    if json {
        return output::json(account);
    }
    output::fields(&[
        ("Account", account.id.to_string()),
        ("Name", account.name.clone()),
        ("Kind", kind(&account.id)),
        ("Host slug", account.id.host_slug()),
        (
            "Features",
            account
                .features
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("Service tier", account.tier.as_str().to_owned()),
        (
            "SuiteCloud Plus",
            account.suitecloud_plus_licenses.to_string(),
        ),
        ("Concurrency limit", account.concurrency_limit().to_string()),
        (
            "Approve auto-installs",
            account.require_approval_for_auto_installed.to_string(),
        ),
        ("Created", output::time(account.created_at)),
    ]);
    Ok(())
}
