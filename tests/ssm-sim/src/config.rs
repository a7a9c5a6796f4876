//! The simulator's configuration: accounts, roles, access keys, quotas and faults.
//!
//! Loaded from an optional JSON file (`--config`); everything has a default so an
//! empty file or none at all gives an open simulator where any key maps to the
//! default account and any role can be assumed.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::faults::FaultSpec;
use crate::settings::Settings;

pub const DEFAULT_ACCOUNT: &str = "123456789012";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The account of any long-term access key not listed in `access_keys`.
    pub default_account: String,
    /// Long-term access key id → account id.
    pub access_keys: HashMap<String, String>,
    /// When non-empty, AssumeRole only succeeds for roles declared here.
    pub accounts: Vec<AccountConfig>,
    pub quotas: Quotas,
    pub faults: FaultSpec,
    /// Runtime settings (`/_sim/settings`), such as how long commands run.
    pub settings: Settings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            default_account: DEFAULT_ACCOUNT.to_string(),
            access_keys: HashMap::new(),
            accounts: Vec::new(),
            quotas: Quotas::default(),
            faults: FaultSpec::default(),
            settings: Settings::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub id: String,
    #[serde(default)]
    pub roles: Vec<RoleConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// The role name, as in `arn:aws:iam::ACCOUNT:role/NAME` (paths allowed: `a/b/NAME`).
    pub name: String,
    /// When set, AssumeRole must pass exactly this ExternalId.
    #[serde(default)]
    pub external_id: Option<String>,
}

/// Per account and region quotas. Defaults are AWS's:
/// https://docs.aws.amazon.com/general/latest/gr/ssm.html#limits_ssm
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    pub patch_baselines: usize,
    pub patch_groups_per_baseline: usize,
    pub maintenance_windows: usize,
    pub targets_per_window: usize,
    pub tasks_per_window: usize,
    pub tags_per_resource: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            patch_baselines: 50,
            patch_groups_per_baseline: 25,
            maintenance_windows: 50,
            targets_per_window: 100,
            tasks_per_window: 20,
            tags_per_resource: 50,
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let config: Self = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?;
        Ok(config)
    }

    /// Whether roles are enforced (the config declares accounts).
    pub fn enforces_roles(&self) -> bool {
        !self.accounts.is_empty()
    }

    pub fn role(&self, account: &str, name: &str) -> Option<&RoleConfig> {
        self.accounts
            .iter()
            .find(|a| a.id == account)?
            .roles
            .iter()
            .find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_config_and_rejects_typos() {
        let text = r#"{
          "default_account": "123456789012",
          "access_keys": { "AKIAHUBEXAMPLE": "111111111111" },
          "accounts": [
            { "id": "222222222222", "roles": [ { "name": "patchfleet", "external_id": "fleet-ext-1" } ] }
          ],
          "quotas": { "patch_baselines": 500 },
          "faults": { "seed": 1, "throttle_rate": 0.1 },
          "settings": { "command_seconds": 5 }
        }"#;
        let config: Config = serde_json::from_str(text).expect("documented config parses");
        assert!(config.enforces_roles());
        assert_eq!(config.settings.command_seconds, 5.0);
        assert_eq!(config.quotas.patch_baselines, 500);
        assert_eq!(
            config.quotas.maintenance_windows, 50,
            "unset quotas keep AWS's defaults"
        );
        assert_eq!(
            config
                .role("222222222222", "patchfleet")
                .and_then(|r| r.external_id.as_deref()),
            Some("fleet-ext-1")
        );
        assert!(serde_json::from_str::<Config>(r#"{"quota": {}}"#).is_err());
        let empty: Config = serde_json::from_str("{}").expect("empty config");
        assert_eq!(empty.default_account, DEFAULT_ACCOUNT);
        assert!(!empty.enforces_roles());
    }
}
