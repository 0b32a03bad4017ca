//! The one-way structure of `src/`: reads every module's non-test code, collects the top-level
//! modules it names through `crate::`, and fails on an import cycle between top-level modules or
//! on an edge the layering forbids (api <- plan <- secret/status <- controller; the plugin needs
//! only the API and key fingerprints).

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
fn top_level_modules_depend_one_way() {
    let graph = graph();
    assert!(
        graph.contains_key("plan") && graph.contains_key("api"),
        "{graph:?}"
    );
    if let Some(c) = cycle(&graph) {
        panic!("import cycle between modules: {}", c.join(" -> "));
    }
    let allowed: &[(&str, &[&str])] = &[
        ("api", &[]),
        ("plan", &["api"]),
        ("plugin", &["api", "keys"]),
    ];
    for (module, may) in allowed {
        let deps = &graph[*module];
        let extra: Vec<&String> = deps.iter().filter(|d| !may.contains(&d.as_str())).collect();
        assert!(
            extra.is_empty(),
            "{module} may import only {may:?}, imports {extra:?}"
        );
    }
}
