//! Shell completion through kubectl (1.26+): kubectl runs `kubectl_complete-dmkeys` with the
//! words typed after `kubectl dmkeys`, the last one being the word to complete, and expects one
//! candidate per line then `:<directive>` (cobra's protocol). That executable is a two-line
//! script calling `kubectl dmkeys __complete` (docs: README, "kubectl dmkeys").
//!
//! Subcommands and flags come from the command line's own definition, key set names from the
//! cluster (the namespace and kubeconfig flags already typed are honoured), slots and `-o` from
//! their fixed values.

use clap::{CommandFactory, Parser};

use super::{Cli, session::Session};

/// Cobra's ShellCompDirectiveNoFileComp: never fall back to file names.
const NO_FILES: &str = ":4";

/// Flags that take a value (the word after them is that value, not a positional argument).
fn takes_value(cmd: &clap::Command, flag: &str) -> bool {
    cmd.get_arguments().any(|a| {
        a.get_action().takes_values()
            && (a.get_long().is_some_and(|l| flag == format!("--{l}"))
                || a.get_short().is_some_and(|s| flag == format!("-{s}")))
    })
}

fn flags(cmd: &clap::Command) -> Vec<String> {
    cmd.get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_positional())
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect()
}

/// The candidates for the last of `words`.
pub async fn candidates(words: &[String]) -> Vec<String> {
    let root = Cli::command();
    let (partial, typed) = match words.split_last() {
        Some((last, rest)) => (last.as_str(), rest),
        None => ("", &[][..]),
    };
    // The subcommand, and the positional words typed after it.
    let mut sub: Option<clap::Command> = None;
    let mut positionals = 0;
    let mut skip_value = false;
    for word in typed {
        if skip_value {
            skip_value = false;
            continue;
        }
        let cmd = sub.as_ref().unwrap_or(&root);
        if word.starts_with('-') {
            skip_value =
                !word.contains('=') && (takes_value(cmd, word) || takes_value(&root, word));
            continue;
        }
        match &sub {
            None => sub = root.find_subcommand(word).cloned(),
            Some(_) => positionals += 1,
        }
    }
    let matching = |all: Vec<String>| -> Vec<String> {
        all.into_iter().filter(|c| c.starts_with(partial)).collect()
    };
    let previous = typed.last().map(String::as_str).unwrap_or("");
    if skip_value {
        return matching(match previous {
            "-o" | "--output" => ["wide", "yaml", "json", "name"].map(String::from).to_vec(),
            _ => Vec::new(),
        });
    }
    if partial.starts_with('-') {
        let mut all = flags(&root);
        if let Some(cmd) = &sub {
            all.extend(flags(cmd));
        }
        return matching(all);
    }
    let Some(cmd) = sub else {
        return matching(
            root.get_subcommands()
                .filter(|c| !c.is_hide_set())
                .map(|c| c.get_name().to_string())
                .collect(),
        );
    };
    match (cmd.get_name(), positionals) {
        ("describe" | "show" | "copy" | "regenerate" | "revoke" | "adopt", 0) => {
            matching(keyset_names(typed).await)
        }
        ("show" | "copy" | "regenerate", 1) => {
            matching(["primary", "secondary"].map(String::from).to_vec())
        }
        _ => Vec::new(),
    }
}

/// The key sets of the namespace the typed flags select; none when the cluster cannot say.
async fn keyset_names(typed: &[String]) -> Vec<String> {
    // The global flags typed so far, parsed as the command would (with a stand-in subcommand).
    let mut args = vec!["kubectl-dmkeys".to_string()];
    let mut iter = typed.iter().peekable();
    while let Some(word) = iter.next() {
        const GLOBAL: [&str; 7] = [
            "--kubeconfig",
            "--context",
            "-n",
            "--namespace",
            "--cluster",
            "--user",
            "--as",
        ];
        if GLOBAL
            .iter()
            .any(|f| word == f || word.starts_with(&format!("{f}=")))
        {
            args.push(word.clone());
            if !word.contains('=')
                && let Some(value) = iter.next()
            {
                args.push(value.clone());
            }
        }
    }
    args.push("list".to_string());
    let Ok(cli) = Cli::try_parse_from(&args) else {
        return Vec::new();
    };
    let Ok(session) = Session::connect(&cli).await else {
        return Vec::new();
    };
    match session.list(false).await {
        Ok(items) => items.iter().map(kube::ResourceExt::name_any).collect(),
        Err(_) => Vec::new(),
    }
}

/// Prints the candidates and the directive, as kubectl expects them.
pub async fn print(words: &[String]) {
    for candidate in candidates(words).await {
        println!("{candidate}");
    }
    println!("{NO_FILES}");
}
