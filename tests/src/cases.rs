//! tests/validation/cases.yaml: one entry per validation rule of the API, each with a valid
//! and an invalid variant of an example. The same table is checked offline against the
//! generated schema and, for real, against the API server.

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

use crate::examples::{self, Manifest};
use crate::json_patch::{self, Operation};

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Case {
    /// The rule, as a person would state it.
    pub rule: String,
    pub kind: String,
    /// metadata.name of the example the variants start from.
    pub example: String,
    /// A change that keeps the object valid, close to the rule's edge.
    pub valid: Vec<Operation>,
    /// A change that breaks exactly this rule.
    pub invalid: Vec<Operation>,
    /// The field path the rejection must name, such as `spec.accountId`.
    pub field: String,
    /// Text the rejection must contain (a CEL rule's message).
    #[serde(default)]
    pub message: Option<String>,
    /// Why the offline validator cannot check this rule (list uniqueness is enforced by
    /// the API server's structural schema, not by JSON Schema); the server test still does.
    #[serde(default)]
    pub server_only: Option<String>,
}

/// A case's two variants, built from the examples.
pub struct Variants {
    pub valid: Value,
    pub invalid: Value,
}

pub fn load() -> anyhow::Result<Vec<Case>> {
    let path = crate::repo_root().join("tests/validation/cases.yaml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

impl Case {
    pub fn variants(&self, manifests: &[Manifest]) -> anyhow::Result<Variants> {
        let base = examples::find(manifests, &self.kind, &self.example)?
            .value
            .clone();
        let mut valid = base.clone();
        json_patch::apply(&mut valid, &self.valid)
            .with_context(|| format!("valid variant of '{}'", self.rule))?;
        let mut invalid = base;
        json_patch::apply(&mut invalid, &self.invalid)
            .with_context(|| format!("invalid variant of '{}'", self.rule))?;
        Ok(Variants { valid, invalid })
    }

    /// Whether a rejection message is the one this case expects.
    pub fn matches(&self, rejection: &str) -> bool {
        rejection.contains(&self.field)
            && self
                .message
                .as_deref()
                .is_none_or(|m| rejection.contains(m))
    }
}
