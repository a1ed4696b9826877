//! The root modules import one way: no module reaches, directly or through others, back into a
//! module that imports it. A cycle is reported with its path, so the type that closes it can be
//! moved to the lower module (ARCHITECTURE.md, "Layers").

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each root module of `src/` and the root modules its non-test code names through `crate::`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if name != "lib" && name != "main" && (path.is_dir() || path.extension().is_some_and(|e| e == "rs")) {
            modules.insert(name);
        }
    }
    let named = regex::Regex::new(r"crate::(\w+)").unwrap();
    let grouped = regex::Regex::new(r"crate::\{([^}]*)\}").unwrap();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.unwrap();
        let path = entry.path();
        // Test modules may use anything; they are not part of the layering.
        if path.extension().is_none_or(|e| e != "rs") || path.file_name().is_some_and(|f| f == "tests.rs") {
            continue;
        }
        let relative = path.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str().to_string_lossy();
        let top = top.trim_end_matches(".rs").to_string();
        if !modules.contains(&top) {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        let before_tests = text.split("#[cfg(test)]").next().unwrap_or_default();
        // Comments may name any module; only code makes a dependency.
        let code: String =
            before_tests.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        let code = code.as_str();
        let mut found: Vec<String> = named.captures_iter(code).map(|c| c[1].to_string()).collect();
        for group in grouped.captures_iter(code) {
            found.extend(group[1].split(',').filter_map(|p| p.split("::").next()).map(|p| p.trim().to_string()));
        }
        for module in found {
            if module != top && modules.contains(&module) {
                graph.get_mut(&top).unwrap().insert(module);
            }
        }
    }
    graph
}

/// A path that leads from `from` back to itself, if there is one.
fn cycle_through(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap();
        for next in &graph[last] {
            if next == from {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn root_modules_import_one_way() {
    let graph = imports();
    // The scan sees the imports it must: the engine reads the configuration and the knowledge base.
    assert!(graph["engine"].contains("config") && graph["engine"].contains("knowledge"), "{graph:?}");
    let cycles: Vec<String> =
        graph.keys().filter_map(|m| cycle_through(&graph, m)).map(|cycle| cycle.join(" → ")).collect();
    assert!(cycles.is_empty(), "root modules import each other in a cycle:\n{}", cycles.join("\n"));
}

#[test]
fn the_engine_and_its_configuration_never_name_a_channel_crate() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for dir in ["engine", "config", "inbox", "retrieval", "knowledge", "llm"] {
        for entry in walkdir::WalkDir::new(src.join(dir)) {
            let entry = entry.unwrap();
            if entry.path().extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap();
            for platform in ["frontdesk_slack", "frontdesk_discord", "frontdesk_email"] {
                assert!(!text.contains(platform), "{} names {platform}", entry.path().display());
            }
        }
    }
}
