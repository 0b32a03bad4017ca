//! `create`: a new key set, then its keys' fingerprints once the operator made them.

use super::{
    cli::{CreateArgs, Output},
    failure::{Result, exit, fail},
    print_objects,
    session::Session,
};
use crate::api::{
    DataMinerKeySet, DataMinerKeySetSpec, OrganizationScope, Scope, Slot, SystemScope,
};

pub(super) async fn create(session: &Session, args: CreateArgs) -> Result<()> {
    let name = args.name;
    let scope = match (args.organization, args.system) {
        (organization, Some(name)) => Scope {
            organization: None,
            system: Some(SystemScope { name, organization }.into()),
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
            label: args.label,
            scope,
            permissions: args.permissions,
            key_format: args.key_format,
            secret: None,
            regenerate: None,
            revoke: None,
            adopt: None,
        },
    );
    ks.metadata.namespace = Some(session.namespace.clone());
    let output = args.output.map(Output::from);
    if args.dry_run {
        return print_objects(
            std::slice::from_ref(&ks),
            true,
            output.unwrap_or(Output::Yaml),
        );
    }
    session.create(&ks).await.map_err(|e| match e {
        // What was typed cannot be admitted: the API server's message says what to change.
        kube::Error::Api(s) if s.code == 422 => fail(exit::USAGE, s.message),
        kube::Error::Api(s) if s.code == 409 => fail(
            exit::ERROR,
            format!(
                "key set {name} already exists in namespace {}: choose another name, or see it with kubectl dmkeys describe {name}",
                session.namespace
            ),
        ),
        e => session.api_error("creating the key set", Some(&name), e),
    })?;
    if !args.wait.wait {
        match output {
            Some(o) => print_objects(&[session.get(&name).await?], true, o)?,
            None => println!("dataminerkeyset/{name} created"),
        }
        return Ok(());
    }
    let (p, s) = session
        .wait_for(&name, args.wait.timeout, |k| {
            Some((
                k.recorded(Slot::Primary)?.clone(),
                k.recorded(Slot::Secondary)?.clone(),
            ))
        })
        .await?;
    if let Some(o) = output {
        return print_objects(&[session.get(&name).await?], true, o);
    }
    println!(
        "Created key set {name}: primary {} (revision {}), secondary {} (revision {}).",
        p.fingerprint, p.revision, s.fingerprint, s.revision
    );
    Ok(())
}
