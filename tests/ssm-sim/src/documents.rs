//! The SSM documents patchfleet runs, with their parameters: one definition used by
//! SendCommand and by maintenance window task registration.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentType {
    Command,
    Automation,
}

/// One document parameter (all of them are of type String).
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub required: bool,
    /// The document's `allowedValues`, when it has any.
    pub allowed: Option<&'static [&'static str]>,
    pub default: Option<&'static str>,
}

const fn param(name: &'static str) -> Param {
    Param {
        name,
        required: false,
        allowed: None,
        default: None,
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Document {
    pub name: &'static str,
    pub kind: DocumentType,
    pub params: &'static [Param],
}

/// https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-aws-runpatchbaseline.html
pub const RUN_PATCH_BASELINE: Document = Document {
    name: "AWS-RunPatchBaseline",
    kind: DocumentType::Command,
    params: &[
        Param {
            required: true,
            allowed: Some(&["Scan", "Install"]),
            ..param("Operation")
        },
        param("SnapshotId"),
        param("InstallOverrideList"),
        param("AssociationId"),
        param("BaselineOverride"),
        Param {
            allowed: Some(&["RebootIfNeeded", "NoReboot"]),
            default: Some("RebootIfNeeded"),
            ..param("RebootOption")
        },
    ],
};

/// https://docs.aws.amazon.com/systems-manager-automation-runbooks/latest/userguide/automation-aws-patchinstancewithrollback.html
pub const PATCH_INSTANCE_WITH_ROLLBACK: Document = Document {
    name: "AWS-PatchInstanceWithRollback",
    kind: DocumentType::Automation,
    params: &[
        param("AutomationAssumeRole"),
        Param {
            required: true,
            ..param("InstanceId")
        },
        param("LambdaAssumeRole"),
        param("ReportS3Bucket"),
    ],
};

const DOCUMENTS: &[Document] = &[RUN_PATCH_BASELINE, PATCH_INSTANCE_WITH_ROLLBACK];

/// Maintenance window pseudo parameters, replaced by their values when the task runs.
/// https://docs.aws.amazon.com/systems-manager/latest/userguide/maintenance-window-tasks-pseudo-parameters.html
const PSEUDO_PARAMETERS: &[&str] = &[
    "TARGET_ID",
    "TARGET_TYPE",
    "RESOURCE_ID",
    "RESOURCE_TYPE",
    "WINDOW_ID",
    "WINDOW_TASK_ID",
    "WINDOW_TARGET_ID",
    "WINDOW_EXECUTION_ID",
    "TASK_EXECUTION_ID",
    "INVOCATION_ID",
    "LOGGING_S3_BUCKET_NAME",
    "LOGGING_S3_KEY_PREFIX",
    "LOGGING_S3_REGION",
];

/// A value made only of pseudo parameters (`{{RESOURCE_ID}}`), known only when the task runs.
fn is_pseudo(value: &str) -> bool {
    let mut rest = value;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let Some(inner) = rest.strip_prefix("{{") else {
            return false;
        };
        let Some((name, after)) = inner.split_once("}}") else {
            return false;
        };
        if !PSEUDO_PARAMETERS.contains(&name.trim()) {
            return false;
        }
        rest = after;
    }
    true
}

pub fn find(name: &str) -> Option<&'static Document> {
    DOCUMENTS.iter().find(|d| d.name == name)
}

/// Reads a `{"Name": ["value", ...]}` parameter map (wrong types are a SerializationException).
pub fn string_lists(params: &Map<String, Value>) -> ApiResult<Vec<(String, Vec<String>)>> {
    params
        .iter()
        .map(|(k, v)| {
            let values = v
                .as_array()
                .ok_or_else(|| {
                    ApiError::serialization(format!("Parameter {k} must be a list of strings"))
                })?
                .iter()
                .map(|s| {
                    s.as_str().map(str::to_string).ok_or_else(|| {
                        ApiError::serialization(format!("Parameter {k} must be a list of strings"))
                    })
                })
                .collect::<ApiResult<Vec<String>>>()?;
            Ok((k.clone(), values))
        })
        .collect()
}

impl Document {
    /// Checks parameters against the document: known names, one value each (all are
    /// Strings), allowed values, required ones present. With `pseudo`, maintenance
    /// window pseudo parameters stand for any value. Returns the problem found.
    pub fn check(&self, params: &[(String, Vec<String>)], pseudo: bool) -> Result<(), String> {
        for (key, values) in params {
            let Some(p) = self.params.iter().find(|p| p.name == key) else {
                return Err(format!(
                    "Parameter \"{key}\" is not defined in document {}.",
                    self.name
                ));
            };
            if values.len() > 1 {
                return Err(format!(
                    "Parameter \"{key}\" of document {} takes one value, got {}.",
                    self.name,
                    values.len()
                ));
            }
            if let Some(choices) = p.allowed
                && values
                    .iter()
                    .any(|v| !(choices.contains(&v.as_str()) || (pseudo && is_pseudo(v))))
            {
                return Err(format!(
                    "Parameter \"{key}\" has an invalid value. Allowed values: {}.",
                    choices.join(", ")
                ));
            }
        }
        for p in self.params.iter().filter(|p| p.required) {
            let given = params
                .iter()
                .any(|(k, v)| k == p.name && v.iter().any(|s| !s.is_empty()));
            if !given {
                return Err(format!(
                    "Parameter \"{}\" is required by document {}.",
                    p.name, self.name
                ));
            }
        }
        Ok(())
    }

    /// The value a parameter runs with: the one given, else the document's default.
    pub fn value<'a>(&self, params: &'a [(String, Vec<String>)], name: &str) -> Option<&'a str> {
        params
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.first())
            .map(String::as_str)
            .or_else(|| {
                self.params
                    .iter()
                    .find(|p| p.name == name)
                    .and_then(|p| p.default)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, Vec<String>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
            .collect()
    }

    #[test]
    fn run_patch_baseline_parameters() {
        let d = RUN_PATCH_BASELINE;
        assert!(d.check(&params(&[("Operation", "Install")]), false).is_ok());
        assert!(
            d.check(&params(&[("Operation", "Reboot")]), false)
                .is_err_and(|e| e.contains("Allowed values: Scan, Install"))
        );
        assert!(
            d.check(&params(&[("RebootOption", "NoReboot")]), false)
                .is_err_and(|e| e.contains("\"Operation\" is required"))
        );
        assert!(
            d.check(&params(&[("Operation", "Scan"), ("Foo", "x")]), false)
                .is_err_and(|e| e.contains("\"Foo\" is not defined"))
        );
        assert_eq!(
            d.value(&params(&[("Operation", "Scan")]), "RebootOption"),
            Some("RebootIfNeeded")
        );
        // Pseudo parameters only stand for values in maintenance window tasks.
        let pseudo = params(&[("Operation", "{{RESOURCE_ID}}")]);
        assert!(d.check(&pseudo, true).is_ok());
        assert!(d.check(&pseudo, false).is_err());
    }

    #[test]
    fn pseudo_parameters() {
        assert!(is_pseudo("{{RESOURCE_ID}}"));
        assert!(is_pseudo("{{ TARGET_ID }}"));
        assert!(is_pseudo("{{WINDOW_ID}}{{TASK_EXECUTION_ID}}"));
        assert!(!is_pseudo("{{NOT_A_PSEUDO}}"));
        assert!(!is_pseudo("i-{{TARGET_ID}}"));
        assert!(!is_pseudo(""));
    }
}
