//! `kubectl dmkeys`: the admin workflows of dataminer.services, from the terminal.
//!
//! Regenerate and revoke are patches to `spec.regenerate` / `spec.revoke` under the plugin's own
//! field manager, confirmed by typing the key set's label, exactly as the product asks.

pub mod render;

use std::{
    io::{BufRead, IsTerminal, Write},
    time::Duration,
};

use clap::{Parser, Subcommand, ValueEnum};
use k8s_openapi::{
    api::{authentication::v1::SelfSubjectReview, core::v1::Secret, events::v1::Event},
    jiff::Timestamp,
};
use kube::{
    Api, Client, Config, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use serde_json::json;

use crate::api::{
    DataMinerKeySet, DataMinerKeySetSpec, KeyFormat, OrganizationScope, Permission, REVOKED, Scope,
    SystemScope,
};

/// Field manager of the plugin's patches: separate from the operator's and from the one that
/// applies the manifest (kubectl, Argo CD), so each owns only its own fields.
pub const FIELD_MANAGER: &str = "kubectl-dmkeys";

/// Exit codes (documented in `--help`).
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const CONFIRMATION_MISMATCH: u8 = 4;
    pub const TIMEOUT: u8 = 5;
    pub const FORBIDDEN: u8 = 6;
    pub const NO_CRD: u8 = 7;
    /// The key set is revoked, or the Secret or value is not the one the operator recorded.
    pub const UNTRUSTED: u8 = 8;
}

const AFTER_HELP: &str = "\
Exit codes: 0 ok, 1 error, 2 usage, 3 key set not found, 4 confirmation mismatch,
5 operator did not respond in time, 6 forbidden by RBAC, 7 CRD not installed,
8 no trustworthy key (revoked, or the Secret or value is not the one the operator recorded).

Regenerate and revoke ask you to type the key set's label, as dataminer.services does.
Scripts pass --confirm-label instead.";

#[derive(Parser, Debug)]
#[command(name = "kubectl-dmkeys", bin_name = "kubectl dmkeys", version, about = "Manage DataMiner key sets (DataMinerKeySet) from kubectl", after_help = AFTER_HELP)]
pub struct Cli {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true)]
    kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    context: Option<String>,
    /// Namespace (default: the context's namespace).
    #[arg(short = 'n', long, global = true)]
    namespace: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum SlotArg {
    Primary,
    Secondary,
}

