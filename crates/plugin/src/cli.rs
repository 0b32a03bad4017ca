//! The command line: subcommands, their arguments and `--help`.

use clap::{Parser, Subcommand, ValueEnum, builder::TypedValueParser};
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
    /// The table with more columns (the key fingerprints and permissions).
    Wide,
    /// The key set as YAML, as `kubectl get -o yaml` prints it.
    Yaml,
    /// The key set as JSON, as `kubectl get -o json` prints it.
    Json,
    /// `dataminerkeyset.keys.dataminer.services/NAME`, one per line.
    Name,
}

/// `create -o`: a manifest or a name (there is no table to widen).
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ManifestOutput {
    /// The key set as YAML.
    Yaml,
    /// The key set as JSON.
    Json,
    /// `dataminerkeyset.keys.dataminer.services/NAME`.
    Name,
}

impl From<ManifestOutput> for Output {
    fn from(o: ManifestOutput) -> Output {
        match o {
            ManifestOutput::Yaml => Output::Yaml,
            ManifestOutput::Json => Output::Json,
            ManifestOutput::Name => Output::Name,
        }
    }
}

/// The permissions a key set can carry, as the CRD names them.
const PERMISSIONS: [&str; 7] = [
    "RegisterCatalogItems",
    "AddDataMinerNodes",
    "UpdateCatalogPublishingState",
    "DeployCatalogItemVersion",
    "DownloadCatalogVersions",
    "ReadCatalogItems",
    "RetrieveUsageData",
];

#[derive(Subcommand, Debug)]
pub(super) enum Command {
    /// List key sets: label, scope, permissions, readiness, revisions, age.
    #[command(after_help = LIST_HELP)]
    List(ListArgs),
    /// Show a key set: created when and by whom, keys' revisions and fingerprints, conditions,
    /// history, recent Events. Never a key value.
    #[command(after_help = DESCRIBE_HELP)]
    Describe(DescribeArgs),
    /// Print a key value (needs read access to the Secret).
    #[command(after_help = SHOW_HELP)]
    Show(KeyArgs),
    /// Put a key value on the clipboard (OSC 52, or a clipboard tool); prints only a
    /// confirmation.
    #[command(after_help = COPY_HELP)]
    Copy(KeyArgs),
    /// Create a key set and wait until its keys exist.
    #[command(after_help = CREATE_HELP)]
    Create(CreateArgs),
    /// Replace the primary or the secondary key (the other one keeps working).
    #[command(after_help = REGENERATE_HELP)]
    Regenerate(RegenerateArgs),
    /// Destroy both keys for good.
    #[command(after_help = REVOKE_HELP)]
    Revoke(ConfirmedArgs),
    /// Take the values now in the Secret as the key set's keys, when the operator cannot prove
    /// them (its proof key was lost: docs/backup.md).
    #[command(after_help = ADOPT_HELP)]
    Adopt(AdoptArgs),
}

const LIST_HELP: &str = "\
Examples:
  kubectl dmkeys list
  kubectl dmkeys list -A --organization skyline-demo
  kubectl dmkeys list -o wide

Exit codes: 0 ok (also when none are found), 1 error, 2 usage, 6 forbidden, 7 CRD not installed.";

const DESCRIBE_HELP: &str = "\
Examples:
  kubectl dmkeys describe catalog-ci
  kubectl dmkeys describe catalog-ci -n platform -o yaml

Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 6 forbidden, 7 CRD not installed.";

const SHOW_HELP: &str = "\
Examples:
  kubectl dmkeys show catalog-ci
  kubectl dmkeys show catalog-ci secondary

Exit codes: 0 ok, 1 error (no keys yet), 2 usage, 3 not found, 6 forbidden (the Secret too),
7 CRD not installed, 8 no trustworthy key (revoked, being revoked, drifted, or a Secret or value
the operator did not record).";

