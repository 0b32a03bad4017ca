//! Typing the key set's label to confirm a regeneration or revocation, as the product asks.

use std::io::{BufRead, IsTerminal, Write};

use kube::ResourceExt;

use super::failure::{Result, exit, fail};
use crate::api::{DataMinerKeySet, printable};

/// Asks the user to type the label; `None` when not interactive.
fn prompt_label(ks: &DataMinerKeySet, action: &str) -> Option<String> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    let mut err = std::io::stderr();
    let _ = writeln!(err, "{}", printable(action));
    // The label is a user's text: shown escaped (admission refuses control characters, but a
    // cluster without the CRD's rules may hold one, and then it cannot be typed anyway).
    let _ = write!(
        err,
        "Type the key set's label ({}) to confirm: ",
        printable(&ks.spec.label)
    );
    let _ = err.flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    Some(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The typed or passed label, checked against the key set before anything is written.
pub(super) fn confirm(ks: &DataMinerKeySet, given: Option<String>, action: &str) -> Result<String> {
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