impl SlotArg {
    fn name(self) -> &'static str {
        match self {
            SlotArg::Primary => "primary",
            SlotArg::Secondary => "secondary",
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
enum Command {
    /// List key sets: label, scope, permissions, readiness, revisions, age.
    List {
        /// All namespaces.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Only key sets of this organization.
        #[arg(long)]
        organization: Option<String>,
        /// Only key sets of this DataMiner System.
        #[arg(long)]
        system: Option<String>,
        #[arg(short = 'o', long, value_enum)]
        output: Option<Output>,
    },
    /// Show a key set: created when and by whom, keys' revisions and fingerprints, conditions,
    /// history, recent Events. Never a key value.
    Describe { name: String },
    /// Print a key value (needs read access to the Secret).
    Show {
        name: String,
        #[arg(value_enum, default_value = "primary")]
        slot: SlotArg,
    },
    /// Put a key value on the clipboard (OSC 52, or a clipboard tool); prints only a
    /// confirmation.
    Copy {
        name: String,
        #[arg(value_enum, default_value = "primary")]
        slot: SlotArg,
    },
    /// Create a key set and wait until its keys exist.
    Create {
        name: String,
        #[arg(long)]
        label: String,
        #[arg(long)]
        organization: Option<String>,
        #[arg(long)]
        system: Option<String>,
        /// Repeat for each permission (organization keys need at least one).
        #[arg(long = "permission", value_parser = parse_permission)]
        permissions: Vec<Permission>,
        #[arg(long, value_parser = parse_format, default_value = "Hex32")]
        key_format: KeyFormat,
        /// Print the manifest instead of creating it.
        #[arg(long)]
        dry_run: bool,
        #[arg(short = 'o', long, value_enum)]
        output: Option<Output>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Replace the primary or the secondary key (the other one keeps working).
    Regenerate {
        name: String,
        #[arg(value_enum)]
        slot: SlotArg,
        /// The key set's label, to confirm without a prompt.
        #[arg(long)]
        confirm_label: Option<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Destroy both keys for good.
    Revoke {
        name: String,
        /// The key set's label, to confirm without a prompt.
        #[arg(long)]
        confirm_label: Option<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

#[derive(clap::Args, Debug)]
struct WaitArgs {
    /// Wait for the operator to report the result.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    wait: bool,
    /// How long to wait, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
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

/// A failure with the exit code it maps to and a message for the user.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

type Result<T> = std::result::Result<T, Failure>;

struct Ctx {
    client: Client,
    namespace: String,
}

async fn connect(cli: &Cli) -> Result<Ctx> {
    let kubeconfig = match &cli.kubeconfig {
        Some(path) => Kubeconfig::read_from(path),
        None => Kubeconfig::read(),
    }
    .map_err(|e| fail(exit::ERROR, format!("cannot read the kubeconfig: {e}")))?;
    let options = KubeConfigOptions {
        context: cli.context.clone(),
        ..Default::default()
    };
    let config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| fail(exit::ERROR, format!("kubeconfig: {e}")))?;
    let namespace = cli
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).map_err(|e| fail(exit::ERROR, e.to_string()))?;
    Ok(Ctx { client, namespace })
}

/// Maps API errors to the plugin's messages and exit codes.
fn api_error(ctx: &Ctx, what: &str, name: Option<&str>, e: kube::Error) -> Failure {
    match &e {
        kube::Error::Api(s)
            if s.code == 404
                && s.details
                    .as_ref()
                    .is_some_and(|d| d.kind == "dataminerkeysets") =>
        {
            fail(
                exit::NOT_FOUND,
                format!(
                    "key set {} not found in namespace {}",
                    name.unwrap_or("?"),
                    ctx.namespace
                ),
            )
        }
        // The API server answers a plain 404 for a resource type it does not serve.
        kube::Error::Api(s)
            if s.code == 404
                && (s.message.contains("page not found")
                    || s.message.contains("could not find the requested resource")) =>
        {
            fail(
                exit::NO_CRD,
                "the DataMinerKeySet CRD is not installed in this cluster: install the dataminer-keys-operator chart (or kubectl apply --server-side -f crds/)",
            )
        }
        kube::Error::Api(s) if s.code == 404 => {
            fail(exit::NOT_FOUND, format!("{what}: {}", s.message))
        }
        kube::Error::Api(s) if s.code == 403 => {
            fail(exit::FORBIDDEN, format!("{what}: {}", s.message))
        }
        _ => fail(exit::ERROR, format!("{what}: {e}")),
    }
}

async fn get(ctx: &Ctx, name: &str) -> Result<DataMinerKeySet> {
    Api::<DataMinerKeySet>::namespaced(ctx.client.clone(), &ctx.namespace)
        .get(name)
        .await
        .map_err(|e| api_error(ctx, "reading the key set", Some(name), e))
}

/// Who the API server says we are.
async fn whoami(ctx: &Ctx) -> String {
    let review = SelfSubjectReview::default();
    match Api::<SelfSubjectReview>::all(ctx.client.clone())
        .create(&PostParams::default(), &review)
        .await
    {
        Ok(r) => r
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username)
            .unwrap_or_else(|| "<unknown>".into()),
        Err(_) => "<unknown>".into(),
    }
}

/// Asks the user to type the label; `None` when not interactive.
fn prompt_label(ks: &DataMinerKeySet, action: &str) -> Option<String> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    let mut err = std::io::stderr();
    let _ = writeln!(err, "{action}");
    let _ = write!(
        err,
        "Type the key set's label ({}) to confirm: ",
        ks.spec.label
    );
    let _ = err.flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    Some(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The typed or passed label, checked against the key set before anything is written.
fn confirm(ks: &DataMinerKeySet, given: Option<String>, action: &str) -> Result<String> {
    let typed = match given {
        Some(label) => label,
        None => prompt_label(ks, action).ok_or_else(|| {
            fail(
                exit::USAGE,
                "not a terminal: pass --confirm-label with the key set's label",
            )
        })?,
    };
    if typed != ks.spec.label {
        return Err(fail(
            exit::CONFIRMATION_MISMATCH,
            format!(
                "confirmation does not match the label of {}: nothing was changed",
                ks.name_any()
            ),
        ));
    }
    Ok(typed)
}

async fn wait_for(
    ctx: &Ctx,
    name: &str,
    timeout: u64,
    done: impl Fn(&DataMinerKeySet) -> bool,
) -> Result<DataMinerKeySet> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    loop {
        let ks = get(ctx, name).await?;
        if done(&ks) {
            return Ok(ks);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(fail(
                exit::TIMEOUT,
                format!(
                    "the operator did not report the result within {timeout}s: is dataminer-keys-operator running? (kubectl describe dmks {name})"
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn slot_status(ks: &DataMinerKeySet, slot: SlotArg) -> Option<crate::api::KeyStatus> {
    let s = ks.status.as_ref()?;
    match slot {
        SlotArg::Primary => s.primary.clone(),
        SlotArg::Secondary => s.secondary.clone(),
    }
}

/// The key in `slot`, only if it is the one the operator recorded: the key set is not revoked,
/// the Secret is the one the operator created (uid in status), and the value's fingerprint is
/// the one in status. Anything else is refused with [`exit::UNTRUSTED`], never printed.
async fn read_key(ctx: &Ctx, name: &str, slot: SlotArg) -> Result<String> {
    let ks = get(ctx, name).await?;
    let status = ks.status.clone().unwrap_or_default();
    if status.revoked_at.is_some() {
        return Err(fail(
            exit::UNTRUSTED,
            format!("key set {name} is revoked: its keys were destroyed; create a new key set"),
        ));
    }
    let secret_name = status
        .secret_name
        .clone()
        .ok_or_else(|| fail(exit::ERROR, format!("key set {name} has no keys yet")))?;
    let recorded = slot_status(&ks, slot)
        .ok_or_else(|| fail(exit::ERROR, format!("key set {name} has no keys yet")))?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let secret = match secrets.get(&secret_name).await {
        Ok(s) => s,
        Err(kube::Error::Api(s)) if s.code == 403 => {
            let me = whoami(ctx).await;
            return Err(fail(
                exit::FORBIDDEN,
                format!(
                    "you ({me}) may not read Secret {secret_name} in namespace {}: viewing keys needs get on secrets there (for example the dataminer-keys-admin or admin role)",
                    ctx.namespace
                ),
            ));
        }
        Err(e) => return Err(api_error(ctx, "reading the Secret", None, e)),
    };
    if secret.metadata.uid.is_none() || secret.metadata.uid != status.secret_uid {
        return Err(fail(
            exit::UNTRUSTED,
            format!(
                "Secret {secret_name} is not the Secret the operator created for key set {name} (another uid); its contents are not shown. See `kubectl dmkeys describe {name}`"
            ),
        ));
    }
    let keys = ks.spec.data_key_names();
    let key = &keys[if slot == SlotArg::Primary { 0 } else { 1 }];
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .ok_or_else(|| {
            fail(
                exit::UNTRUSTED,
                format!("Secret {secret_name} holds no {key}"),
            )
        })?;
    if crate::keys::fingerprint(value.as_bytes()) != recorded.fingerprint {
        return Err(fail(
            exit::UNTRUSTED,
            format!(
                "the {} key in Secret {secret_name} does not match the fingerprint the operator recorded ({}): it was changed outside the operator and is not shown. Regenerate it: kubectl dmkeys regenerate {name} {}",
                slot.name(),
                recorded.fingerprint,
                slot.name()
            ),
        ));
    }
    Ok(value)
}

fn print_structured(value: &impl serde::Serialize, output: Output) -> Result<()> {
    let text = match output {
        Output::Yaml => {
            serde_yaml::to_string(value).map_err(|e| fail(exit::ERROR, e.to_string()))?
        }
        _ => {
            serde_json::to_string_pretty(value).map_err(|e| fail(exit::ERROR, e.to_string()))?
                + "\n"
        }
    };
    print!("{text}");
    Ok(())
}

/// Puts `value` on the clipboard: a platform tool when one is present, else OSC 52 to the
/// terminal. Never writes the value to stdout.
fn to_clipboard(value: &str) -> Result<&'static str> {
    for (tool, args) in [
        ("wl-copy", &[][..]),
        ("xclip", &["-selection", "clipboard"][..]),
        ("pbcopy", &[][..]),
    ] {
        let spawned = std::process::Command::new(tool)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Ok(mut child) = spawned {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(value.as_bytes());
            }
            if child.wait().is_ok_and(|s| s.success()) {
                return Ok(tool);
            }
        }
    }
    // OSC 52 goes to the terminal itself, so it also works over SSH.
    let mut tty = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/tty")
        .map_err(|_| {
            fail(
                exit::ERROR,
                "no terminal and no clipboard tool (wl-copy, xclip, pbcopy): use `show` instead",
            )
        })?;
    tty.write_all(render::osc52(value).as_bytes())
        .and_then(|_| tty.flush())
        .map_err(|e| fail(exit::ERROR, e.to_string()))?;
    Ok("the terminal (OSC 52)")
}

pub async fn run(cli: Cli) -> Result<()> {
    let ctx = connect(&cli).await?;
    let keysets: Api<DataMinerKeySet> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let pp = PatchParams::apply(FIELD_MANAGER);
    match cli.command {
        Command::List {
            all_namespaces,
            organization,
            system,
            output,
        } => {
            let api = if all_namespaces {
                Api::<DataMinerKeySet>::all(ctx.client.clone())
            } else {
                keysets.clone()
            };
            let mut items = api
                .list(&ListParams::default())
                .await
                .map_err(|e| api_error(&ctx, "listing key sets", None, e))?
                .items;
            items.retain(|ks| {
                let org = ks
                    .spec
                    .scope
                    .organization
                    .as_ref()
                    .map(|o| o.name.as_str())
                    .or(ks
                        .spec
                        .scope
                        .system
                        .as_ref()
                        .and_then(|s| s.organization.as_deref()));
                let sys = ks.spec.scope.system.as_ref().map(|s| s.name.as_str());
                organization.as_deref().is_none_or(|o| org == Some(o))
                    && system.as_deref().is_none_or(|s| sys == Some(s))
            });
            match output {
                Some(o @ (Output::Yaml | Output::Json)) => print_structured(&items, o)?,
                other => {
                    if items.is_empty() {
                        eprintln!(
                            "No key sets found in {}.",
                            if all_namespaces {
                                "any namespace".into()
                            } else {
                                format!("namespace {}", ctx.namespace)
                            }
                        );
                    } else {
                        print!(
                            "{}",
                            render::table(
                                &items,
                                all_namespaces,
                                other == Some(Output::Wide),
                                Timestamp::now()
                            )
                        );
                    }
                }
            }
        }
        Command::Describe { name } => {
            let ks = get(&ctx, &name).await?;
            let mut events: Vec<Event> =
                Api::<Event>::namespaced(ctx.client.clone(), &ctx.namespace)
                    .list(&ListParams::default())
                    .await
                    .map(|l| l.items)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|e| {
                        e.regarding.as_ref().and_then(|r| r.uid.as_deref()) == ks.uid().as_deref()
                    })
                    .collect();
            events.sort_by_key(|e| {
                e.event_time.as_ref().map(|t| t.0).or(e
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0))
            });
            print!("{}", render::describe(&ks, &events, Timestamp::now()));
        }
        Command::Show { name, slot } => {
            println!("{}", read_key(&ctx, &name, slot).await?);
        }
        Command::Copy { name, slot } => {
            let value = read_key(&ctx, &name, slot).await?;
            let fingerprint = crate::keys::fingerprint(value.as_bytes());
            let via = to_clipboard(&value)?;
            println!(
                "Copied the {} key of {name} ({fingerprint}) to the clipboard via {via}.",
                slot.name()
            );
        }
        Command::Create {
            name,
            label,
            organization,
            system,
            permissions,
            key_format,
            dry_run,
            output,
            wait,
        } => {
            let scope = match (organization, system) {
                (organization, Some(name)) => Scope {
                    organization: None,
                    system: Some(SystemScope { name, organization }),
                },
                (Some(name), None) => Scope {
                    organization: Some(OrganizationScope { name }),
                    system: None,
                },
                (None, None) => {
                    return Err(fail(
                        exit::USAGE,
                        "give --organization NAME or --system NAME",
                    ));
                }
            };
            let mut ks = DataMinerKeySet::new(
                &name,
                DataMinerKeySetSpec {
                    label,
                    scope,
                    permissions,
                    key_format,
                    secret: None,
                    regenerate: None,
                    revoke: None,
                },
            );
            ks.metadata.namespace = Some(ctx.namespace.clone());
            if dry_run {
                return print_structured(&ks, output.unwrap_or(Output::Yaml));
            }
            keysets
                .create(
                    &PostParams {
                        field_manager: Some(FIELD_MANAGER.into()),
                        ..Default::default()
                    },
                    &ks,
                )
                .await
                .map_err(|e| match e {
                    kube::Error::Api(s) if s.code == 422 || s.code == 409 => {
                        fail(exit::USAGE, s.message)
                    }
                    e => api_error(&ctx, "creating the key set", Some(&name), e),
                })?;
            if !wait.wait {
                println!("dataminerkeyset/{name} created");
                return Ok(());
            }
            let ks = wait_for(&ctx, &name, wait.timeout, |k| {
                slot_status(k, SlotArg::Primary).is_some()
                    && slot_status(k, SlotArg::Secondary).is_some()
            })
            .await?;
            let (p, s) = (
                slot_status(&ks, SlotArg::Primary).unwrap(),
                slot_status(&ks, SlotArg::Secondary).unwrap(),
            );
            println!(
                "Created key set {name}: primary {} (revision {}), secondary {} (revision {}).",
                p.fingerprint, p.revision, s.fingerprint, s.revision
            );
        }
        Command::Regenerate {
            name,
            slot,
            confirm_label,
            wait,
        } => {
            let ks = get(&ctx, &name).await?;
            let current = slot_status(&ks, slot)
                .ok_or_else(|| fail(exit::ERROR, format!("key set {name} has no keys yet")))?;
            let target = current.revision + 1;
            let action = format!(
                "This replaces the {} key of {name} (now revision {}, {}). Anything still using it stops working.",
                slot.name(),
                current.revision,
                current.fingerprint
            );
            let label = confirm(&ks, confirm_label, &action)?;
            let patch = json!({
                "apiVersion": "keys.dataminer.services/v1alpha1", "kind": "DataMinerKeySet",
                "metadata": { "name": name },
                "spec": { "regenerate": { slot.name(): { "revision": target, "confirmLabel": label } } }
            });
            keysets
                .patch(&name, &pp, &Patch::Apply(&patch))
                .await
                .map_err(|e| match e {
                    kube::Error::Api(s) if s.code == 409 => fail(exit::ERROR, format!("{}\nAnother manager (for example Argo CD) owns spec.regenerate.{}: change the revision in Git instead.", s.message, slot.name())),
                    e => api_error(&ctx, "requesting the regeneration", Some(&name), e),
                })?;
            if !wait.wait {
                println!("Requested {} revision {target} for {name}.", slot.name());
                return Ok(());
            }
            let ks = wait_for(&ctx, &name, wait.timeout, |k| {
                slot_status(k, slot).is_some_and(|s| s.revision >= target)
            })
            .await?;
            let now = slot_status(&ks, slot).unwrap();
            println!(
                "Regenerated the {} key of {name}: revision {}, {}.",
                slot.name(),
                now.revision,
                now.fingerprint
            );
        }
        Command::Revoke {
            name,
            confirm_label,
            wait,
        } => {
            let ks = get(&ctx, &name).await?;
            let action = format!(
                "This destroys both keys of {name} for good; the key set will never hold keys again."
            );
            let label = confirm(&ks, confirm_label, &action)?;
            let patch = json!({
                "apiVersion": "keys.dataminer.services/v1alpha1", "kind": "DataMinerKeySet",
                "metadata": { "name": name },
                "spec": { "revoke": { "confirmLabel": label } }
            });
            keysets
                .patch(&name, &pp, &Patch::Apply(&patch))
                .await
                .map_err(|e| api_error(&ctx, "requesting the revocation", Some(&name), e))?;
            if !wait.wait {
                println!("Requested revocation of {name}.");
                return Ok(());
            }
            wait_for(&ctx, &name, wait.timeout, |k| {
                k.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == REVOKED && c.status == "True")
                })
            })
            .await?;
            println!("Revoked {name}: both keys are destroyed.");
        }
    }
    Ok(())
}
