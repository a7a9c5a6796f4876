//! Simulator settings that tests change at runtime (`/_sim/settings`), like the faults.

use std::sync::RwLock;

use serde::{Deserialize, Serialize};

/// Longest `command_seconds` accepted: one day.
const MAX_COMMAND_SECONDS: f64 = 86_400.0;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Seconds a Run Command invocation stays Pending/InProgress after SendCommand
    /// before it reaches its terminal status (fractions allowed; 0 completes at once).
    #[serde(alias = "commandSeconds")]
    pub command_seconds: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            command_seconds: 2.0,
        }
    }
}

impl Settings {
    pub fn validate(&self) -> Result<(), String> {
        let s = self.command_seconds;
        if !s.is_finite() || !(0.0..=MAX_COMMAND_SECONDS).contains(&s) {
            return Err(format!(
                "command_seconds must be within 0 and {MAX_COMMAND_SECONDS}, got {s}"
            ));
        }
        Ok(())
    }
}

/// The settings in force, replaced as a whole.
#[derive(Debug, Default)]
pub struct LiveSettings(RwLock<Settings>);

impl LiveSettings {
    pub fn new(settings: Settings) -> Self {
        Self(RwLock::new(settings))
    }

    pub fn get(&self) -> Settings {
        *self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn set(&self, settings: Settings) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = settings;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_spellings_and_rejects_bad_values() {
        let s: Settings = serde_json::from_str(r#"{"command_seconds": 0.5}"#).expect("snake");
        assert_eq!(s.command_seconds, 0.5);
        let s: Settings = serde_json::from_str(r#"{"commandSeconds": 3}"#).expect("camel");
        assert_eq!(s.command_seconds, 3.0);
        assert_eq!(
            serde_json::from_str::<Settings>("{}")
                .expect("empty")
                .command_seconds,
            2.0
        );
        assert!(serde_json::from_str::<Settings>(r#"{"seconds": 1}"#).is_err());
        assert!(
            Settings {
                command_seconds: -1.0
            }
            .validate()
            .is_err()
        );
    }
}
