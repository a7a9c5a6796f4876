//! The simulated fleet: managed nodes per account and region, set and read through
//! `/_sim/instances`, joined by nodes registering with an activation
//! (`crate::registration`). Run Command of AWS-RunPatchBaseline acts on them (see
//! `ops::commands`); AddTagsToResource on `mi-` nodes changes their tags.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::Sim;
use crate::config::Quotas;
use crate::ops::commands::invocation_status;
use crate::patching::{NodePatch, Patch};
use crate::state::{self, Instance, NodeInfo, RegionState, Tags};
use crate::validate::{Str, TAG_KEY, TAG_VALUE, matches};

pub use crate::registration::{RegisterError, RegisterRequest, Registered, register};

/// EC2 instance ids (`i-` and 8 or 17 hex digits) and hybrid managed node ids (`mi-` and 17).
/// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/resource-ids.html
pub const INSTANCE_ID: &str = r"^(i-([0-9a-f]{8}|[0-9a-f]{17})|mi-[0-9a-f]{17})$";
const ACCOUNT_ID: &str = r"^[0-9]{12}$";
const REGION: &str = r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$";

/// The body of `PUT /_sim/instances`: the whole fleet of one account-region.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetSpec {
    pub account_id: String,
    pub region: String,
    pub instances: Vec<InstanceSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceSpec {
    pub instance_id: String,
    #[serde(default)]
    pub tags: Tags,
    /// Patches the node lacks, described no further: as many critical security updates
    /// released 400 days ago (approved by any baseline approving those), added to
    /// `patches`.
    #[serde(default)]
    pub missing_patches: u64,
    /// The patches available to the node, installed or not.
    #[serde(default)]
    pub patches: Vec<PatchSpec>,
    /// Every Install on the node fails.
    #[serde(default)]
    pub fails_install: bool,
    /// Patches already installed and waiting for a reboot.
    #[serde(default)]
    pub pending_reboot: bool,
    /// What DescribeInstanceInformation reports of the node (every field below has a
    /// default): Windows, Linux (default) or MacOS.
    #[serde(default)]
    pub platform_type: Option<String>,
    /// Default by type: Amazon Linux, Microsoft Windows Server 2022 Datacenter, macOS.
    #[serde(default)]
    pub platform_name: Option<String>,
    #[serde(default)]
    pub platform_version: Option<String>,
    /// The Patch Manager operating system whose baseline applies (default by type:
    /// AMAZON_LINUX_2, WINDOWS, MACOS).
    #[serde(default)]
    pub operating_system: Option<String>,
    /// Online (default) or ConnectionLost.
    #[serde(default)]
    pub ping_status: Option<String>,
    /// Default: the simulator's latest, `LATEST_AGENT`.
    #[serde(default)]
    pub agent_version: Option<String>,
    /// Whether `agentVersion` is the latest (default: it is when it equals `LATEST_AGENT`).
    #[serde(default)]
    pub latest_agent: Option<bool>,
    /// Where the node runs, as SSM's SourceType: default AWS::EC2::Instance for `i-`,
    /// AWS::SSM::ManagedInstance for `mi-`; Microsoft.Compute/virtualMachines or
    /// compute.googleapis.com/Instance for Azure and Google Cloud VMs.
    #[serde(default)]
    pub source_type: Option<String>,
    /// Seconds since the epoch (default: when the fleet was put).
    #[serde(default)]
    pub registered: Option<f64>,
    /// Hybrid nodes: the activation they registered with (default: one derived from the id).
    #[serde(default)]
    pub activation_id: Option<String>,
    #[serde(default)]
    pub computer_name: Option<String>,
    #[serde(default)]
    pub ip_address: Option<String>,
}

/// One patch available to a node.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchSpec {
    /// The title (Windows) or package name (Linux).
    pub title: String,
    #[serde(default)]
    pub kb_id: Option<String>,
    /// CLASSIFICATION: SecurityUpdates, CriticalUpdates, Updates, ... (Windows); Security,
    /// Bugfix, Enhancement, ... (Linux).
    pub classification: String,
    /// MSRC_SEVERITY (Windows) or SEVERITY (Linux): Critical, Important, Moderate, Low.
    pub severity: String,
    /// YYYY-MM-DD.
    pub release_date: String,
    #[serde(default)]
    pub cve_ids: Vec<String>,
    /// Already on the node.
    #[serde(default)]
    pub installed: bool,
}

