//! The layering rules of docs/architecture.md, checked mechanically over `src/` by a test:
//!
//! 1. Only the code that starts the emulator imports it (the crate's `local` module): the emulator itself, the `local` and
//!    `demo` commands, the composition root (`commands/mod.rs`, which starts it for `demo`), `cli.rs` (the
//!    `local` command's flags and defaults), and `lib.rs`/`main.rs`.
//! 2. The emulator (`src/local/`) imports nothing from `commands`, `cli`, `ui` or `aws`.
//!
//! Paths are resolved the way rustc resolves them (`crate::`, `super::`, `self::`, and grouped
//! `use crate::{...}`), after comments and string literals are removed, so neither a doc comment that names a
//! module nor `super::super::aws` slips through.

use std::path::{Path, PathBuf};

/// Files allowed to import the emulator, relative to `src/`.
const STARTERS: &[&str] = &["cli.rs", "lib.rs", "main.rs", "commands/mod.rs", "commands/local.rs", "commands/demo.rs"];
/// The emulator's module (spelled once, so that this file's own examples are not taken for imports by simple
/// text searches of the tree).
const EMULATOR: &str = "local";
/// What the emulator must not import.
const FORBIDDEN_IN_EMULATOR: &[&str] = &["commands", "cli", "ui", "aws"];

/// The module path of a source file relative to `src/` (`local/firehose/mod.rs` → `local::firehose`).
fn module_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel.trim_end_matches(".rs").split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// Source text with comments, string and char literals blanked out.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'r'
            && (b[i + 1..].starts_with(b"\"") || b[i + 1..].starts_with(b"#"))
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
        {
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            if b.get(i + 1 + hashes) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
            i += 2 + hashes;
            while i < b.len() && !b[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            i += 3;
            out.push_str("' '");
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            i += 2;
            while i < b.len() && b[i] != b'\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else {
            let c = src[i..].chars().next().expect("in bounds");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// The top-level names inside a `{...}` group starting at `s` (just after `{`).
fn group_names(s: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0;
    let mut at_item_start = true;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_item_start = true,
            c if c.is_whitespace() => {}
            _ if at_item_start && depth == 0 => {
                at_item_start = false;
                let name = ident_at(&s[i..]);
                if !name.is_empty() {
                    names.push(name.to_string());
                }
            }
            _ => {}
        }
    }
    names
}

/// Every crate-level module a file refers to (the first segment of each resolved `crate::`/`super::`/`self::`
/// path), with the line it is on.
fn referenced_roots(rel: &str, src: &str) -> Vec<(usize, String)> {
    let module = module_of(rel);
    let code = code_only(src);
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let mut rest = line;
        while let Some(pos) = rest.find(['c', 's']) {
            let here = &rest[pos..];
            let boundary = pos == 0 || !rest[..pos].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':');
            let mut path: Option<Vec<String>> = None;
            let mut after = "";
            if boundary {
                if let Some(t) = here.strip_prefix("crate::") {
                    path = Some(Vec::new());
                    after = t;
                } else if here.starts_with("super::") || here.starts_with("self::") {
                    let mut base = module.clone();
                    let mut t = here;
                    loop {
                        if let Some(x) = t.strip_prefix("super::") {
                            base.pop();
                            t = x;
                        } else if let Some(x) = t.strip_prefix("self::") {
                            t = x;
                        } else {
                            break;
                        }
                    }
                    path = Some(base);
                    after = t;
                }
            }
            if let Some(base) = path {
                let nexts: Vec<String> = match after.strip_prefix('{') {
                    Some(group) => group_names(group),
                    None => vec![ident_at(after).to_string()],
                };
                for next in nexts {
                    let mut full = base.clone();
                    full.push(next);
                    if let Some(root) = full.first().filter(|r| !r.is_empty()) {
                        found.push((n + 1, root.clone()));
                    }
                }
            }
            rest = &rest[pos + 1..];
        }
    }
    found
}

/// The layering violations of one file (`rel` relative to `src/`).
pub fn violations(rel: &str, src: &str) -> Vec<String> {
    let in_emulator = rel.starts_with("local/");
    let mut out = Vec::new();
    for (line, root) in referenced_roots(rel, src) {
        if root == EMULATOR && !in_emulator && !STARTERS.contains(&rel) {
            out.push(format!("src/{rel}:{line}: imports the emulator (the `{EMULATOR}` module) but does not start it"));
        }
        if in_emulator && FORBIDDEN_IN_EMULATOR.contains(&root.as_str()) {
            out.push(format!("src/{rel}:{line}: the emulator imports crate::{root}"));
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_tree_follows_the_layering() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        assert!(files.len() > 40, "found only {} files", files.len());
        let mut all = Vec::new();
        for path in files {
            let rel = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
            all.extend(violations(&rel, &std::fs::read_to_string(&path).unwrap()));
        }
        assert!(all.is_empty(), "layering violations (see docs/architecture.md):\n{}", all.join("\n"));
    }

    #[test]
    fn the_checker_catches_each_form_of_import() {
        // `crate::` + the emulator's module, written as `C::EMU` in these examples.
        let src = |text: &str| text.replace("C::EMU", &format!("crate::{EMULATOR}"));
        let bad_client = [
            src("use C::EMU::Emulator;"),
            "use crate::{error::Error, local::persist};".to_string(),
            src("fn f() { C::EMU::start(); }"),
        ];
        for text in &bad_client {
            assert_eq!(violations("pipeline/manifest.rs", text).len(), 1, "{text}");
        }
        assert_eq!(violations("pipeline/manifest.rs", "use super::super::local::x;").len(), 1);
        assert_eq!(
            violations("settings.rs", "use self::local::x; use super::local::y;").len(),
            1,
            "in settings.rs, self::local is settings::local but super::local is the crate's local"
        );
        let bad_emulator = [
            "use crate::aws::Clients;",
            "use crate::{firehose::limits, ui::Printer};",
            "use super::super::super::commands::send;",
            "fn f() -> crate::cli::LocalArgs { todo!() }",
        ];
        for src in bad_emulator {
            assert_eq!(violations("local/firehose/engine.rs", src).len(), 1, "{src}");
        }
        // Allowed: the starters, the domain module, and mentions in comments and strings.
        assert!(violations("commands/demo.rs", &src("use C::EMU::EmulatorHandle;")).is_empty());
        assert!(violations("local/firehose/engine.rs", "use crate::firehose::keys; use super::journal;").is_empty());
        assert!(violations("verify.rs", &src("// C::EMU::x\n/* C::EMU */ let s = \"C::EMU\";")).is_empty());
        assert!(violations("local/mod.rs", "use self::firehose::quota; mod aws_like {}").is_empty());
    }
}
