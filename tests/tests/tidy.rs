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
