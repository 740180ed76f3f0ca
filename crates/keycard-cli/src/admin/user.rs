//! `keycard user create|list|show|assign-role|remove-role|disable|enable|set-password|delete`.

use std::io::BufRead;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use keycard_core::{User, UserStatus};
use keycard_store::users::NewUser;
use zeroize::Zeroizing;

use super::output::{self, Table};
use super::{AccountArg, StoreArgs, actor};
use crate::confirm::{self, Yes};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user. The password comes from stdin (--password-stdin) or KEYCARD_USER_PASSWORD.
    Create(CreateArgs),
    /// List the users.
    List,
    /// Show one user (by internal id or email).
    Show { user: String },
    /// Give a user a role.
    AssignRole { user: String, role: String },
    /// Take a role from a user; its tokens stay active but can no longer log in.
    RemoveRole { user: String, role: String },
    /// Make a user inactive: its tokens stop working.
    Disable { user: String },
    /// Make a user active again.
    Enable { user: String },
    /// Set the password, read from stdin or KEYCARD_USER_PASSWORD.
    SetPassword {
        user: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete a user and the user's tokens.
    Delete {
        user: String,
        #[command(flatten)]
        confirm: Yes,
    },
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub email: String,
    #[arg(long)]
    pub name: String,
    /// A role to assign (id or name), repeatable.
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// Read the password from the first line of stdin.
    #[arg(long)]
    pub password_stdin: bool,
}

/// The password, from stdin or the environment; never from a flag (shell history).
pub(crate) fn password(from_stdin: bool) -> Result<Option<Zeroizing<String>>> {
    if from_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
        if trimmed.is_empty() {
            bail!("stdin gave an empty password");
        }
        return Ok(Some(trimmed));
    }
    Ok(std::env::var("KEYCARD_USER_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
        .map(Zeroizing::new))
}

pub async fn run(command: UserCommand, store_args: &StoreArgs, account: &AccountArg) -> Result<()> {
    let store = store_args
        .open_for(matches!(command, UserCommand::List))
        .await?;
    let account = account.resolve(&store).await?;
    let json = store_args.json;
    let who = actor();
    let user = match command {
        UserCommand::Create(args) => {
            let new = NewUser {
                email: args.email,
                name: args.name,
                password: password(args.password_stdin)?,
                roles: args.roles,
            };
            store.create_user(&who, &account, new).await?
        }
        UserCommand::List => {
            let users = store.users(&account).await?;
            if json {
                return output::json(&users);
            }
            let roles = store.roles(&account).await?;
            let mut table = Table::new(&["ID", "EMAIL", "NAME", "STATUS", "ROLES", "PASSWORD"]);
            for u in &users {
                table.row(vec![
                    u.id.to_string(),
                    u.email.clone(),
                    u.name.clone(),
                    u.status.as_str().to_owned(),
                    role_names(u, &roles),
                    if u.has_password { "set" } else { "-" }.to_owned(),
                ]);
            }
            table.print();
            return Ok(());
        }
        UserCommand::Show { user } => store.user(&account, &user).await?,
        UserCommand::AssignRole { user, role } => {
            store.assign_role(&who, &account, &user, &role).await?
        }
        UserCommand::RemoveRole { user, role } => {
            store.remove_role(&who, &account, &user, &role).await?
        }
        UserCommand::Disable { user } => {
            store
                .set_user_status(&who, &account, &user, UserStatus::Inactive)
                .await?
        }
        UserCommand::Enable { user } => {
            store
                .set_user_status(&who, &account, &user, UserStatus::Active)
                .await?
        }
        UserCommand::SetPassword {
            user,
            password_stdin,
        } => {
            let Some(password) = password(password_stdin)? else {
                bail!(
                    "no password given: pipe it with --password-stdin or set KEYCARD_USER_PASSWORD"
                );
            };
            store.set_password(&who, &account, &user, &password).await?
        }
        UserCommand::Delete { user, confirm } => {
            if confirm.wanted() {
                let record = store.user(&account, &user).await?;
                let live = confirm::live_tokens(&store.tokens(&account).await?, |t| {
                    t.user_id == record.id
                });
                confirm::ask(&format!(
                    "Delete user {} (id {}) and revoke their {}? This cannot be undone.",
                    record.email,
                    record.id,
                    confirm::tokens(live)
                ))?;
            }
            let deleted = store.delete_user(&who, &account, &user).await?;
            if json {
                return output::json(&deleted);
            }
            println!(
                "Deleted user {} (id {}) and the user's tokens.",
                deleted.email, deleted.id
            );
            return Ok(());
        }
    };
    let roles = store.roles(&account).await?;
    show(&user, &roles, json)
}

fn role_names(user: &User, roles: &[keycard_core::Role]) -> String {
    user.roles
        .iter()
        .map(|id| {
            roles
                .iter()
                .find(|r| r.id == *id)
                .map_or_else(|| id.to_string(), |r| r.name.clone())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn show(user: &User, roles: &[keycard_core::Role], json: bool) -> Result<()> {
    if json {
        return output::json(user);
    }
    output::fields(&[
        ("User", format!("{} (id {})", user.email, user.id)),
        ("Name", user.name.clone()),
        ("Status", user.status.as_str().to_owned()),
        ("Roles", role_names(user, roles)),
        (
            "Password",
            if user.has_password { "set" } else { "not set" }.to_owned(),
        ),
    ]);
    Ok(())
}