const DATE: &str = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";

/// The SSM Agent version the simulator calls the latest.
pub const LATEST_AGENT: &str = "3.3.1142.0";
const PLATFORM_TYPES: &[&str] = &["Windows", "Linux", "MacOS"];
const PING_STATUSES: &[&str] = &["Online", "ConnectionLost"];
const SOURCE_TYPES: &[&str] = &[
    "AWS::EC2::Instance",
    "AWS::IoT::Thing",
    "AWS::SSM::ManagedInstance",
    "Microsoft.Compute/virtualMachines",
    "compute.googleapis.com/Instance",
];
/// InstanceInformation.AgentVersion.
const AGENT_VERSION: &str = r"^[0-9]{1,6}(\.[0-9]{1,6}){2,3}$";

impl InstanceSpec {
    pub(crate) fn validate_info(&self) -> Result<(), String> {
        let id = &self.instance_id;
        let one_of = |field: &str, value: &Option<String>, allowed: &[&str]| match value {
            Some(v) if !allowed.contains(&v.as_str()) => Err(format!(
                "instance {id}: {field} {v:?} is not one of {}",
                allowed.join(", ")
            )),
            _ => Ok(()),
        };
        one_of("platformType", &self.platform_type, PLATFORM_TYPES)?;
        one_of("pingStatus", &self.ping_status, PING_STATUSES)?;
        one_of("sourceType", &self.source_type, SOURCE_TYPES)?;
        one_of(
            "operatingSystem",
            &self.operating_system,
            crate::validate::OPERATING_SYSTEMS,
        )?;
        if let Some(v) = &self.agent_version
            && !matches(AGENT_VERSION, v)
        {
            return Err(format!(
                "instance {id}: agentVersion {v:?} is not a version such as 3.3.1142.0"
            ));
        }
        for p in &self.patches {
            if p.title.is_empty() || p.classification.is_empty() || p.severity.is_empty() {
                return Err(format!(
                    "instance {id}: a patch needs a title, a classification and a severity"
                ));
            }
            if !matches(DATE, &p.release_date) {
                return Err(format!(
                    "instance {id}: patch {:?} releaseDate {:?} is not YYYY-MM-DD",
                    p.title, p.release_date
                ));
            }
        }
        if self.activation_id.is_some() && !id.starts_with("mi-") {
            return Err(format!(
                "instance {id}: only hybrid nodes (mi-) have an activationId"
            ));
        }
        Ok(())
    }

    /// The node's patches: those listed, then `missingPatches` more.
    pub fn node_patches(&self, os: &str, now: f64) -> Vec<NodePatch> {
        let listed = self.patches.iter().map(|p| NodePatch {
            patch: Patch {
                title: p.title.clone(),
                kb_id: p.kb_id.clone(),
                classification: p.classification.clone(),
                severity: p.severity.clone(),
                released: crate::patching::start_of_day(&p.release_date).unwrap_or(now),
                cve_ids: p.cve_ids.clone(),
            },
            installed_at: p.installed.then_some(now),
            pending_reboot: false,
            failed: false,
        });
        let windows = os == "WINDOWS";
        let unnamed = (0..self.missing_patches).map(|i| NodePatch {
            patch: Patch {
                title: if windows {
                    format!("KB{}", 5_000_000 + i)
                } else {
                    format!("security-update-{i}")
                },
                kb_id: windows.then(|| format!("KB{}", 5_000_000 + i)),
                classification: if windows {
                    "SecurityUpdates"
                } else {
                    "Security"
                }
                .into(),
                severity: "Critical".into(),
                released: now - 400.0 * 86_400.0,
                cve_ids: Vec::new(),
            },
            installed_at: None,
            pending_reboot: false,
            failed: false,
        });
        listed.chain(unnamed).collect()
    }

