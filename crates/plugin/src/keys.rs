//! `show` and `copy`: a key value, only when it is the one the operator recorded.

use std::io::Write;

use super::{
    cli::KeyArgs,
    failure::{Result, exit, fail},
    render,
    session::Session,
};
use kube::ResourceExt;

use crate::api::{DataMinerKeySet, READY, Slot};

pub(super) async fn show(session: &Session, args: KeyArgs) -> Result<()> {
    println!("{}", read_key(session, &args.name, args.slot.into()).await?);
    Ok(())
}

pub(super) async fn copy(session: &Session, args: KeyArgs) -> Result<()> {
    let slot = Slot::from(args.slot);
    let value = read_key(session, &args.name, slot).await?;
    let fingerprint = dataminer_keys_api::keys::fingerprint(value.as_bytes());
    match to_clipboard(&value)? {
        Clipboard::Tool(tool) => println!(
            "Copied the {} key of {} ({fingerprint}) to the clipboard with {tool}.",
            slot.name(),
            args.name
        ),
        // Nothing tells whether the terminal took it: say what was done, not what happened.
        Clipboard::Terminal => println!(
            "Sent the {} key of {} ({fingerprint}) to the terminal as an OSC 52 clipboard request. Many terminals ignore it: check your clipboard, or use `show`. The key passed through the terminal's output (and anything recording it).",
            slot.name(),
            args.name
        ),
    }
    Ok(())
}

/// Refuses a key set that is revoked or being revoked ([`exit::UNTRUSTED`]): its keys are gone
/// or about to be, so they are neither shown nor replaced. `refused` ends the second message.
pub(super) fn refuse_revoked(ks: &DataMinerKeySet, refused: &str) -> Result<()> {
    let name = ks.name_any();
    if ks.status.as_ref().is_some_and(|s| s.revoked_at.is_some()) {
        return Err(fail(
            exit::UNTRUSTED,
            format!("key set {name} is revoked: its keys were destroyed; create a new key set"),
        ));
    }
    if ks.spec.revoke.is_some() {
        return Err(fail(
            exit::UNTRUSTED,
            format!(
                "key set {name} is being revoked (spec.revoke is set): its keys are about to be destroyed and {refused}"
            ),
        ));
    }
    Ok(())
}

/// The key in `slot`, only if it is the one the operator recorded: the key set is not revoked,
/// the Secret is the one the operator created (uid in status), and the value's fingerprint is
/// the one in status. Anything else is refused with [`exit::UNTRUSTED`], never printed.
async fn read_key(session: &Session, name: &str, slot: Slot) -> Result<String> {
    let ks = session.get(name).await?;
    let status = ks.status.clone().unwrap_or_default();
    refuse_revoked(&ks, "are not shown")?;
    // The operator's word on drift wins over the fingerprint check below: it also checks the
    // proof, which the plugin cannot.
    let ready = status.conditions.iter().find(|c| c.type_ == READY);
    if ready.is_some_and(|c| crate::api::drifted_slots(&c.message).contains(&slot)) {
        return Err(fail(
            exit::UNTRUSTED,
            format!(
                "the operator reports the {} key of {name} as drifted (SecretDrift): it is not the key it recorded and is not shown. Regenerate it: kubectl dmkeys regenerate {name} {}",
                slot.name(),
                slot.name()
            ),
        ));
    }
    let no_keys = || fail(exit::ERROR, format!("key set {name} has no keys yet"));
    let secret_name = status.secret_name.clone().ok_or_else(no_keys)?;
    let recorded = status.slot(slot).ok_or_else(no_keys)?;
    let secret = match session.secret(&secret_name).await {
        Ok(s) => s,
        Err(kube::Error::Api(s)) if s.code == 403 => {
            let me = session.whoami().await;
            return Err(fail(
                exit::FORBIDDEN,
                format!(
                    "you ({me}) may not read Secret {secret_name} in namespace {}: viewing keys needs get on secrets there (for example the admin role, or the chart's <release>-dataminer-keys-operator-admin)",
                    session.namespace
                ),
            ));
        }
        Err(e) => return Err(session.api_error("reading the Secret", None, e)),
    };
    if secret.metadata.uid.is_none() || secret.metadata.uid != status.secret_uid {
        return Err(fail(
            exit::UNTRUSTED,
            format!(
                "Secret {secret_name} is not the Secret the operator created for key set {name} (another uid); its contents are not shown. See `kubectl dmkeys describe {name}`"
            ),
        ));
    }
    let key = &ks.spec.data_key_names()[slot.index()];
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
    if dataminer_keys_api::keys::fingerprint(value.as_bytes()) != recorded.fingerprint {
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

/// Where `copy` put the key.
enum Clipboard {
    Tool(&'static str),
    /// An OSC 52 request to the terminal, which may or may not honour it.
    Terminal,
}

/// Puts `value` on the clipboard: a platform tool when one is present, else OSC 52 to the
/// terminal. Never writes the value to stdout.
fn to_clipboard(value: &str) -> Result<Clipboard> {
    for (tool, args) in [
        ("wl-copy", &[][..]),
        ("xclip", &["-selection", "clipboard"][..]),
        ("xsel", &["--clipboard", "--input"][..]),
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
                return Ok(Clipboard::Tool(tool));
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
                "no terminal and no clipboard tool (wl-copy, xclip, xsel, pbcopy): use `show` instead",
            )
        })?;
    tty.write_all(render::osc52(value).as_bytes())
        .and_then(|_| tty.flush())
        .map_err(|e| fail(exit::ERROR, e.to_string()))?;
    Ok(Clipboard::Terminal)
}
