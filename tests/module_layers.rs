//! The one-way structure: Cargo's graph of the workspace crates (api <- core <- operator; the
//! plugin needs only the API crate; the core has no API client and no async runtime), and, what
//! the compiler cannot see, no import cycle between the operator's own top-level modules (it
//! reads every module's non-test code and collects what it names through `crate::`).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// Top-level module -> the top-level modules its non-test code names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if ["lib", "main", "bin"].contains(&name.as_str()) {
            continue;
        }
        let mut deps = BTreeSet::new();
        for file in rust_files(&path) {
            if file.file_name().is_some_and(|f| f == "tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            // Unit tests sit at the end of a file, behind #[cfg(test)].
            let code = text.split("#[cfg(test)]").next().unwrap();
            deps.extend(crate_paths(code));
        }
        deps.remove(&name);
        graph.insert(name, deps);
    }
    graph
}

fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_dir() {
        std::fs::read_dir(path)
            .unwrap()
            .flat_map(|e| rust_files(&e.unwrap().path()))
            .collect()
    } else if path.extension().is_some_and(|e| e == "rs") {
        vec![path.to_path_buf()]
    } else {
        vec![]
    }
}

/// The first segment of every `crate::a::...` and of each item of `crate::{a, b::c}`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => start = true,
                    c if c.is_whitespace() => {}
                    _ if start && depth == 1 => {
                        out.insert(ident(&group[j..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            // `crate::some_macro!()` names a macro, not a module.
            if !rest[name.len()..].starts_with('!') {
                out.insert(name);
            }
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for dep in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(dep, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_parser_sees_grouped_and_plain_imports() {
    let code = "use crate::{api::{A, B}, keys::K};\nfn f() { crate::plan::x(); crate::m!(); }";
    let found: Vec<String> = crate_paths(code).into_iter().collect();
    assert_eq!(found, ["api", "keys", "plan"]);
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(cycle(&g), Some(vec!["a".into(), "b".into(), "a".into()]));
}

#[test]
fn the_operators_modules_have_no_import_cycle() {
    let graph = graph();
    assert!(graph.contains_key("controller"), "{graph:?}");
    if let Some(c) = cycle(&graph) {
        panic!("import cycle between modules: {}", c.join(" -> "));
    }
}

/// The packages `package` builds with (normal dependencies, resolved for it alone).
fn dependencies(package: &str) -> BTreeSet<String> {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != package)
        .map(str::to_string)
        .collect()
}

// What Cargo's graph must keep true: the core decides without an API client or an async
// runtime, and the plugin and the API crate stand apart from the operator.
#[test]
fn crates_depend_one_way() {
    let ours = |deps: &BTreeSet<String>| -> Vec<String> {
        deps.iter()
            .filter(|d| d.starts_with("dataminer-keys"))
            .cloned()
            .collect()
    };
    let api = dependencies("dataminer-keys-api");
    assert_eq!(ours(&api), Vec::<String>::new());
    let core = dependencies("dataminer-keys-core");
    assert_eq!(ours(&core), ["dataminer-keys-api"]);
    for runtime in ["tokio", "kube-runtime", "kube-client", "hyper"] {
        assert!(!core.contains(runtime), "the core builds with {runtime}");
    }
    let plugin = dependencies("dataminer-keys-plugin");
    assert_eq!(ours(&plugin), ["dataminer-keys-api"]);
}
