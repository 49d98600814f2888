//! The house rules that are plain facts about the source, checked as ordinary tests: every Rust
//! file opens with a `//!` line saying what it is for, and no test is switched off by an ignore attribute.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let skipped = ["target", "node_modules", "artifacts", "corpus"].iter().any(|skip| name == *skip);
        if path.is_dir() && !skipped && !name.to_string_lossy().starts_with('.') {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

fn workspace_sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["crates", "tests", "fuzz"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 100, "found only {} Rust files under {}", files.len(), root.display());
    files
}

#[test]
fn every_rust_file_opens_with_a_line_saying_what_it_is_for() {
    let missing: Vec<String> = workspace_sources()
        .into_iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            !text.lines().next().is_some_and(|first| first.starts_with("//! ") && first.len() > 8)
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a `//!` first line: {missing:#?}");
}

#[test]
fn no_test_is_switched_off() {
    let attribute = ["#[", "ignore"].concat();
    let ignored: Vec<String> = workspace_sources()
        .into_iter()
        .filter(|path| std::fs::read_to_string(path).unwrap_or_default().contains(&attribute))
        .map(|path| path.display().to_string())
        .collect();
    assert!(ignored.is_empty(), "tests switched off: {ignored:#?}");
}

#[test]
fn only_the_database_crate_speaks_sql() {
    // `database` hands the services a `Conn` they can only pass to its repositories; a crate that
    // took `rusqlite` itself could write SQL around them. (This crate's tests read the file from
    // outside, as a user's tool would.)
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
    let mut speakers: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|crate_dir| {
            let manifest = std::fs::read_to_string(crate_dir.path().join("Cargo.toml")).unwrap_or_default();
            manifest.lines().any(|line| line.trim_start().starts_with("rusqlite"))
        })
        .map(|crate_dir| crate_dir.file_name().to_string_lossy().into_owned())
        .collect();
    speakers.sort();
    assert_eq!(speakers, ["database"], "crates that depend on rusqlite");
}

/// The module a file defines, as a path from its crate's root: `src/console/mod.rs` is `console`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative.iter().map(|part| part.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The files a file's code (its tests left out) reaches by `crate::` and `super::` paths.
fn module_edges(src: &Path, files: &[PathBuf]) -> Vec<(usize, usize)> {
    let modules: Vec<Vec<String>> = files.iter().map(|file| module_path(src, file)).collect();
    let mut edges = Vec::new();
    for (from, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let words: Vec<&str> = code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).collect();
        for word in words {
            let mut segments = word.split("::").filter(|s| !s.is_empty());
            let target: Vec<String> = match segments.next() {
                Some("crate") => segments.map(str::to_string).collect(),
                Some("super") => {
                    let mut base = modules[from].clone();
                    base.pop();
                    let mut rest: Vec<&str> = segments.collect();
                    while rest.first() == Some(&"super") {
                        rest.remove(0);
                        base.pop();
                    }
                    base.extend(rest.into_iter().map(str::to_string));
                    base
                }
                _ => continue,
            };
            // The longest module that the path names is the file it reaches.
            let reached = (0..=target.len())
                .rev()
                .find_map(|length| modules.iter().position(|module| module[..] == target[..length]));
            if let Some(to) = reached.filter(|&to| to != from) {
                edges.push((from, to));
            }
        }
    }
    edges
}

#[test]
fn no_file_reaches_back_to_a_file_that_reaches_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut circles = Vec::new();
    let crate_dirs = std::fs::read_dir(root.join("crates")).unwrap().flatten().map(|entry| entry.path());
    for src in crate_dirs.chain([root.join("tests")]).map(|dir| dir.join("src")) {
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let edges = module_edges(&src, &files);
        // A circle is an edge a -> b where b also reaches a, directly or through others.
        for &(from, to) in &edges {
            let mut seen = vec![false; files.len()];
            let mut stack = vec![to];
            while let Some(at) = stack.pop() {
                if std::mem::replace(&mut seen[at], true) {
                    continue;
                }
                stack.extend(edges.iter().filter(|(a, _)| *a == at).map(|(_, b)| *b));
            }
            if seen[from] {
                circles.push(format!("{} -> {}", files[from].display(), files[to].display()));
            }
        }
    }
    circles.sort();
    circles.dedup();
    assert!(circles.is_empty(), "files that reach each other: {circles:#?}");
}
