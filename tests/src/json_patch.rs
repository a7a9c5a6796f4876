//! Just enough of JSON Patch (RFC 6902: add, replace, remove) to derive each validation
//! case from an example.

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Operation {
    Add { path: String, value: Value },
    Replace { path: String, value: Value },
    Remove { path: String },
}

pub fn apply(document: &mut Value, operations: &[Operation]) -> anyhow::Result<()> {
    for operation in operations {
        match operation {
            Operation::Replace { path, value } => {
                let target = document
                    .pointer_mut(path)
                    .with_context(|| format!("replace: nothing at {path}"))?;
                *target = value.clone();
            }
            Operation::Add { path, value } => {
                let (parent, last) = split(path)?;
                match document.pointer_mut(parent) {
                    Some(Value::Object(map)) => {
                        map.insert(last.to_owned(), value.clone());
                    }
                    Some(Value::Array(items)) if last == "-" => items.push(value.clone()),
                    Some(Value::Array(items)) => {
                        let index: usize = last.parse().context("add: array index")?;
                        if index > items.len() {
                            bail!("add: index {index} past the end of {parent}");
                        }
                        items.insert(index, value.clone());
                    }
                    _ => bail!("add: no object or array at {parent}"),
                }
            }
            Operation::Remove { path } => {
                let (parent, last) = split(path)?;
                let removed = match document.pointer_mut(parent) {
                    Some(Value::Object(map)) => map.remove(last).is_some(),
                    Some(Value::Array(items)) => match last.parse::<usize>() {
                        Ok(index) if index < items.len() => {
                            items.remove(index);
                            true
                        }
                        _ => false,
                    },
                    _ => false,
                };
                if !removed {
                    bail!("remove: nothing at {path}");
                }
            }
        }
    }
    Ok(())
}

fn split(path: &str) -> anyhow::Result<(&str, &str)> {
    path.rsplit_once('/')
        .with_context(|| format!("not a JSON pointer: {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn applies_add_replace_remove() {
        let mut doc = json!({"spec": {"a": 1, "list": [1, 2]}});
        let ops: Vec<Operation> = serde_json::from_value(json!([
            {"op": "replace", "path": "/spec/a", "value": 2},
            {"op": "add", "path": "/spec/b", "value": true},
            {"op": "add", "path": "/spec/list/-", "value": 3},
            {"op": "remove", "path": "/spec/list/0"}
        ]))
        .expect("valid operations");
        apply(&mut doc, &ops).expect("applies");
        assert_eq!(doc, json!({"spec": {"a": 2, "b": true, "list": [2, 3]}}));
    }

    #[test]
    fn a_missing_target_is_an_error() {
        let mut doc = json!({"spec": {}});
        let ops: Vec<Operation> =
            serde_json::from_value(json!([{"op": "remove", "path": "/spec/x"}])).expect("valid");
        assert!(apply(&mut doc, &ops).is_err());
    }
}
