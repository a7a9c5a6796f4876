//! Where `snapshotBeforePatch` applies. EBS snapshots exist only for EC2 instances; in an
//! account whose platform is not `aws` the instances are hybrid managed nodes, so their
//! task runs AWS-RunPatchBaseline without a snapshot, and the MaintenanceWindow's status
//! says so rather than leaving it silent.

use std::collections::{BTreeMap, BTreeSet};

use patchfleet_api::v1alpha1::{MaintenanceWindow, Strategy};

use crate::inventory::Inventory;
use crate::model::AccountRegion;

/// The condition type on a MaintenanceWindow with a `snapshotBeforePatch` task.
pub const CONDITION: &str = "SnapshotBeforePatch";

/// Whether snapshots are taken everywhere the window patches, and what to tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotNotice {
    /// True when every reached account runs on AWS.
    pub applies: bool,
    /// CamelCase: `Applies` or `NotApplicable`.
    pub reason: &'static str,
    pub message: String,
}

/// None when no task asks for a snapshot (or the window never installs through a window
/// task: Emergency runs are refused a snapshot by the API).
pub fn snapshot_notice(
    inventory: &Inventory,
    window: &MaintenanceWindow,
    reached: &BTreeSet<AccountRegion>,
) -> Option<SnapshotNotice> {
    if window.spec.strategy == Strategy::Emergency {
        return None;
    }
    let tasks: Vec<&str> = window
        .spec
        .tasks
        .iter()
        .filter(|t| t.snapshot_before_patch)
        .map(|t| t.name.as_str())
        .collect();
    if tasks.is_empty() {
        return None;
    }
    let tasks = tasks.join(", ");
    // Account name -> (account id, platform) for the reached accounts without snapshots.
    let mut without: BTreeMap<&str, (&str, &'static str)> = BTreeMap::new();
    for region in reached {
        if let Some(account) = inventory.account(&region.account)
            && !account.spec.platform.supports_snapshots()
        {
            without.insert(
                region.account.as_str(),
                (&account.spec.account_id, account.spec.platform.as_str()),
            );
        }
    }
    if without.is_empty() {
        return Some(SnapshotNotice {
            applies: true,
            reason: "Applies",
            message: format!(
                "task {tasks}: the root volume is snapshotted before patching and restored \
                 on failure (AWS-PatchInstanceWithRollback) in every account"
            ),
        });
    }
    let accounts: Vec<String> = without
        .iter()
        .map(|(name, (id, platform))| format!("{name} ({id}, platform {platform})"))
        .collect();
    Some(SnapshotNotice {
        applies: false,
        reason: "NotApplicable",
        message: format!(
            "snapshots do not apply to hybrid and on-premises instances: task {tasks} \
             patches them with AWS-RunPatchBaseline, without a snapshot, in {}",
            accounts.join(", ")
        ),
    })
}
