//! The architecture, checked: every module of `src/` imports only modules below it in the
//! one-way order that ARCHITECTURE.md lists (so no import cycle between modules can exist), and
//! that list is the one in this file.

use std::collections::BTreeSet;
use std::path::Path;

/// Every top-level module, lowest first: each may import only modules listed before it.
const ORDER: &[&str] = &[
    // Shared leaves and libraries: they import nothing of the crate but each other.
    "body",
    "error",
    "clock",
    "metrics",
    "telemetry",
    "store",
    "redact",
    "ownership",
    "devcerts",
    // Policy files, then the compiled policy.
    "config",
    "policy",
    // The request's building blocks.
    "audit",
    "auth",
    "ratelimit",
    "waitroom",
    "authz",
    "upstream",
    // The synthetic registry (an upstream of its own; uses the assertion verifier).
    "demo",
    // The compiled runtime and the state that outlives it.
    "runtime",
    // The request path, the listeners, the commands.
    "pipeline",
    "server",
    "cmd",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crate modules a source text names: `crate::x…` and `crate::{x, y…}`.
fn imports(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                found.extend(group.split(',').map(|part| ident(part.trim())).filter(|m| !m.is_empty()));
            }
            None => {
                found.insert(ident(rest));
            }
        }
    }
    found
}

#[test]
fn every_module_imports_only_modules_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src").to_string_lossy().replace('\\', "/");
        let module = rel.split('/').next().unwrap_or_default().trim_end_matches(".rs").to_string();
        if module == "main" || module == "lib" || module == "tests" {
            continue;
        }
        seen.insert(module.clone());
        let Some(rank) = ORDER.iter().position(|m| *m == module) else {
            problems.push(format!("{rel}: module `{module}` is not in the order (src/tests.rs, ARCHITECTURE.md)"));
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("readable file");
        for import in imports(&text) {
            if import == module {
                continue;
            }
            match ORDER.iter().position(|m| *m == import) {
                Some(other) if other < rank => {}
                Some(_) => problems.push(format!("{rel}: `{module}` imports `{import}`, which is above it")),
                None => problems.push(format!("{rel}: imports `crate::{import}`, which is no module")),
            }
        }
    }
    for module in ORDER {
        if !seen.contains(*module) {
            problems.push(format!("`{module}` is in the order but not in src/"));
        }
    }
    assert!(problems.is_empty(), "the one-way order is broken:\n{}", problems.join("\n"));
}

#[test]
fn architecture_md_lists_the_same_order() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
        .expect("ARCHITECTURE.md in the repository");
    // The order is the table's rows whose first cell is a module name in backquotes, in order.
    let listed: Vec<&str> =
        doc.lines().filter_map(|l| l.strip_prefix("| `")).filter_map(|l| l.split_once('`').map(|(m, _)| m)).collect();
    let mut bottom_up = listed.clone();
    bottom_up.reverse();
    assert_eq!(bottom_up, ORDER, "ARCHITECTURE.md's module table (top to bottom) must be ORDER reversed");
}

#[test]
fn the_import_reader_sees_grouped_and_plain_paths() {
    let got = imports("use crate::{auth::Caller, policy};\nlet x = crate::clock::Clock::system();");
    assert_eq!(got.into_iter().collect::<Vec<_>>(), ["auth", "clock", "policy"]);
}
