//! The house rules a newcomer relies on, checked on the tree itself: the
//! product's imports run one way (no import circle among its files outside
//! `src/sim/`), no product file grows past 600 lines, the README stays a
//! page a newcomer reads, and every document the code names is in the
//! repository.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The module path of a file under `src/`: `src/session/feed/mod.rs` →
/// `["session", "feed"]`, `src/wire/scan.rs` → `["wire", "scan"]`.
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root().join("src")).expect("under src/");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The product's code of a file: what precedes its `#[cfg(test)]` module,
/// without comment lines (doc links are not imports).
fn product_code(text: &str) -> String {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a file names: `crate::a::b::C`, `super::X`, and `x::…` where
/// `x` is a child module the file declares. Each becomes a module path.
fn named_paths(module: &[String], code: &str) -> Vec<Vec<String>> {
    let children: BTreeSet<String> = code
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l
                .strip_prefix("pub(crate) ")
                .or_else(|| l.strip_prefix("pub "))
                .unwrap_or(l);
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect();
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '{' || c == ','))
        .collect();
    let mut out = Vec::new();
    for w in words {
        // `use crate::a::{b, c}` is split at the brace: the prefix names
        // `a`, which is enough to find the file (or the folder's mod.rs).
        let path: Vec<&str> = w
            .split("::")
            .map(|s| s.split(['{', ',']).next().unwrap_or(""))
            .filter(|s| !s.is_empty())
            .collect();
        if !w.contains("::") {
            continue;
        }
        match path.first() {
            Some(&"crate") => out.push(path[1..].iter().map(|s| s.to_string()).collect()),
            Some(&"super") if !module.is_empty() => {
                let mut m = module[..module.len() - 1].to_vec();
                m.extend(path[1..].iter().map(|s| s.to_string()));
                out.push(m);
            }
            Some(first) if children.contains(*first) => {
                let mut m = module.to_vec();
                m.extend(path.iter().map(|s| s.to_string()));
                out.push(m);
            }
            _ => {}
        }
    }
    out
}

/// The file that holds the longest prefix of `path` among `files`.
fn file_of(path: &[String], files: &BTreeMap<Vec<String>, PathBuf>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| files.contains_key(p))
}

