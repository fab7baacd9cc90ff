//! The core's imports run one way: down the layers, and never in a circle.
//!
//! Every `use crate::…`, `use super::…` and inline `crate::…`/`super::…` path of
//! `shared/src` (tests excluded) is an edge from the module that writes it to the module it
//! names. A parent's `mod child;` is not an edge: a facade over its children is the normal
//! shape, and it is the children reaching for each other that makes a reader go back and
//! forth. The edges must form no cycle, and none may point from a lower layer to a higher one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level modules of `shared/src`, lowest first. An edge may point down or sideways
/// within its own top-level module (then the cycle check applies), never up.
const LAYERS: &[&str] = &[
    "domain",
    "ports",
    "error",
    "config",
    "crypto",
    "adapters",
    "ops",
    "bootstrap",
    "http",
];

type Module = Vec<String>;

fn name(module: &[String]) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.join("::")
    }
}

/// Every module of the crate, by path, with its source.
fn modules(root: &Path) -> BTreeMap<Module, String> {
    let mut found = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("shared/src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let relative = path.strip_prefix(root).expect("below the root");
            let mut module: Module = relative
                .with_extension("")
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            let source = std::fs::read_to_string(&path).expect("a readable source file");
            found.insert(module, source);
        }
    }
    found
}

/// The source without its unit tests, comments and string literals, so that only code
/// speaks.
fn code_of(source: &str) -> String {
    let source = match source.find("#[cfg(test)]") {
        Some(at) => &source[..at],
        None => source,
    };
    let mut code = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        code.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                code.push_str("\"\"");
            }
            _ => code.push(c),
        }
    }
    code
}

/// The paths a use tree names: `a::{b, c::{d as e}}` is `a::b` and `a::c::d`.
fn expand(prefix: &[String], tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim();
    if let Some(inner) = tree.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&inner[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&inner[start..]);
        return parts
            .into_iter()
            .filter(|p| !p.trim().is_empty())
            .flat_map(|p| expand(prefix, p))
            .collect();
    }
    if let Some(at) = tree.find("::{") {
        let mut longer = prefix.to_vec();
        longer.extend(tree[..at].split("::").map(|s| s.trim().to_string()));
        return expand(&longer, &tree[at + 2..]);
    }
    let path = tree.split(" as ").next().unwrap_or(tree);
    let mut whole = prefix.to_vec();
    whole.extend(path.split("::").map(|s| s.trim().to_string()));
    vec![whole]
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every `crate::…`, `super::…` and `self::…` path written in `code`, use trees expanded.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let flat: String = code.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut rest = flat.as_str();
    while let Some(at) = rest.find("use ") {
        let before = rest[..at].chars().last();
        let after = &rest[at + 4..];
        rest = after;
        if before.is_some_and(is_ident) {
            continue;
        }
        if let Some(end) = after.find(';') {
            let tree = after[..end].replace(' ', "");
            paths.extend(expand(&[], &tree));
        }
    }
    for start in ["crate::", "super::"] {
        let mut rest = flat.as_str();
        while let Some(at) = rest.find(start) {
            let before = rest[..at].chars().last();
            let tail = &rest[at..];
            rest = &rest[at + start.len()..];
            if before.is_some_and(|c| is_ident(c) || c == ':') {
                continue;
            }
            let end = tail
                .find(|c: char| !(is_ident(c) || c == ':'))
                .unwrap_or(tail.len());
            paths.push(
                tail[..end]
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
        }
    }
    paths
}

/// The module a path names: the longest prefix of it that is a module, resolved from `from`.
fn target(from: &[String], path: &[String], modules: &BTreeMap<Module, String>) -> Option<Module> {
    let mut absolute: Module = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("self") => from.to_vec(),
        Some("super") => from[..from.len().saturating_sub(1)].to_vec(),
        _ => return None,
    };
    let mut rest = &path[1..];
    while rest.first().map(String::as_str) == Some("super") {
        absolute.pop();
        rest = &rest[1..];
    }
    absolute.extend(rest.iter().cloned());
    (0..=absolute.len())
        .rev()
        .map(|k| absolute[..k].to_vec())
        .find(|prefix| modules.contains_key(prefix))
}

fn edges(modules: &BTreeMap<Module, String>) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, source) in modules {
        for path in paths_in(&code_of(source)) {
            if let Some(to) = target(module, &path, modules) {
                if &to != module {
                    edges.entry(module.clone()).or_default().insert(to);
                }
            }
        }
    }
    edges
}

/// The strongly connected components of more than one module (Tarjan's algorithm).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        found: Vec<Vec<Module>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a Module) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.found
}

fn core_edges() -> (BTreeMap<Module, String>, BTreeMap<Module, BTreeSet<Module>>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("shared/src");
    let modules = modules(&root);
    assert!(
        modules.len() > 20 && modules.contains_key(&vec!["ops".to_string()]),
        "shared/src was not read: {:?}",
        modules.keys().collect::<Vec<_>>()
    );
    let edges = edges(&modules);
    (modules, edges)
}

#[test]
fn the_core_has_no_import_circle() {
    let (_, edges) = core_edges();
    let found: Vec<String> = cycles(&edges)
        .iter()
        .map(|component| {
            let names: Vec<String> = component.iter().map(|m| name(m)).collect();
            format!("[{}]", names.join(", "))
        })
        .collect();
    assert!(
        found.is_empty(),
        "modules that import each other, round a circle: {}",
        found.join("; ")
    );
}

#[test]
fn the_core_imports_only_down_its_layers() {
    let (modules, edges) = core_edges();
    let layer = |module: &Module| {
        let top = module.first().map(String::as_str).unwrap_or("");
        LAYERS.iter().position(|l| *l == top)
    };
    for module in modules.keys().filter(|m| !m.is_empty()) {
        assert!(
            layer(module).is_some(),
            "{} is in no layer: place its top-level module in LAYERS",
            name(module)
        );
    }
    let mut upward = Vec::new();
    for (from, targets) in &edges {
        for to in targets {
            if let (Some(a), Some(b)) = (layer(from), layer(to)) {
                if b > a {
                    upward.push(format!("{} -> {}", name(from), name(to)));
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports from a lower layer up to a higher one: {}",
        upward.join(", ")
    );
}

#[test]
fn the_import_reader_sees_use_trees_inline_paths_and_super() {
    let modules: BTreeMap<Module, String> = [
        ("", ""),
        ("a", ""),
        (
            "a::b",
            "use super::c::{X, d::{Y as Z}};\nfn f() { crate::e::g(); }",
        ),
        ("a::c", "// use crate::e;\nconst S: &str = \"crate::e::h\";"),
        ("a::c::d", ""),
        ("e", "use crate::a::b::K;"),
    ]
    .into_iter()
    .map(|(path, source)| {
        let module: Module = path
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        (module, source.to_string())
    })
    .collect();
    let edges = edges(&modules);
    let of = |m: &str| -> Vec<String> {
        let module: Module = m.split("::").map(str::to_string).collect();
        edges
            .get(&module)
            .into_iter()
            .flatten()
            .map(|t| name(t))
            .collect()
    };
    assert_eq!(of("a::b"), ["a::c", "a::c::d", "e"]);
    assert!(of("a::c").is_empty(), "comments and strings are no imports");
    assert_eq!(of("e"), ["a::b"]);
    let circles = cycles(&edges);
    assert_eq!(circles.len(), 1);
    assert_eq!(
        circles[0].iter().map(|m| name(m)).collect::<Vec<_>>(),
        ["a::b", "e"]
    );
}
