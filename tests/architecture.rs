//! The layout is the architecture: dependencies run one way, and the compiler alone cannot
//! tell. Reads `use crate::…` and `crate::…` paths from every source file (unit tests
//! excluded) and checks the rules the README's code map states.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::repo_root;

/// Folders whose files are modules of their own for these rules.
const SPLIT: [&str; 2] = ["stages", "inputs"];

/// The pipeline's stages in the order the data flows: a stage may import only stages of a
/// lower rank (helpers shared by several stages rank lowest).
const STAGE_RANKS: [(&str, u8); 10] = [
    ("intervals", 0),
    ("service_months", 1),
    ("exemptions", 1),
    ("calls", 2),
    ("availability", 3),
    ("billing", 3),
    ("compensation", 3),
    ("claims", 3),
    ("pricing", 4),
    ("error_budget", 5),
];

/// What a stage never imports: the command line, the config layer and the commands.
const ABOVE_THE_STAGES: [&str; 12] = [
    "cli",
    "job",
    "run",
    "explain",
    "validate",
    "report",
    "output",
    "manifest",
    "journal",
    "adjustments",
    "generate",
    "main",
];

fn source_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// `src/stages/calls/read.rs` → `stages::calls`; `src/run.rs` → `run`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !matches!(p.as_str(), "mod" | "lib"))
        .collect();
    node(&parts)
}

fn node(parts: &[String]) -> String {
    match parts {
        [top, sub, ..] if SPLIT.contains(&top.as_str()) => format!("{top}::{sub}"),
        [top, ..] => top.clone(),
        [] => "lib".into(),
    }
}

/// The code of a file without its unit tests.
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |i| &text[..i])
}

/// The modules each module imports, by path.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = repo_root().join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let from = module_of(&src, &file);
        let text = std::fs::read_to_string(&file).unwrap();
        let code = without_tests(&text);
        let edges = graph.entry(from.clone()).or_default();
        for (at, _) in code.match_indices("crate::") {
            let path: String = code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let parts: Vec<String> = path
                .split("::")
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
            let to = node(&parts);
            if to != from && !to.is_empty() {
                edges.insert(to);
            }
        }
    }
    graph
}

/// A cycle through `start`, if there is one.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in graph.get(&at).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_string());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn no_module_depends_on_itself_through_others() {
    let graph = dependencies();
    assert!(graph.contains_key("stages::calls"), "{:?}", graph.keys());
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_from(&graph, m))
        .map(|c| c.join(" → "))
        .collect();
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}

#[test]
fn a_stage_imports_neither_the_config_layer_nor_a_later_stage() {
    let graph = dependencies();
    let rank = |stage: &str| {
        STAGE_RANKS
            .iter()
            .find(|(name, _)| *name == stage)
            .map(|(_, rank)| *rank)
            .unwrap_or_else(|| panic!("stage `{stage}` has no rank in this test"))
    };
    let mut wrong = Vec::new();
    for (from, imports) in &graph {
        let Some(stage) = from.strip_prefix("stages::") else {
            continue;
        };
        for to in imports {
            let top = to.split("::").next().unwrap();
            if ABOVE_THE_STAGES.contains(&top) {
                wrong.push(format!("{from} imports {to}"));
            }
            if let Some(other) = to.strip_prefix("stages::") {
                if rank(other) >= rank(stage) {
                    wrong.push(format!("{from} imports the later or parallel stage {to}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn inputs_know_nothing_of_the_stages_or_commands() {
    let graph = dependencies();
    let mut wrong = Vec::new();
    for (from, imports) in &graph {
        if !from.starts_with("inputs") {
            continue;
        }
        for to in imports {
            let top = to.split("::").next().unwrap();
            if top == "stages" || ABOVE_THE_STAGES.contains(&top) {
                wrong.push(format!("{from} imports {to}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The default build reads object stores, but the Ballista engine and DataFusion come only
/// with the `distributed` feature (issue: object storage in the default build).
#[test]
fn the_default_build_compiles_no_ballista_or_datafusion_crate() {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["tree", "--locked", "--offline", "-e", "normal,build"])
        .args(["--prefix", "none", "--format", "{p}"])
        .current_dir(repo_root())
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(
        tree.lines().any(|l| l.starts_with("object_store ")),
        "{tree}"
    );
    let engines: BTreeSet<&str> = tree
        .lines()
        .filter(|l| l.starts_with("datafusion") || l.starts_with("ballista"))
        .collect();
    assert!(engines.is_empty(), "the default build compiles {engines:?}");
}
