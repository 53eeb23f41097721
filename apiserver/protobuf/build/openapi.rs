//! Build script: learns JSON field names, required fields and (apiVersion, kind) pairs from the
//! generated sources of `k8s-openapi` (the serde form the apiserver speaks).
//!
//! k8s-openapi's code is machine generated with a fixed layout, so a line scanner suffices:
//! * `pub struct Name {` blocks list fields (`pub rust_name: Type,`; not `Option<..>` = required);
//! * Deserialize impls map JSON keys to fields: `"podIP" => Field::Key_pod_ip,`;
//! * `impl crate::Resource for Name` / `impl crate::ListableResource for Name` give
//!   `API_VERSION`, `KIND` and `LIST_KIND`.

use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug, Default)]
pub struct OaStruct {
    pub module: String,
    pub name: String,
    /// rust field name -> required (not an `Option`).
    pub required: BTreeMap<String, bool>,
    /// rust field name -> JSON name.
    pub json_by_rust: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default)]
pub struct OaResource {
    pub module: String,
    pub name: String,
    pub api_version: String,
    pub kind: String,
    pub list_kind: Option<String>,
}

#[derive(Default)]
pub struct OaCrate {
    /// Keyed by (module, struct name).
    pub structs: BTreeMap<(String, String), OaStruct>,
    pub resources: Vec<OaResource>,
}

/// Scans `<root>/src/<version_dir>/**.rs`.
pub fn parse_crate(root: &Path, version_dir: &str) -> Result<OaCrate, String> {
    let base = root.join("src").join(version_dir);
    let mut files = Vec::new();
    collect(&base, &mut files)?;
    files.sort();
    let mut out = OaCrate::default();
    for file in &files {
        let rel = file.strip_prefix(&base).map_err(|e| e.to_string())?;
        let module: Vec<String> = rel
            .parent()
            .map(|p| p.iter().map(|s| s.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let module = module.join(".");
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        scan_file(&text, &module, &mut out);
    }
    if out.structs.is_empty() || out.resources.is_empty() {
        return Err(format!(
            "no k8s-openapi types found under {}",
            base.display()
        ));
    }
    Ok(out)
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// `Name<T> {` / `Name<'a> {` / `Name {` -> `Name`.
fn type_name(rest: &str) -> Option<String> {
    let name: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

fn quoted(line: &str) -> Option<String> {
    let start = line.find('"')?;
    let end = line[start + 1..].find('"')?;
    Some(line[start + 1..start + 1 + end].to_string())
}

enum State {
    Top,
    StructBody(String),
    Deserialize(String),
    Resource(usize),
    Listable(String),
}

fn scan_file(text: &str, module: &str, out: &mut OaCrate) {
    let mut state = State::Top;
    for line in text.lines() {
        let trimmed = line.trim();
        // New top-level items reset the state.
        if !line.starts_with(' ') && !line.starts_with('}') && !trimmed.is_empty() {
            state = State::Top;
        }
        if let Some(rest) = line.strip_prefix("pub struct ")
            && let Some(name) = type_name(rest)
        {
            let entry = struct_entry(out, module, &name);
            let _ = entry;
            if trimmed.ends_with('{') {
                state = State::StructBody(name);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("pub enum ")
            && let Some(name) = type_name(rest)
        {
            struct_entry(out, module, &name);
            continue;
        }
        if let Some(idx) = line.find("crate::serde::Deserialize<'de> for ")
            && line.starts_with("impl")
            && let Some(name) =
                type_name(&line[idx + "crate::serde::Deserialize<'de> for ".len()..])
        {
            struct_entry(out, module, &name);
            state = State::Deserialize(name);
            continue;
        }
        if let Some(rest) = line.strip_prefix("impl crate::Resource for ")
            && let Some(name) = type_name(rest)
        {
            out.resources.push(OaResource {
                module: module.to_string(),
                name,
                ..OaResource::default()
            });
            state = State::Resource(out.resources.len() - 1);
            continue;
        }
        if let Some(rest) = line.strip_prefix("impl crate::ListableResource for ")
            && let Some(name) = type_name(rest)
        {
            state = State::Listable(name);
            continue;
        }
        match &state {
            State::Top => {}
            State::StructBody(name) => {
                if line == "}" {
                    state = State::Top;
                } else if let Some(rest) = trimmed.strip_prefix("pub ")
                    && let Some((field, ty)) = rest.split_once(':')
                {
                    let required = !ty.trim_start().starts_with("Option<");
                    let name = name.clone();
                    struct_entry(out, module, &name)
                        .required
                        .insert(field.to_string(), required);
                }
            }
            State::Deserialize(name) => {
                if let Some((lhs, rhs)) = trimmed.split_once(" => Field::Key_")
                    && lhs.starts_with('"')
                    && let Some(json) = quoted(lhs)
                {
                    let rust = rhs.trim_end_matches(',').to_string();
                    let name = name.clone();
                    struct_entry(out, module, &name)
                        .json_by_rust
                        .entry(rust)
                        .or_insert(json);
                }
            }
            State::Resource(idx) => {
                let idx = *idx;
                if trimmed.starts_with("const API_VERSION") {
                    out.resources[idx].api_version = quoted(trimmed).unwrap_or_default();
                } else if trimmed.starts_with("const KIND") {
                    out.resources[idx].kind = quoted(trimmed).unwrap_or_default();
                }
            }
            State::Listable(name) => {
                if trimmed.starts_with("const LIST_KIND") {
                    let list_kind = quoted(trimmed);
                    if let Some(res) = out
                        .resources
                        .iter_mut()
                        .rev()
                        .find(|r| r.module == module && &r.name == name)
                    {
                        res.list_kind = list_kind;
                    }
                }
            }
        }
    }
}

fn struct_entry<'a>(out: &'a mut OaCrate, module: &str, name: &str) -> &'a mut OaStruct {
    out.structs
        .entry((module.to_string(), name.to_string()))
        .or_insert_with(|| OaStruct {
            module: module.to_string(),
            name: name.to_string(),
            ..OaStruct::default()
        })
}