const COPY_HELP: &str = "\
Examples:
  kubectl dmkeys copy catalog-ci
  kubectl dmkeys copy catalog-ci secondary

Exit codes: 0 ok, 1 error (no keys yet, no terminal and no clipboard tool), 2 usage, 3 not found,
6 forbidden (the Secret too), 7 CRD not installed, 8 no trustworthy key (as for show).";

const CREATE_HELP: &str = "\
Examples:
  kubectl dmkeys create catalog-ci --label 'GitHub catalog pipeline' \\
      --organization skyline-demo --permission RegisterCatalogItems
  kubectl dmkeys create dms-prod --label 'Production DMS' --system dms-prod-01 \\
      --organization skyline-demo --dry-run -o yaml > dms-prod.yaml

Exit codes: 0 ok, 1 error (also: a key set of that name exists), 2 usage (also: admission refused
the key set, with what to change), 5 the operator did not make the keys in time, 6 forbidden,
7 CRD not installed.";

const REGENERATE_HELP: &str = "\
Examples:
  kubectl dmkeys regenerate catalog-ci secondary
  kubectl dmkeys regenerate catalog-ci primary --confirm-label 'GitHub catalog pipeline'

The request is spec.regenerate.<slot>.revision, owned by this plugin's field manager. When a
manifest (kubectl apply, Argo CD, Flux) already sets that field, the manifest drives the slot:
raise the revision there; --force-conflicts takes the field over from a manifest applied by hand.

Exit codes: 0 ok, 1 error (also: the field belongs to another manager), 2 usage, 3 not found,
4 confirmation mismatch, 5 the operator did not report in time, 6 forbidden, 7 CRD not installed,
8 the key set is revoked or being revoked.";

const REVOKE_HELP: &str = "\
Examples:
  kubectl dmkeys revoke catalog-ci
  kubectl dmkeys revoke catalog-ci --confirm-label 'GitHub catalog pipeline' --wait=false

Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 confirmation mismatch, 5 the operator did not
report in time, 6 forbidden, 7 CRD not installed.";

const ADOPT_HELP: &str = "\
Examples:
  kubectl dmkeys adopt catalog-ci

Exit codes: 0 ok, 1 error (also: the operator refused the adoption, with its reason), 2 usage,
3 not found, 4 confirmation mismatch, 5 the operator did not report in time, 6 forbidden,
7 CRD not installed, 8 the key set is revoked.";

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
    /// Output format: a table by default.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Output>,
}

#[derive(clap::Args, Debug)]
pub(super) struct DescribeArgs {
    /// The key set's name (metadata.name).
    pub name: String,
    /// The key set itself, as `kubectl get -o` prints it (`wide` is the description).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Output>,
}

#[derive(clap::Args, Debug)]
pub(super) struct KeyArgs {
    /// The key set's name (metadata.name).
    pub name: String,
    /// Which key.
    #[arg(value_enum, default_value = "primary")]
    pub slot: SlotArg,
}

