//! `list` and `describe`: what an admin sees of key sets, never a key value.

use k8s_openapi::jiff::Timestamp;

use super::{
    cli::{DescribeArgs, ListArgs, Output},
    failure::Result,
    print_objects, render,
    session::Session,
};
use crate::api::DataMinerKeySet;

pub(super) async fn list(session: &Session, args: ListArgs) -> Result<()> {
    let mut items = session.list(args.all_namespaces).await?;
    items.retain(|ks| in_scope(ks, args.organization.as_deref(), args.system.as_deref()));
    match args.output {
        Some(o @ (Output::Yaml | Output::Json | Output::Name)) => print_objects(&items, false, o)?,
        _ if items.is_empty() => eprintln!(
            "No key sets found in {}.",
            if args.all_namespaces {
                "any namespace".into()
            } else {
                format!("namespace {}", session.namespace)
            }
        ),
        other => print!(
            "{}",
            render::table(
                &items,
                args.all_namespaces,
                other == Some(Output::Wide),
                Timestamp::now()
            )
        ),
    }
    Ok(())
}

/// Whether `ks` belongs to the organization and system asked for (each optional). A system's
/// key set belongs to its organization too.
fn in_scope(ks: &DataMinerKeySet, organization: Option<&str>, system: Option<&str>) -> bool {
    let scope = &ks.spec.scope;
    let org = scope
        .organization
        .as_ref()
        .map(|o| o.name.as_str())
        .or(scope
            .system
            .as_ref()
            .and_then(|s| s.organization.as_deref()));
    let sys = scope.system.as_ref().map(|s| s.name.as_str());
    organization.is_none_or(|o| org == Some(o)) && system.is_none_or(|s| sys == Some(s))
}

pub(super) async fn describe(session: &Session, args: DescribeArgs) -> Result<()> {
    let ks = session.get(&args.name).await?;
    if let Some(o @ (Output::Yaml | Output::Json | Output::Name)) = args.output {
        return print_objects(std::slice::from_ref(&ks), true, o);
    }
    let events = session.events_of(&ks).await;
    print!("{}", render::describe(&ks, &events, Timestamp::now()));
    Ok(())
}
