//! The command line: subcommands, their arguments and `--help`.

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::api::{KeyFormat, Permission, Slot};

const AFTER_HELP: &str = "\
Exit codes: 0 ok, 1 error, 2 usage, 3 key set not found, 4 confirmation mismatch,
5 operator did not respond in time, 6 forbidden by RBAC, 7 CRD not installed,
8 no trustworthy key (revoked, or the Secret or value is not the one the operator recorded).

Regenerate, revoke and adopt ask you to type the key set's label, as dataminer.services does.
Scripts pass --confirm-label instead.";

#[derive(Parser, Debug)]
#[command(name = "kubectl-dmkeys", bin_name = "kubectl dmkeys", version, about = "Manage DataMiner key sets (DataMinerKeySet) from kubectl", after_help = AFTER_HELP)]
pub struct Cli {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true)]
    pub(super) kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub(super) context: Option<String>,
    /// Namespace (default: the context's namespace).
    #[arg(short = 'n', long, global = true)]
    pub(super) namespace: Option<String>,
    /// The kubeconfig cluster to use.
    #[arg(long, global = true)]
    pub(super) cluster: Option<String>,
    /// The kubeconfig user to use.
    #[arg(long, global = true)]
    pub(super) user: Option<String>,
    /// Act as this user (impersonation, as kubectl's --as).
    #[arg(long = "as", global = true)]
    pub(super) as_user: Option<String>,
    /// Act as a member of this group (repeat; needs --as).
    #[arg(long = "as-group", global = true, requires = "as_user")]
    pub(super) as_groups: Vec<String>,
    /// How long one request to the API server may take (e.g. 30s, 2m; 0: no limit).
    #[arg(long, global = true, value_parser = parse_duration)]
    pub(super) request_timeout: Option<std::time::Duration>,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum SlotArg {
    Primary,
    Secondary,
}

impl From<SlotArg> for Slot {
    fn from(arg: SlotArg) -> Slot {
        match arg {
            SlotArg::Primary => Slot::Primary,
            SlotArg::Secondary => Slot::Secondary,
        }
    }
}

/// `-o`, as kubectl spells it.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Output {
    Wide,
    Yaml,
    Json,
    /// `dataminerkeyset.keys.dataminer.services/NAME`, one per line.
    Name,
}

#[derive(Subcommand, Debug)]
pub(super) enum Command {
    /// List key sets: label, scope, permissions, readiness, revisions, age.
    List(ListArgs),
    /// Show a key set: created when and by whom, keys' revisions and fingerprints, conditions,
    /// history, recent Events. Never a key value.
    Describe(DescribeArgs),
    /// Print a key value (needs read access to the Secret).
    Show(KeyArgs),
    /// Put a key value on the clipboard (OSC 52, or a clipboard tool); prints only a
    /// confirmation.
    Copy(KeyArgs),
    /// Create a key set and wait until its keys exist.
    Create(CreateArgs),
    /// Replace the primary or the secondary key (the other one keeps working).
    Regenerate(RegenerateArgs),
    /// Destroy both keys for good.
    Revoke(ConfirmedArgs),
    /// Take the values now in the Secret as the key set's keys, when the operator cannot prove
    /// them (its proof key was lost: docs/backup.md).
    Adopt(ConfirmedArgs),
}

#[derive(clap::Args, Debug)]
pub(super) struct ListArgs {
    /// All namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Only key sets of this organization.
    #[arg(long)]
    pub organization: Option<String>,
    /// Only key sets of this DataMiner System.
    #[arg(long)]
    pub system: Option<String>,
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Output>,
}

#[derive(clap::Args, Debug)]
pub(super) struct DescribeArgs {
    pub name: String,
    /// The key set itself, as `kubectl get -o` prints it (`wide` is the description).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Output>,
}

#[derive(clap::Args, Debug)]
pub(super) struct KeyArgs {
    pub name: String,
    #[arg(value_enum, default_value = "primary")]
    pub slot: SlotArg,
}

#[derive(clap::Args, Debug)]
pub(super) struct CreateArgs {
    pub name: String,
    #[arg(long)]
    pub label: String,
    #[arg(long)]
    pub organization: Option<String>,
    #[arg(long)]
    pub system: Option<String>,
    /// Repeat for each permission (organization keys need at least one).
    #[arg(long = "permission", value_parser = parse_permission)]
    pub permissions: Vec<Permission>,
    #[arg(long, value_parser = parse_format, default_value = "Hex32")]
    pub key_format: KeyFormat,
    /// Print the manifest instead of creating it.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Output>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(clap::Args, Debug)]
pub(super) struct RegenerateArgs {
    pub name: String,
    #[arg(value_enum)]
    pub slot: SlotArg,
    /// The key set's label, to confirm without a prompt.
    #[arg(long)]
    pub confirm_label: Option<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(clap::Args, Debug)]
pub(super) struct ConfirmedArgs {
    pub name: String,
    /// The key set's label, to confirm without a prompt.
    #[arg(long)]
    pub confirm_label: Option<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(clap::Args, Debug)]
pub(super) struct WaitArgs {
    /// Wait for the operator to report the result.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub wait: bool,
    /// How long to wait (e.g. 90s, 2m, 1h; a bare number is seconds).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

/// A duration as kubectl takes one: `90s`, `2m`, `1h30m`, `500ms`, or a bare number of seconds.
pub(super) fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {s:?}: use for example 90s, 2m or 1h30m");
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    let mut total = std::time::Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (number, after) = rest.split_at(digits);
        let number: u64 = number.parse().map_err(|_| bad())?;
        let unit_len = after.len()
            - after
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let (unit, after) = after.split_at(unit_len);
        let one = match unit {
            "ms" => std::time::Duration::from_millis(1),
            "s" => std::time::Duration::from_secs(1),
            "m" => std::time::Duration::from_secs(60),
            "h" => std::time::Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        total += one * u32::try_from(number).map_err(|_| bad())?;
        rest = after;
    }
    match s.is_empty() {
        true => Err(bad()),
        false => Ok(total),
    }
}

fn parse_permission(s: &str) -> std::result::Result<Permission, String> {
    serde_json::from_value(json!(s)).map_err(|_| {
        format!("unknown permission {s:?}: use RegisterCatalogItems, AddDataMinerNodes, UpdateCatalogPublishingState, DeployCatalogItemVersion, DownloadCatalogVersions, ReadCatalogItems or RetrieveUsageData")
    })
}

fn parse_format(s: &str) -> std::result::Result<KeyFormat, String> {
    serde_json::from_value(json!(s))
        .map_err(|_| format!("unknown key format {s:?}: use Hex32 or Base64Url256"))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_are_read_as_kubectl_writes_them() {
        for (text, want) in [
            ("60", 60),
            ("90s", 90),
            ("2m", 120),
            ("1h30m", 5400),
            ("0", 0),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(want)),
                "{text}"
            );
        }
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "m", "10x", "1.5h", "-3s", "s10"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