/// A circle of imports, if any, among `graph`'s nodes.
fn find_circle(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        n: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        marks: &mut BTreeMap<Vec<String>, Mark>,
        trail: &mut Vec<Vec<String>>,
    ) -> Option<Vec<String>> {
        marks.insert(n.clone(), Mark::Open);
        trail.push(n.clone());
        for m in graph.get(n).into_iter().flatten() {
            match marks.get(m).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let from = trail.iter().position(|t| t == m).unwrap_or(0);
                    let mut c: Vec<String> = trail[from..].iter().map(|t| t.join("::")).collect();
                    c.push(m.join("::"));
                    return Some(c);
                }
                Mark::New => {
                    if let Some(c) = visit(m, graph, marks, trail) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        trail.pop();
        marks.insert(n.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for n in graph.keys() {
        if marks.get(n).copied().unwrap_or(Mark::New) == Mark::New
            && let Some(c) = visit(n, graph, &mut marks, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

/// The product's files (outside `src/sim/`, without lib.rs and main.rs)
/// and the files each one's code names.
fn import_graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let files: BTreeMap<Vec<String>, PathBuf> = rust_files(&root().join("src"))
        .into_iter()
        .map(|f| (module_of(&f), f))
        .filter(|(m, _)| !m.is_empty() && m[0] != "sim" && m[0] != "main")
        .collect();
    let mut graph = BTreeMap::new();
    for (module, file) in &files {
        let code = product_code(&fs::read_to_string(file).expect("read"));
        let targets: BTreeSet<Vec<String>> = named_paths(module, &code)
            .iter()
            .filter_map(|p| file_of(p, &files))
            .filter(|t| t != module)
            .collect();
        graph.insert(module.clone(), targets);
    }
    graph
}

#[test]
fn imports_among_product_files_run_one_way() {
    let graph = import_graph();
    // The checker itself sees the arrows it must see.
    let writer = graph
        .get(&vec!["writer".to_string()])
        .expect("writer/mod.rs");
    assert!(
        writer.contains(&vec!["queue".to_string()]),
        "writer → queue not seen: {writer:?}"
    );
    let session = graph
        .get(&vec!["session".to_string()])
        .expect("session/mod.rs");
    assert!(
        session.contains(&vec!["session".into(), "connection".into()]),
        "session → session::connection not seen: {session:?}"
    );
    if let Some(circle) = find_circle(&graph) {
        panic!("an import circle: {}", circle.join(" → "));
    }
}

/// The layers lib.rs states, top first: each top-level module's rank.
fn stated_layers() -> BTreeMap<String, usize> {
    let lib = fs::read_to_string(root().join("src/lib.rs")).expect("lib.rs");
    let line = lib
        .lines()
        .find(|l| l.starts_with("//! app | "))
        .expect("lib.rs states its layers in a line starting `//! app | `");
    let mut ranks = BTreeMap::new();
    for (rank, layer) in line.trim_start_matches("//! ").split('|').enumerate() {
        for m in layer.split(',') {
            ranks.insert(m.trim().to_string(), rank);
        }
    }
    ranks
}

#[test]
fn every_import_runs_down_the_layers_lib_rs_states() {
    let ranks = stated_layers();
    let top: BTreeSet<String> = fs::read_dir(root().join("src"))
        .expect("src/")
        .flatten()
        .map(|e| {
            e.file_name()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .filter(|n| n != "lib" && n != "main")
        .collect();
    for m in &top {
        assert!(ranks.contains_key(m), "lib.rs's layers leave out src/{m}");
    }
    let mut seen = 0;
    for (from, targets) in import_graph() {
        for to in targets {
            if from[0] == to[0] {
                continue;
            }
            seen += 1;
            let (a, b) = (ranks[&from[0]], ranks[&to[0]]);
            assert!(
                a < b,
                "{} imports {}: {} is not below {} in lib.rs's layers",
                from.join("::"),
                to.join("::"),
                to[0],
                from[0]
            );
        }
    }
    assert!(seen > 20, "only {seen} arrows between folders seen");
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let m = |s: &str| vec![s.to_string()];
    let mut g = BTreeMap::new();
    g.insert(m("a"), BTreeSet::from([m("b")]));
    g.insert(m("b"), BTreeSet::from([m("c")]));
    g.insert(m("c"), BTreeSet::from([m("a")]));
    assert_eq!(
        find_circle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    g.insert(m("c"), BTreeSet::new());
    assert_eq!(find_circle(&g), None);
}

#[test]
fn no_function_returns_a_bare_string_as_its_error() {
    let mut found = Vec::new();
    for f in rust_files(&root().join("src")) {
        let text = fs::read_to_string(&f).expect("read");
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("Result<") && code.replace(' ', "").contains(",String>") {
                found.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "errors are types that say what to do, not strings:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_product_file_is_over_600_lines() {
    for f in rust_files(&root().join("src")) {
        let n = fs::read_to_string(&f).expect("read").lines().count();
        assert!(n <= 600, "{} has {n} lines", f.display());
    }
}

#[test]
fn the_readme_is_a_page_and_the_rest_is_in_docs() {
    let readme = fs::read_to_string(root().join("README.md")).expect("README.md");
    let n = readme.lines().count();
    assert!(n <= 300, "README.md has {n} lines");
    for link in readme.split("](").skip(1) {
        let target = link.split([')', '#']).next().unwrap_or("");
        if target.starts_with("docs/") {
            assert!(
                root().join(target).exists(),
                "README links to {target}, not there"
            );
        }
    }
}

#[test]
fn every_document_the_code_names_is_in_the_repository() {
    let mut files = rust_files(&root().join("src"));
    files.extend(rust_files(&root().join("tests")));
    files.extend(rust_files(&root().join("scripts")));
    for f in files {
        let text = fs::read_to_string(&f).expect("read");
        for (i, line) in text.lines().enumerate() {
            for word in line.split(|c: char| !(c.is_alphanumeric() || "_./-".contains(c))) {
                let Some(stem) = word.strip_suffix(".md") else {
                    continue;
                };
                if stem.is_empty() || !stem.chars().next().is_some_and(char::is_alphabetic) {
                    continue;
                }
                let named = root().join(word);
                let in_docs = root().join("docs").join(word);
                assert!(
                    named.exists() || in_docs.exists(),
                    "{}:{}: names {word}, which the repository does not contain",
                    f.display(),
                    i + 1
                );
            }
        }
    }
}
