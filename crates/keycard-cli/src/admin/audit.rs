//! `keycard audit list|show|export`: the login audit trail, as the account owner reads it:
//! every attempt with NetSuite's Detail code and keycard's diagnosis (never a secret).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use keycard_core::{LoginRecord, Text};
use keycard_store::audit::LoginQuery;

use super::output::{self, Table};
use super::{AccountArg, StoreArgs};

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Login attempts, newest first.
    List(Filters),
    /// One attempt with its full diagnosis, by the request id the client received
    /// (x-request-id).
    Show { request_id: String },
    /// Matching attempts as JSON lines, oldest first (to a file or standard output).
    Export {
        #[command(flatten)]
        filters: Filters,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug, Default)]
pub struct Filters {
    /// From this time on: Unix seconds, 2026-11-23, 2026-11-23T08:00:00Z, or an age (90s,
    /// 15m, 2h, 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Up to this time, included (same forms as --since; a date alone means its whole day).
    #[arg(long)]
    pub until: Option<String>,
    /// success or failure.
    #[arg(long)]
    pub status: Option<String>,
    /// NetSuite's Detail code, e.g. InvalidSignature, InvalidTimestamp, nonce_used.
    #[arg(long)]
    pub detail: Option<String>,
    /// The user's email.
    #[arg(long)]
    pub user: Option<String>,
    /// The integration (application) name.
    #[arg(long)]
    pub integration: Option<String>,
    /// The token name.
    #[arg(long)]
    pub token: Option<String>,
    /// The client's IP address.
    #[arg(long)]
    pub ip: Option<String>,
    /// rest, restlet, soap or token.
    #[arg(long)]
    pub surface: Option<String>,
    /// At most this many attempts (list: default 50; export: all).
    #[arg(long)]
    pub limit: Option<i64>,
}

pub async fn run(
    command: AuditCommand,
    store_args: &StoreArgs,
    account: &AccountArg,
) -> Result<()> {
    let store = store_args.open_for(true).await?;
    let now = store.now();
    let account = account_filter(account.account.as_deref())?;
    match command {
        AuditCommand::List(filters) => {
            let mut query = filters.query(account, now)?;
            if query.limit == 0 {
                query.limit = 50;
            }
            let records = store.login_records(&query).await?;
            if store_args.json {
                return output::json(&records);
            }
            print_table(&records);
            Ok(())
        }
        AuditCommand::Show { request_id } => {
            let query = LoginQuery {
                request_id: Some(request_id.clone()),
                account,
                ..LoginQuery::default()
            };
            let records = store.login_records(&query).await?;
            let Some(record) = records.first() else {
                bail!(
                    "no login attempt has request id {request_id} (check the x-request-id header of the response, and --account)"
                );
            };
            if store_args.json {
                return output::json(record);
            }
            print_record(record)
        }
        AuditCommand::Export { filters, out } => {
            let mut records = store.login_records(&filters.query(account, now)?).await?;
            records.reverse();
            let mut sink: Box<dyn std::io::Write> = match &out {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            for record in &records {
                serde_json::to_writer(&mut sink, record)?;
                sink.write_all(b"\n")?;
            }
            sink.flush()?;
            if let Some(path) = out {
                eprintln!(
                    "{} login attempts written to {}",
                    records.len(),
                    path.display()
                );
            }
            Ok(())
        }
    }
}

impl Filters {
    fn query(&self, account: Option<String>, now: i64) -> Result<LoginQuery> {
        let status = match self
            .status
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => None,
            Some("success") => Some("Success".to_owned()),
            Some("failure") => Some("Failure".to_owned()),
            Some(other) => bail!("--status must be success or failure, not `{other}`"),
        };
        let limit = match self.limit {
            Some(n) if n <= 0 => bail!("--limit must be at least 1"),
            Some(n) => n,
            None => 0,
        };
        Ok(LoginQuery {
            account,
            since: self
                .since
                .as_deref()
                .map(|t| parse_time(t, now))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|t| parse_until(t, now))
                .transpose()?,
            status,
            detail: self.detail.clone(),
            user: self.user.as_deref().map(str::to_ascii_lowercase),
            integration: self.integration.clone(),
            token_name: self.token.clone(),
            ip: self.ip.clone(),
            surface: self.surface.clone(),
            request_id: None,
            limit,
        })
    }
}

/// The one-line reason a failure shows in the table.
fn why(record: &LoginRecord) -> String {
    let diagnosis = &record.diagnosis;
    let text = ["problem", "realm"]
        .iter()
        .find_map(|key| diagnosis.get(key).and_then(|v| v.as_str()))
        .map(str::to_owned)
        .or_else(|| diagnosis.get("missing").map(ToString::to_string))
        .unwrap_or_default();
    if text.chars().count() > 70 {
        format!("{}…", text.chars().take(69).collect::<String>())
    } else {
        text
    }
}

fn print_table(records: &[LoginRecord]) {
    let mut table = Table::new(&[
        "TIME",
        "STATUS",
        "DETAIL",
        "SURFACE",
        "INTEGRATION",
        "TOKEN",
        "USER",
        "IP",
        "REQUEST ID",
        "WHY",
    ]);
    let or_dash = |v: &Option<Text>| v.as_deref().unwrap_or("-").to_owned();
    for r in records {
        table.row(vec![
            output::time(r.at),
            r.status.to_string(),
            if r.detail.is_empty() {
                "-".to_owned()
            } else {
                r.detail.to_string()
            },
            r.surface.to_string(),
            or_dash(&r.integration),
            or_dash(&r.token_name),
            or_dash(&r.user),
            r.ip.to_string(),
            r.request_id.to_string(),
            why(r),
        ]);
    }
    table.print();
}

