//! The manifests in examples/, as JSON values, in the order a user applies them.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

/// One document of an example file.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub file: String,
    pub value: Value,
}

impl Manifest {
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }
    pub fn namespace(&self) -> Option<&str> {
        self.value["metadata"]["namespace"].as_str()
    }
}

/// Every document of every `*.yaml` file directly in `dir`, files in name order.
pub fn load_dir(dir: &Path) -> anyhow::Result<Vec<Manifest>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut manifests = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path)?;
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(document)
                .with_context(|| format!("parsing {}", path.display()))?;
            if value.is_null() {
                continue;
            }
            manifests.push(Manifest {
                file: path.display().to_string(),
                value,
            });
        }
    }
    Ok(manifests)
}

/// The examples shipped in examples/.
pub fn load() -> anyhow::Result<Vec<Manifest>> {
    load_dir(&crate::repo_root().join("examples"))
}

/// The example of that kind and name.
pub fn find<'a>(manifests: &'a [Manifest], kind: &str, name: &str) -> anyhow::Result<&'a Manifest> {
    manifests
        .iter()
        .find(|m| m.kind() == kind && m.name() == name)
        .with_context(|| format!("no example {kind}/{name}"))
}
