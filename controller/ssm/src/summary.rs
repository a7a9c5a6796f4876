//! Operations in a few words, for reports, logs and events.

use std::fmt;

use patchfleet_planner::model::{ObjectRef, Operation};

/// A one-line description of an operation, for reports and events.
pub struct Summary<'a>(pub &'a Operation);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = |r: &ObjectRef| match r {
            ObjectRef::Id(id) => id.clone(),
            ObjectRef::Created(name) => name.clone(),
        };
        match self.0 {
            Operation::CreateBaseline { baseline, .. } => {
                write!(f, "CreateBaseline {}", baseline.name)
            }
            Operation::UpdateBaseline { id, baseline, .. } => {
                write!(f, "UpdateBaseline {} ({id})", baseline.name)
            }
            Operation::DeleteBaseline { id, name } => write!(f, "DeleteBaseline {name} ({id})"),
            Operation::RegisterPatchGroup {
                baseline,
                patch_group,
            } => write!(f, "RegisterPatchGroup {patch_group} to {}", r(baseline)),
            Operation::DeregisterPatchGroup {
                baseline_id,
                patch_group,
            } => write!(f, "DeregisterPatchGroup {patch_group} from {baseline_id}"),
            Operation::CreateWindow { window, .. } => write!(f, "CreateWindow {}", window.name),
            Operation::UpdateWindow { id, window, .. } => {
                write!(f, "UpdateWindow {} ({id})", window.name)
            }
            Operation::DeleteWindow { id, name } => write!(f, "DeleteWindow {name} ({id})"),
            Operation::RegisterTarget { window, name, .. } => {
                write!(f, "RegisterTarget {name} with {}", r(window))
            }
            Operation::UpdateTarget {
                window_id,
                target_id,
                name,
                ..
            } => write!(f, "UpdateTarget {name} ({target_id}) of {window_id}"),
            Operation::DeregisterTarget {
                window_id,
                target_id,
            } => write!(f, "DeregisterTarget {target_id} from {window_id}"),
            Operation::RegisterTask { window, name, .. } => {
                write!(f, "RegisterTask {name} with {}", r(window))
            }
            Operation::UpdateTask {
                window_id,
                task_id,
                name,
                ..
            } => write!(f, "UpdateTask {name} ({task_id}) of {window_id}"),
            Operation::DeregisterTask { window_id, task_id } => {
                write!(f, "DeregisterTask {task_id} from {window_id}")
            }
            Operation::RegisterDefaultBaseline {
                baseline,
                operating_system,
            } => write!(
                f,
                "RegisterDefaultBaseline {} for {}",
                r(baseline),
                operating_system.as_str()
            ),
            Operation::RestoreDefaultBaseline {
                operating_system,
                replacing,
            } => write!(
                f,
                "RestoreDefaultBaseline {} (replacing {replacing})",
                operating_system.as_str()
            ),
            Operation::ReleaseBaseline { id } => write!(f, "ReleaseBaseline {id}"),
            Operation::ReleaseWindow { id } => write!(f, "ReleaseWindow {id}"),
        }
    }
}