fn print_record(r: &LoginRecord) -> Result<()> {
    let or_dash = |v: &Option<Text>| v.as_deref().unwrap_or("-").to_owned();
    output::fields(&[
        ("time", output::time(r.at)),
        ("request id", r.request_id.to_string()),
        ("status", r.status.to_string()),
        (
            "detail",
            if r.detail.is_empty() {
                "-".to_owned()
            } else {
                r.detail.to_string()
            },
        ),
        ("surface", r.surface.to_string()),
        ("request", r.request_uri.to_string()),
        ("ip", r.ip.to_string()),
        ("account", or_dash(&r.account)),
        ("integration", or_dash(&r.integration)),
        ("token", or_dash(&r.token_name)),
        ("user", or_dash(&r.user)),
        ("role", or_dash(&r.role)),
    ]);
    if !r.diagnosis.is_null() {
        println!("diagnosis:");
        println!("{}", serde_json::to_string_pretty(&r.diagnosis)?);
    }
    Ok(())
}

/// Unix seconds, a UTC date or date-time (RFC 3339 with `Z`), or an age before `now`.
/// The account filter in the trail's form (`1234567_SB1`): typed otherwise (`1234567_sb1`,
/// the host form `1234567-sb1`) it matched nothing and said nothing.
fn account_filter(typed: Option<&str>) -> Result<Option<String>> {
    typed
        .map(|typed| {
            keycard_core::AccountId::parse(typed)
                .or_else(|_| keycard_core::AccountId::from_host_slug(typed))
                .map(|id| id.as_str().to_owned())
        })
        .transpose()
        .map_err(Into::into)
}

/// An upper bound: as [`parse_time`], but a date alone is the end of that day, so that
/// `--since 2026-11-23 --until 2026-11-23` is that whole day (it was its first second).
pub fn parse_until(text: &str, now: i64) -> Result<i64> {
    let start = parse_time(text, now)?;
    let text = text.trim().as_bytes();
    let date_only = text.len() == 10 && text.get(4) == Some(&b'-') && text.get(7) == Some(&b'-');
    Ok(if date_only { start + 86_399 } else { start })
}

pub fn parse_time(text: &str, now: i64) -> Result<i64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    if let Some(unit) = text.chars().last().filter(|c| "smhd".contains(*c)) {
        if let Ok(amount) = text[..text.len() - 1].parse::<i64>() {
            let scale = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                _ => 86_400,
            };
            return Ok(now - amount.saturating_mul(scale));
        }
    }
    let invalid = || {
        anyhow::anyhow!(
            "`{text}` is not a time: use Unix seconds, 2026-11-23, 2026-11-23T08:00:00Z or an age such as 15m, 2h, 7d"
        )
    };
    let (date, clock) = match text.split_once(['T', ' ']) {
        Some((date, clock)) => (date, Some(clock.trim_end_matches('Z'))),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-').map(str::parse::<i64>);
    let (Some(Ok(year)), Some(Ok(month)), Some(Ok(day))) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(invalid());
    }
    let mut seconds = keycard_core::time::days_from_civil(year, month, day) * 86_400;
    if let Some(clock) = clock {
        let fields: Vec<&str> = clock.split(':').collect();
        if fields.len() < 2 || fields.len() > 3 {
            return Err(invalid());
        }
        let mut scale = 3600;
        for (field, limit) in fields.iter().zip([24, 60, 61]) {
            let value: i64 = field.parse().map_err(|_| invalid())?;
            if !(0..limit).contains(&value) {
                return Err(invalid());
            }
            seconds += value * scale;
            scale /= 60;
        }
    }
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use super::{account_filter, parse_time, parse_until};

    #[test]
    fn account_filters_are_read_in_the_trails_form() {
        for typed in ["1234567_sb1", "1234567-sb1", " 1234567_SB1"] {
            assert_eq!(
                account_filter(Some(typed)).unwrap().as_deref(),
                Some("1234567_SB1"),
                "{typed}"
            );
        }
        assert_eq!(account_filter(None).unwrap(), None);
        assert!(account_filter(Some("not an account")).is_err());
    }

    #[test]
    fn a_date_alone_as_an_upper_bound_is_its_whole_day() {
        assert_eq!(parse_until("2000-02-29", 0).unwrap(), 951_782_400 + 86_399);
        assert_eq!(parse_until("1700000000", 0).unwrap(), 1_700_000_000);
        assert_eq!(
            parse_until("2023-11-14T22:13:20Z", 0).unwrap(),
            1_700_000_000
        );
        assert_eq!(parse_until("2h", 10_000).unwrap(), 10_000 - 7_200);
    }

    #[test]
    fn reads_times() {
        assert_eq!(parse_time("1700000000", 0).unwrap(), 1_700_000_000);
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z", 0).unwrap(),
            1_700_000_000
        );
        assert_eq!(parse_time("2000-02-29", 0).unwrap(), 951_782_400);
        assert_eq!(parse_time("15m", 10_000).unwrap(), 10_000 - 900);
        assert_eq!(parse_time("2d", 200_000).unwrap(), 200_000 - 172_800);
        for bad in ["yesterday", "2023-13-01", "2023-11-14T25:00:00Z", "5w", ""] {
            assert!(parse_time(bad, 0).is_err(), "{bad}");
        }
    }
}