    /// The node's facts, defaults filled in, registered at `now` unless told.
    pub fn info(&self, now: f64) -> NodeInfo {
        let id = &self.instance_id;
        let hybrid = id.starts_with("mi-");
        let platform_type = self.platform_type.clone().unwrap_or_else(|| "Linux".into());
        let (name, version, os) = match platform_type.as_str() {
            "Windows" => (
                "Microsoft Windows Server 2022 Datacenter",
                "10.0.20348",
                "WINDOWS",
            ),
            "MacOS" => ("macOS", "14.0", "MACOS"),
            _ => ("Amazon Linux", "2", "AMAZON_LINUX_2"),
        };
        let agent_version = self
            .agent_version
            .clone()
            .unwrap_or_else(|| LATEST_AGENT.into());
        let seed = crate::clock::splitmix64(
            id.bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))),
        );
        let registered = self.registered.unwrap_or(now);
        NodeInfo {
            platform_name: self.platform_name.clone().unwrap_or_else(|| name.into()),
            platform_version: self
                .platform_version
                .clone()
                .unwrap_or_else(|| version.into()),
            operating_system: self.operating_system.clone().unwrap_or_else(|| os.into()),
            ping_status: self.ping_status.clone().unwrap_or_else(|| "Online".into()),
            latest_agent: self.latest_agent.unwrap_or(agent_version == LATEST_AGENT),
            agent_version,
            source_type: self.source_type.clone().unwrap_or_else(|| {
                if hybrid {
                    "AWS::SSM::ManagedInstance".into()
                } else {
                    "AWS::EC2::Instance".into()
                }
            }),
            registered,
            last_ping: registered.max(now),
            activation_id: self.activation_id.clone().or_else(|| {
                hybrid.then(|| {
                    let h = format!("{seed:016x}{:016x}", crate::clock::splitmix64(seed));
                    format!(
                        "{}-{}-{}-{}-{}",
                        &h[0..8],
                        &h[8..12],
                        &h[12..16],
                        &h[16..20],
                        &h[20..32]
                    )
                })
            }),
            iam_role: hybrid.then(|| "SSMServiceRole".into()),
            name: None,
            computer_name: self
                .computer_name
                .clone()
                .unwrap_or_else(|| format!("{id}.localdomain")),
            ip_address: self.ip_address.clone().unwrap_or_else(|| {
                format!(
                    "10.{}.{}.{}",
                    (seed >> 16) & 0xff,
                    (seed >> 8) & 0xff,
                    seed & 0xff
                )
            }),
            platform_type,
        }
    }

    /// The node as stored, with the facts `info` (from [`InstanceSpec::info`], possibly
    /// amended by the caller).
    pub(crate) fn instance(&self, info: NodeInfo, now: f64) -> Instance {
        Instance {
            patches: self.node_patches(&info.operating_system, now),
            info,
            tags: self.tags.clone(),
            fails_install: self.fails_install,
            pending_reboot: self.pending_reboot,
            ..Instance::default()
        }
    }
}

fn check(rule: Str, value: &str) -> bool {
    let n = value.chars().count();
    n >= rule.min && n <= rule.max && rule.pattern.is_none_or(|p| matches(p, value))
}

/// Checks the account and region named by a control request.
pub fn check_scope(account: &str, region: &str) -> Result<(), String> {
    if !matches(ACCOUNT_ID, account) {
        return Err(format!("accountId must be 12 digits, got {account:?}"));
    }
    check_region(region)
}

/// Checks a region named by a control request.
pub fn check_region(region: &str) -> Result<(), String> {
    if !matches(REGION, region) {
        return Err(format!(
            "region must be an AWS region name such as eu-west-1, got {region:?}"
        ));
    }
    Ok(())
}