#[derive(clap::Args, Debug)]
pub(super) struct CreateArgs {
    /// The key set's name (metadata.name): lowercase letters, digits and '-', at most 63.
    pub name: String,
    /// What the keys are for, shown to admins (1-100 characters); also the phrase that confirms
    /// a regenerate or a revoke.
    #[arg(long)]
    pub label: String,
    /// Scope the keys to this organization (or, with --system, name the system's organization).
    #[arg(long)]
    pub organization: Option<String>,
    /// Scope the keys to this DataMiner System.
    #[arg(long)]
    pub system: Option<String>,
    /// A permission of the keys; repeat for each (organization keys need at least one).
    #[arg(long = "permission", value_parser = clap::builder::PossibleValuesParser::new(PERMISSIONS).try_map(|s: String| parse_permission(&s)))]
    pub permissions: Vec<Permission>,
    /// How the keys are encoded: Hex32 (32 hex characters, 128 bits, as dataminer.services
    /// issues) or Base64Url256 (43 characters, 256 bits).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["Hex32", "Base64Url256"]).try_map(|s: String| parse_format(&s)), default_value = "Hex32")]
    pub key_format: KeyFormat,
    /// Print the manifest instead of creating it.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the key set (the manifest with --dry-run, else the created key set) in this format
    /// instead of a sentence.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ManifestOutput>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(clap::Args, Debug)]
pub(super) struct RegenerateArgs {
    /// The key set's name (metadata.name).
    pub name: String,
    /// Which key to replace.
    #[arg(value_enum)]
    pub slot: SlotArg,
    /// The key set's label, to confirm without a prompt.
    #[arg(long)]
    pub confirm_label: Option<String>,
    /// Take spec.regenerate.<slot> over from the manager that owns it (a manifest applied with
    /// kubectl); that manifest then needs the new revision before it applies again.
    #[arg(long)]
    pub force_conflicts: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(clap::Args, Debug)]
pub(super) struct ConfirmedArgs {
    /// The key set's name (metadata.name).
    pub name: String,
    /// The key set's label, to confirm without a prompt.
    #[arg(long)]
    pub confirm_label: Option<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(clap::Args, Debug)]
pub(super) struct AdoptArgs {
    #[command(flatten)]
    pub confirmed: ConfirmedArgs,
    /// Take spec.adopt over from the manager that owns it (a manifest applied with kubectl).
    #[arg(long)]
    pub force_conflicts: bool,
}

#[derive(clap::Args, Debug)]
pub(super) struct WaitArgs {
    /// Wait for the operator to report the result (--wait=false to return at once).
    #[arg(long, default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
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
    use super::{Cli, parse_duration};
    use clap::{CommandFactory, Parser};
    use std::time::Duration;

    #[test]
    fn every_argument_is_described_and_every_subcommand_has_examples_and_exit_codes() {
        let cli = Cli::command();
        for sub in cli.get_subcommands() {
            let name = sub.get_name();
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                assert!(arg.get_help().is_some(), "{name}: {id} has no description");
            }
            let after = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            let example = format!("Examples:\n  kubectl dmkeys {name}");
            assert!(after.contains(&example), "{name}: {after}");
            assert!(after.contains("Exit codes: 0 ok"), "{name}: {after}");
        }
        for arg in cli.get_arguments() {
            assert!(
                arg.get_help().is_some(),
                "{} has no description",
                arg.get_id()
            );
        }
        let mut create = Cli::command();
        let help = create
            .find_subcommand_mut("create")
            .unwrap()
            .render_long_help()
            .to_string();
        for value in [
            "RetrieveUsageData",
            "AddDataMinerNodes",
            "Base64Url256",
            "Hex32",
        ] {
            assert!(help.contains(value), "{value} not listed: {help}");
        }
    }

    #[test]
    fn flags_take_what_their_help_says() {
        let parse = |args: &[&str]| Cli::try_parse_from(["kubectl-dmkeys"].iter().chain(args));
        // A bare --wait waits; --wait=false does not; a name after --wait stays the name.
        assert!(parse(&["revoke", "ks", "--wait"]).is_ok());
        assert!(parse(&["revoke", "--wait", "ks"]).is_ok());
        assert!(parse(&["revoke", "ks", "--wait=false"]).is_ok());
        // create has no table, so no -o wide.
        assert!(
            parse(&[
                "create", "ks", "--label", "l", "--system", "s", "-o", "wide"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "create", "ks", "--label", "l", "--system", "s", "-o", "name"
            ])
            .is_ok()
        );
        let bad = parse(&[
            "create",
            "ks",
            "--label",
            "l",
            "--system",
            "s",
            "--permission",
            "Nope",
        ])
        .unwrap_err()
        .to_string();
        assert!(bad.contains("RegisterCatalogItems"), "{bad}");
    }

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
