//! An SSM Agent registering with a hybrid activation, as `amazon-ssm-agent -register
//! -code C -id I -region R` does: `POST /_sim/register` and [`register`].
//!
//! The node joins the fleet of the account-region holding the activation, like a node of
//! `PUT /_sim/instances` (without replacing the others), with an `mi-` id, the
//! activation's IAM role, DefaultInstanceName and tags: "When you specify the activation ID
//! and code, tags assigned to the activation are automatically applied to the on-premises
//! servers or VMs."
//! (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateActivation.html,
//! the Tags parameter)

use serde::{Deserialize, Serialize};

use crate::Sim;
use crate::fleet::{InstanceSpec, PatchSpec, check_region};
use crate::ops::{self, Ctx};
use crate::state;
use crate::validate::Str;

/// The body of `POST /_sim/register`: the activation and what the node reports of itself,
/// the optional node fields of [`InstanceSpec`] (same names and defaults) except those the
/// registration decides: the id, the tags, the activation and the registration date.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterRequest {
    pub activation_id: String,
    pub activation_code: String,
    /// The region the agent registers in (`-region`).
    pub region: String,
    #[serde(default)]
    pub missing_patches: u64,
    #[serde(default)]
    pub patches: Vec<PatchSpec>,
    #[serde(default)]
    pub fails_install: bool,
    #[serde(default)]
    pub pending_reboot: bool,
    #[serde(default)]
    pub platform_type: Option<String>,
    #[serde(default)]
    pub platform_name: Option<String>,
    #[serde(default)]
    pub platform_version: Option<String>,
    #[serde(default)]
    pub operating_system: Option<String>,
    #[serde(default)]
    pub ping_status: Option<String>,
    #[serde(default)]
    pub agent_version: Option<String>,
    #[serde(default)]
    pub latest_agent: Option<bool>,
    /// Default AWS::SSM::ManagedInstance.
    #[serde(default)]
    pub source_type: Option<String>,
    #[serde(default)]
    pub computer_name: Option<String>,
    #[serde(default)]
    pub ip_address: Option<String>,
}

/// The answer: the new node and where it lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    pub instance_id: String,
    pub account_id: String,
    pub region: String,
}

/// Why a registration was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// The body or a node field is invalid.
    #[error("{0}")]
    InvalidRequest(String),
    /// The activation id is not an activation id (a UUID).
    #[error("The activation ID {0} isn't valid.")]
    InvalidActivationId(String),
    /// No activation with that id in that region (never created, deleted, or elsewhere).
    #[error("Activation {id} does not exist in {region}. The activation might have been deleted.")]
    NotFound { id: String, region: String },
    /// "The ActivationId and the ActivationCode don't match."
    #[error("The activation code doesn't match activation {0}.")]
    WrongCode(String),
    #[error("Activation {0} has expired.")]
    Expired(String),
    #[error("Activation {id} has reached its registration limit of {limit}.")]
    LimitReached { id: String, limit: i64 },
}

impl RegisterError {
    /// The error code answered. InvalidActivationId and InvalidActivation are SSM's
    /// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteActivation.html#API_DeleteActivation_Errors);
    /// the agent logs `ActivationExpired` for an expired one
    /// (https://github.com/aws/amazon-ssm-agent/issues/134). No source names the code for
    /// a used-up activation: ActivationLimitExceeded is the simulator's.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "InvalidRequest",
            Self::InvalidActivationId(_) => "InvalidActivationId",
            Self::NotFound { .. } | Self::WrongCode(_) => "InvalidActivation",
            Self::Expired(_) => "ActivationExpired",
            Self::LimitReached { .. } => "ActivationLimitExceeded",
        }
    }
}

impl RegisterRequest {
    /// The node as `PUT /_sim/instances` would describe it.
    fn instance_spec(&self, instance_id: String) -> InstanceSpec {
        InstanceSpec {
            instance_id,
            tags: Default::default(),
            missing_patches: self.missing_patches,
            patches: self.patches.clone(),
            fails_install: self.fails_install,
            pending_reboot: self.pending_reboot,
            platform_type: self.platform_type.clone(),
            platform_name: self.platform_name.clone(),
            platform_version: self.platform_version.clone(),
            operating_system: self.operating_system.clone(),
            ping_status: self.ping_status.clone(),
            agent_version: self.agent_version.clone(),
            latest_agent: self.latest_agent,
            source_type: self.source_type.clone(),
            registered: None,
            activation_id: Some(self.activation_id.clone()),
            computer_name: self.computer_name.clone(),
            ip_address: self.ip_address.clone(),
        }
    }
}

fn valid(rule: Str, value: &str) -> bool {
    rule.pattern
        .is_some_and(|p| crate::validate::matches(p, value))
}

/// The account whose state in `region` holds the activation (ids are unique, so at most one).
fn holder(sim: &Sim, region: &str, id: &str) -> Option<String> {
    sim.store
        .regions()
        .into_iter()
        .filter(|(_, r, _)| r == region)
        .find(|(_, _, shard)| state::lock(shard).activations.contains_key(id))
        .map(|(account, _, _)| account)
}

/// Registers a node with an activation: checks the code, the expiration (simulated clock)
/// and the registration limit, then adds an `mi-` node to the activation's account-region.
pub fn register(sim: &Sim, request: RegisterRequest) -> Result<Registered, RegisterError> {
    check_region(&request.region).map_err(RegisterError::InvalidRequest)?;
    request
        .instance_spec("mi-(registering)".into())
        .validate_info()
        .map_err(RegisterError::InvalidRequest)?;
    let id = &request.activation_id;
    if !valid(ops::activations::ACTIVATION_ID, id) {
        return Err(RegisterError::InvalidActivationId(id.clone()));
    }
    let not_found = || RegisterError::NotFound {
        id: id.clone(),
        region: request.region.clone(),
    };
    let account = holder(sim, &request.region, id).ok_or_else(not_found)?;
    let shard = sim.store.region(&account, &request.region);
    let mut st = state::lock(&shard);
    let ctx = Ctx {
        account: &account,
        region: &request.region,
        quotas: sim.config.quotas,
        now: sim.clock.now(),
        command_seconds: sim.settings.get().command_seconds,
    };
    // Windows that came due before the node existed run without it.
    ops::maintenance::run_due(&ctx, &mut st);
    // Looked up again under the lock: it may have been deleted meanwhile.
    let activation = st.activations.get(id).ok_or_else(not_found)?;
    if activation.code != request.activation_code {
        return Err(RegisterError::WrongCode(id.clone()));
    }
    if activation.expired(ctx.now) {
        return Err(RegisterError::Expired(id.clone()));
    }
    if activation.registrations_count >= activation.registration_limit {
        return Err(RegisterError::LimitReached {
            id: id.clone(),
            limit: activation.registration_limit,
        });
    }
    let instance_id = loop {
        let candidate = crate::clock::short_id("mi");
        if !st.instances.contains_key(&candidate) {
            break candidate;
        }
    };
    let mut spec = request.instance_spec(instance_id.clone());
    spec.tags = activation.tags.clone();
    let mut info = spec.info(ctx.now);
    info.iam_role = Some(activation.iam_role.clone());
    info.name = activation.default_instance_name.clone();
    let node = spec.instance(info, ctx.now);
    st.instances.insert(instance_id.clone(), node);
    if let Some(a) = st.activations.get_mut(id) {
        a.registrations_count += 1;
    }
    Ok(Registered {
        instance_id,
        account_id: account,
        region: request.region,
    })
}