impl FleetSpec {
    pub fn validate(&self, quotas: &Quotas) -> Result<(), String> {
        check_scope(&self.account_id, &self.region)?;
        let mut seen = BTreeSet::new();
        for i in &self.instances {
            let id = &i.instance_id;
            if !matches(INSTANCE_ID, id) {
                return Err(format!(
                    "instanceId {id:?} is not an instance id: i- and 8 or 17 lowercase hex digits (EC2), or mi- and 17 (hybrid node)"
                ));
            }
            if !seen.insert(id.as_str()) {
                return Err(format!("instanceId {id} is listed twice"));
            }
            if i.tags.len() > quotas.tags_per_resource {
                return Err(format!(
                    "instance {id} has {} tags; at most {} are allowed",
                    i.tags.len(),
                    quotas.tags_per_resource
                ));
            }
            i.validate_info()?;
            for (k, v) in &i.tags {
                if !check(TAG_KEY, k) || !check(TAG_VALUE, v) {
                    return Err(format!(
                        "instance {id}: tag {k:?}={v:?} is not a valid tag (key 1-128, value 0-256 characters of letters, digits, spaces and _.:/=+-@)"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Replaces the fleet of the spec's account-region (history included).
pub fn apply(sim: &Sim, spec: &FleetSpec) {
    let shard = sim.store.region(&spec.account_id, &spec.region);
    let now = sim.clock.now();
    let mut st = state::lock(&shard);
    st.instances = spec
        .instances
        .iter()
        .map(|i| (i.instance_id.clone(), i.instance(i.info(now), now)))
        .collect();
}

/// The fleet of an account-region and what the commands did to it, at `now`.
pub fn view(st: &RegionState, account: &str, region: &str, now: f64) -> Value {
    let instances: Vec<Value> = st
        .instances
        .iter()
        .map(|(id, i)| {
            let runs: Vec<Value> = i
                .runs
                .iter()
                .filter_map(|command_id| {
                    let c = st.command(command_id)?;
                    let inv = c.invocations.iter().find(|inv| inv.instance_id == *id)?;
                    let (_, details) = invocation_status(c, inv, now);
                    Some(json!({
                        "commandId": c.id,
                        "operation": c.operation,
                        "rebootOption": c.reboot_option,
                        "status": details,
                        "installed": inv.installed,
                        "rebooted": inv.rebooted,
                    }))
                })
                .collect();
            json!({
                "instanceId": id,
                "platformType": i.info.platform_type,
                "platformName": i.info.platform_name,
                "platformVersion": i.info.platform_version,
                "operatingSystem": i.info.operating_system,
                "pingStatus": i.info.ping_status,
                "agentVersion": i.info.agent_version,
                "latestAgent": i.info.latest_agent,
                "sourceType": i.info.source_type,
                "activationId": i.info.activation_id,
                "tags": i.tags,
                "missingPatches": i.patches.iter().filter(|p| p.installed_at.is_none()).count(),
                "failsInstall": i.fails_install,
                "pendingReboot": i.pending_reboot || i.patches.iter().any(|p| p.pending_reboot),
                "installedPatches": i.installed_patches,
                "reboots": i.reboots,
                "runs": runs,
            })
        })
        .collect();
    json!({"accountId": account, "region": region, "instances": instances})
}

/// Tags from pairs, for specs built in Rust.
pub fn tags<const N: usize>(pairs: [(&str, &str); N]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str) -> FleetSpec {
        FleetSpec {
            account_id: "111111111111".into(),
            region: "eu-west-1".into(),
            instances: vec![InstanceSpec {
                instance_id: id.into(),
                tags: tags([("Patch Group", "early")]),
                missing_patches: 3,
                fails_install: false,
                pending_reboot: false,
                ..InstanceSpec::default()
            }],
        }
    }

    #[test]
    fn validates_ids_like_aws() {
        let q = Quotas::default();
        assert!(spec("i-0123456789abcdef0").validate(&q).is_ok());
        assert!(spec("i-0123abcd").validate(&q).is_ok());
        assert!(spec("mi-0123456789abcdef0").validate(&q).is_ok());
        for bad in [
            "i-0123456789ABCDEF0",
            "i-123",
            "mi-0123abcd",
            "server-1",
            "",
        ] {
            assert!(spec(bad).validate(&q).is_err(), "{bad}");
        }
        let mut twice = spec("i-0123abcd");
        twice.instances.push(twice.instances[0].clone());
        assert!(twice.validate(&q).is_err());
        let mut bad_account = spec("i-0123abcd");
        bad_account.account_id = "1111".into();
        assert!(bad_account.validate(&q).is_err());
        let body = r#"{"accountId":"111111111111","region":"eu-west-1","instances":[{"instanceId":"i-0123456789abcdef0","tags":{"Patch Group":"early"},"missingPatches":3,"failsInstall":false}]}"#;
        let parsed: FleetSpec = serde_json::from_str(body).expect("documented body parses");
        assert_eq!(parsed.instances[0].missing_patches, 3);
        assert!(
            serde_json::from_str::<FleetSpec>(
                r#"{"accountId":"1","region":"r","instances":[{"instanceId":"i-1","missing":1}]}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<FleetSpec>(r#"{"accountId":"1","region":"r","instances":[{"instanceId":"i-1","missingPatches":-1}]}"#).is_err());
    }
}
