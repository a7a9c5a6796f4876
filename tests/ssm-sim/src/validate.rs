//! Request members read with AWS's constraints.
//!
//! AWS checks every member before acting and reports all violations at once as
//! `N validation error(s) detected: Value 'x' at 'member' failed to satisfy constraint: ...`,
//! naming members in lowerCamelCase. A member of the wrong JSON type is a
//! `SerializationException`. See "Common Errors":
//! https://docs.aws.amazon.com/systems-manager/latest/APIReference/CommonErrors.html

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// A documented string constraint: length range and optional pattern.
#[derive(Debug, Clone, Copy)]
pub struct Str {
    pub min: usize,
    pub max: usize,
    pub pattern: Option<&'static str>,
}

impl Str {
    pub const fn len(min: usize, max: usize) -> Self {
        Self {
            min,
            max,
            pattern: None,
        }
    }

    pub const fn pat(min: usize, max: usize, pattern: &'static str) -> Self {
        Self {
            min,
            max,
            pattern: Some(pattern),
        }
    }
}

// Patterns from the SSM API reference data types.
pub const BASELINE_ID: Str = Str::pat(20, 128, r"^[a-zA-Z0-9_\-:/]{20,128}$");
pub const BASELINE_NAME: Str = Str::pat(3, 128, r"^[a-zA-Z0-9_\-.]{3,128}$");
pub const PATCH_GROUP: Str = Str::pat(1, 256, r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$");
pub const WINDOW_ID: Str = Str::pat(20, 20, r"^mw-[0-9a-f]{17}$");
pub const WINDOW_NAME: Str = Str::pat(3, 128, r"^[a-zA-Z0-9_\-.]{3,128}$");
pub const WINDOW_CHILD_ID: Str = Str::pat(
    36,
    36,
    r"^[0-9a-fA-F]{8}\-[0-9a-fA-F]{4}\-[0-9a-fA-F]{4}\-[0-9a-fA-F]{4}\-[0-9a-fA-F]{12}$",
);
pub const CLIENT_TOKEN: Str = Str::len(1, 64);
pub const TAG_KEY: Str = Str::pat(1, 128, r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$");
pub const TAG_VALUE: Str = Str::pat(0, 256, r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$");
pub const OWNER_INFORMATION: Str = Str::len(1, 128);
pub const WINDOW_DESCRIPTION: Str = Str::len(1, 128);
pub const NEXT_TOKEN: Str = Str::len(0, 2048);

pub const OPERATING_SYSTEMS: &[&str] = &[
    "WINDOWS",
    "AMAZON_LINUX",
    "AMAZON_LINUX_2",
    "AMAZON_LINUX_2022",
    "UBUNTU",
    "REDHAT_ENTERPRISE_LINUX",
    "SUSE",
    "CENTOS",
    "ORACLE_LINUX",
    "DEBIAN",
    "MACOS",
    "RASPBIAN",
    "ROCKY_LINUX",
    "ALMA_LINUX",
    "AMAZON_LINUX_2023",
];

pub const COMPLIANCE_LEVELS: &[&str] = &[
    "CRITICAL",
    "HIGH",
    "MEDIUM",
    "LOW",
    "INFORMATIONAL",
    "UNSPECIFIED",
];

static REGEX_CACHE: LazyLock<Mutex<HashMap<&'static str, Regex>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Whether `value` matches one of the documented patterns (compiled once each).
pub fn matches(pattern: &'static str, value: &str) -> bool {
    let mut cache = REGEX_CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let re = cache.entry(pattern).or_insert_with(|| {
        #[allow(clippy::expect_used)]
        Regex::new(pattern).expect("documented patterns are valid regexes")
    });
    re.is_match(value)
}

fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn json_type_error(member: &str, expected: &str) -> ApiError {
    ApiError::serialization(format!(
        "Unexpected value type for member '{member}': expected {expected}"
    ))
}

/// Collects constraint violations over one request or one nested structure.
#[derive(Debug, Default)]
pub struct Violations(Vec<String>);

impl Violations {
    pub fn push(&mut self, value: Option<&str>, path: &str, constraint: impl AsRef<str>) {
        let value = match value {
            Some(v) => format!("'{v}'"),
            None => "null".to_string(),
        };
        self.0.push(format!(
            "Value {value} at '{path}' failed to satisfy constraint: {}",
            constraint.as_ref()
        ));
    }

    /// Checks a string against a constraint under the given member path.
    pub fn check_str(&mut self, path: &str, value: &str, rule: Str) {
        let n = value.chars().count();
        if n < rule.min {
            self.push(
                Some(value),
                path,
                format!(
                    "Member must have length greater than or equal to {}",
                    rule.min
                ),
            );
        } else if n > rule.max {
            self.push(
                Some(value),
                path,
                format!("Member must have length less than or equal to {}", rule.max),
            );
        } else if let Some(p) = rule.pattern
            && !matches(p, value)
        {
            self.push(
                Some(value),
                path,
                format!("Member must satisfy regular expression pattern: {p}"),
            );
        }
    }

    pub fn check_enum(&mut self, path: &str, value: &str, allowed: &[&str]) {
        if !allowed.contains(&value) {
            self.push(
                Some(value),
                path,
                format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                ),
            );
        }
    }

    pub fn check_range(&mut self, path: &str, value: i64, min: i64, max: i64) {
        let shown = value.to_string();
        if value < min {
            self.push(
                Some(&shown),
                path,
                format!("Member must have value greater than or equal to {min}"),
            );
        } else if value > max {
            self.push(
                Some(&shown),
                path,
                format!("Member must have value less than or equal to {max}"),
            );
        }
    }

    pub fn check_count(&mut self, path: &str, count: usize, min: usize, max: usize) {
        let shown = format!("[{count} items]");
        if count < min {
            self.push(
                Some(&shown),
                path,
                format!("Member must have length greater than or equal to {min}"),
            );
        } else if count > max {
            self.push(
                Some(&shown),
                path,
                format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result(self) -> ApiResult<()> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(ApiError::validation(format!(
                "1 validation error detected: {}",
                self.0[0]
            ))),
            n => Err(ApiError::validation(format!(
                "{n} validation errors detected: {}",
                self.0.join("; ")
            ))),
        }
    }
}

/// A parsed JSON request whose members are read with their constraints.
#[derive(Debug)]
pub struct Req {
    map: Map<String, Value>,
    pub violations: Violations,
}

impl Req {
    pub fn parse(body: &[u8]) -> ApiResult<Self> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::from_map(Map::new()));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Self::from_map(map)),
            Ok(_) => Err(ApiError::serialization(
                "Start of structure or map found where not expected.",
            )),
            Err(e) => Err(ApiError::serialization(format!("Invalid JSON: {e}"))),
        }
    }

    pub fn from_map(map: Map<String, Value>) -> Self {
        Self {
            map,
            violations: Violations::default(),
        }
    }

    /// The raw request, used to compare ClientToken retries.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.map
    }

    fn get(&self, name: &str) -> Option<&Value> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn required_missing(&mut self, name: &str) {
        self.violations
            .push(None, &lower_camel(name), "Member must not be null");
    }

    pub fn opt_str(&mut self, name: &str, rule: Str) -> ApiResult<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => {
                let s = s.clone();
                self.violations.check_str(&lower_camel(name), &s, rule);
                Ok(Some(s))
            }
            Some(_) => Err(json_type_error(name, "string")),
        }
    }

    /// A required string; when it is missing the violation is recorded and "" returned.
    pub fn req_str(&mut self, name: &str, rule: Str) -> ApiResult<String> {
        match self.opt_str(name, rule)? {
            Some(s) => Ok(s),
            None => {
                self.required_missing(name);
                Ok(String::new())
            }
        }
    }

    pub fn opt_enum(&mut self, name: &str, allowed: &[&str]) -> ApiResult<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => {
                let s = s.clone();
                self.violations.check_enum(&lower_camel(name), &s, allowed);
                Ok(Some(s))
            }
            Some(_) => Err(json_type_error(name, "string")),
        }
    }

    pub fn req_enum(&mut self, name: &str, allowed: &[&str]) -> ApiResult<String> {
        match self.opt_enum(name, allowed)? {
            Some(s) => Ok(s),
            None => {
                self.required_missing(name);
                Ok(String::new())
            }
        }
    }

    pub fn opt_int(&mut self, name: &str, min: i64, max: i64) -> ApiResult<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                let v = n.as_i64().ok_or_else(|| json_type_error(name, "integer"))?;
                self.violations.check_range(&lower_camel(name), v, min, max);
                Ok(Some(v))
            }
            Some(_) => Err(json_type_error(name, "integer")),
        }
    }

    pub fn req_int(&mut self, name: &str, min: i64, max: i64) -> ApiResult<i64> {
        match self.opt_int(name, min, max)? {
            Some(v) => Ok(v),
            None => {
                self.required_missing(name);
                Ok(min)
            }
        }
    }

    /// A timestamp: AWS JSON 1.1 sends epoch seconds, possibly fractional.
    pub fn opt_timestamp(&mut self, name: &str) -> ApiResult<Option<f64>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .map(Some)
                .ok_or_else(|| json_type_error(name, "timestamp")),
            Some(_) => Err(json_type_error(name, "timestamp")),
        }
    }

    pub fn opt_bool(&mut self, name: &str) -> ApiResult<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(json_type_error(name, "boolean")),
        }
    }

    pub fn req_bool(&mut self, name: &str) -> ApiResult<bool> {
        match self.opt_bool(name)? {
            Some(b) => Ok(b),
            None => {
                self.required_missing(name);
                Ok(false)
            }
        }
    }

    /// A list of strings with a documented item count and per-item constraint.
    pub fn opt_str_list(
        &mut self,
        name: &str,
        min: usize,
        max: usize,
        item: Str,
    ) -> ApiResult<Option<Vec<String>>> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let Value::Array(items) = v else {
            return Err(json_type_error(name, "list"));
        };
        let mut out = Vec::with_capacity(items.len());
        for it in items {
            match it {
                Value::String(s) => out.push(s.clone()),
                _ => return Err(json_type_error(name, "string")),
            }
        }
        let path = lower_camel(name);
        self.violations.check_count(&path, out.len(), min, max);
        for (i, s) in out.iter().enumerate() {
            self.violations
                .check_str(&format!("{path}.{}.member", i + 1), s, item);
        }
        Ok(Some(out))
    }

    /// A structure or list kept as JSON; its shape is checked by the caller.
    pub fn opt_value(&mut self, name: &str) -> Option<Value> {
        self.get(name).cloned()
    }

    pub fn opt_object(&mut self, name: &str) -> ApiResult<Option<Map<String, Value>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m.clone())),
            Some(_) => Err(json_type_error(name, "structure")),
        }
    }

    pub fn opt_list(&mut self, name: &str) -> ApiResult<Option<Vec<Value>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a.clone())),
            Some(_) => Err(json_type_error(name, "list")),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Ends reading: all recorded violations become one ValidationException.
    pub fn finish(&mut self) -> ApiResult<()> {
        std::mem::take(&mut self.violations).into_result()
    }
}

