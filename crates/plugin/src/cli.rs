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

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Output {
    Wide,
    Yaml,
    Json,
}

#[derive(Subcommand, Debug)]
pub(super) enum Command {
    /// List key sets: label, scope, permissions, readiness, revisions, age.
    List(ListArgs),
    /// Show a key set: created when and by whom, keys' revisions and fingerprints, conditions,
    /// history, recent Events. Never a key value.
    Describe { name: String },
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
    /// How long to wait, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
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
