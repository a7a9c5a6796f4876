//! The generated CRD schemas checked without a server: structural rules (types, enums,
//! ranges, lengths, patterns, formats) with a JSON Schema validator and CEL rules with
//! kube-cel, which evaluates `x-kubernetes-validations` as the API server does.

use std::collections::HashMap;

use anyhow::Context;
use serde_json::Value;

pub struct OfflineValidator {
    kinds: HashMap<String, Kind>,
}

struct Kind {
    schema: Value,
    structural: jsonschema::Validator,
}

impl OfflineValidator {
    pub fn from_generated_crds() -> anyhow::Result<Self> {
        let mut kinds = HashMap::new();
        for crd in patchfleet_api::crds() {
            let version = crd
                .spec
                .versions
                .first()
                .context("a CRD without versions")?;
            let schema = version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .context("a CRD without a schema")?;
            let schema = serde_json::to_value(schema)?;
            let structural = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft4)
                .should_validate_formats(true)
                .build(&schema)
                .map_err(|e| anyhow::anyhow!("{} schema: {e}", crd.spec.names.kind))?;
            kinds.insert(crd.spec.names.kind.clone(), Kind { schema, structural });
        }
        Ok(OfflineValidator { kinds })
    }

    /// Every rejection, as `<field path>: <message>` like the API server words them.
    pub fn validate(&self, object: &Value) -> anyhow::Result<Vec<String>> {
        let kind_name = object["kind"].as_str().context("object without kind")?;
        let kind = self
            .kinds
            .get(kind_name)
            .with_context(|| format!("not a patchfleet kind: {kind_name}"))?;
        let mut errors: Vec<String> = kind
            .structural
            .iter_errors(object)
            .map(|e| {
                let mut path = dotted(e.instance_path().as_str());
                // The API server names the missing field itself.
                if let jsonschema::error::ValidationErrorKind::Required { property } = e.kind() {
                    path = format!("{path}.{}", property.as_str().unwrap_or_default());
                }
                format!("{path}: {e}")
            })
            .collect();
        // Like the API server, CEL runs only on a structurally valid object.
        if errors.is_empty()
            && let Err(cel) = kube_cel::Validator::new().validate(&kind.schema, object, None)
        {
            errors.extend(cel.iter().map(|e| e.to_string()));
        }
        Ok(errors)
    }
}

/// `/spec/baselines/0/key` -> `spec.baselines[0].key`, the API server's spelling.
fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        if segment.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(segment);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn pointers_read_like_api_server_paths() {
        assert_eq!(
            super::dotted("/spec/baselines/0/key"),
            "spec.baselines[0].key"
        );
        assert_eq!(super::dotted(""), "");
    }
}