/// Reads a string member of a nested structure (wrong type is a SerializationException).
pub fn nested_str<'a>(obj: &'a Map<String, Value>, name: &str) -> ApiResult<Option<&'a str>> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(json_type_error(name, "string")),
    }
}

pub fn nested_list<'a>(obj: &'a Map<String, Value>, name: &str) -> ApiResult<&'a [Value]> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(json_type_error(name, "list")),
    }
}

pub fn as_object<'a>(v: &'a Value, what: &str) -> ApiResult<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| json_type_error(what, "structure"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_violation_like_aws() {
        let mut req = Req::parse(br#"{"Name":"a b","Duration":30}"#).expect("valid json");
        req.req_str("Name", WINDOW_NAME).expect("string");
        req.req_int("Duration", 1, 24).expect("int");
        req.req_bool("AllowUnassociatedTargets").expect("bool");
        let err = req.finish().expect_err("three violations");
        assert_eq!(err.code, "ValidationException");
        assert!(err.message.starts_with("3 validation errors detected: "));
        assert!(err.message.contains("Value 'a b' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern"));
        assert!(err.message.contains("Value '30' at 'duration' failed to satisfy constraint: Member must have value less than or equal to 24"));
        assert!(err.message.contains("Value null at 'allowUnassociatedTargets' failed to satisfy constraint: Member must not be null"));
    }

    #[test]
    fn wrong_type_is_a_serialization_error() {
        let mut req = Req::parse(br#"{"Name":5}"#).expect("valid json");
        let err = req
            .opt_str("Name", WINDOW_NAME)
            .expect_err("number is not a string");
        assert_eq!(err.code, "SerializationException");
    }
}
