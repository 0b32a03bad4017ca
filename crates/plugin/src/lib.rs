//! `kubectl dmkeys`: the admin workflows of dataminer.services, from the terminal.
//!
//! Regenerate and revoke are patches to `spec.regenerate` / `spec.revoke` under the plugin's own
//! field manager, confirmed by typing the key set's label, exactly as the product asks. One file
//! per group of subcommands; every API call goes through [`session`].

// The API crate under the name the modules use.
use dataminer_keys_api as api;

mod change;
mod cli;
pub mod complete;
mod confirm;
mod create;
mod failure;
mod keys;
pub mod render;
mod session;
mod views;

pub use cli::{Cli, Output, SlotArg};
pub use failure::{Failure, exit};

use cli::Command;
use failure::{Result, fail};
use session::Session;

/// Field manager of the plugin's patches: separate from the operator's and from the one that
/// applies the manifest (kubectl, Argo CD), so each owns only its own fields.
pub const FIELD_MANAGER: &str = "kubectl-dmkeys";

/// Runs one subcommand.
pub async fn run(cli: Cli) -> Result<()> {
    let session = Session::connect(&cli).await?;
    match cli.command {
        Command::List(args) => views::list(&session, args).await,
        Command::Describe(args) => views::describe(&session, args).await,
        Command::Show(args) => keys::show(&session, args).await,
        Command::Copy(args) => keys::copy(&session, args).await,
        Command::Create(args) => create::create(&session, args).await,
        Command::Regenerate(args) => change::regenerate(&session, args).await,
        Command::Revoke(args) => change::revoke(&session, args).await,
        Command::Adopt(args) => change::adopt(&session, args).await,
    }
}

/// Key sets as `kubectl get -o json|yaml|name` prints them: one object as it is, several as a
/// `kind: List`, each with its apiVersion and kind.
fn print_objects(items: &[api::DataMinerKeySet], single: bool, output: Output) -> Result<()> {
    use kube::Resource;
    let typed = |ks: &api::DataMinerKeySet| {
        let mut value = serde_json::to_value(ks).unwrap_or_default();
        value["apiVersion"] = api::DataMinerKeySet::api_version(&()).into();
        value["kind"] = api::DataMinerKeySet::kind(&()).into();
        value
    };
    if output == Output::Name {
        for ks in items {
            println!(
                "dataminerkeyset.keys.dataminer.services/{}",
                kube::ResourceExt::name_any(ks)
            );
        }
        return Ok(());
    }
    let value = match (single, items) {
        (true, [ks]) => typed(ks),
        _ => serde_json::json!({
            "apiVersion": "v1",
            "kind": "List",
            "metadata": { "resourceVersion": "" },
            "items": items.iter().map(typed).collect::<Vec<_>>(),
        }),
    };
    print_structured(&value, output)
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
