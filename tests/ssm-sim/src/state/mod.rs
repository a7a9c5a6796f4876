//! Stored SSM objects, kept apart per account and region, each behind its own lock.

mod model;

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

pub use model::*;
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::predefined;

/// Everything one account holds in one region.
#[derive(Debug)]
pub struct RegionState {
    /// AWS's predefined baselines, shared by every account in the region.
    pub predefined: Arc<[Baseline]>,
    // Boxed: a B-tree node holds 11 values, so unboxed ones made small maps large.
    pub baselines: BTreeMap<String, Box<Baseline>>,
    /// Operating system → baseline registered with RegisterDefaultPatchBaseline.
    pub default_baselines: HashMap<String, String>,
    /// Patch group → operating system → baseline id.
    pub patch_groups: BTreeMap<String, BTreeMap<String, String>>,
    pub windows: BTreeMap<String, Box<Window>>,
    /// The simulated managed nodes by instance id (set through `/_sim/instances`;
    /// tags of `mi-` nodes also through AddTagsToResource).
    pub instances: BTreeMap<String, Instance>,
    /// Hybrid activations by id (`ops::activations`).
    pub activations: BTreeMap<String, Box<Activation>>,
    /// Commands keyed so that iteration is newest first (see `command_key`).
    pub commands: BTreeMap<String, Box<Command>>,
    /// Command id → key in `commands`.
    pub command_keys: HashMap<String, String>,
    command_seq: u64,
    client_tokens: HashMap<(&'static str, String), (u64, String)>,
}

impl RegionState {
    fn new(predefined: Arc<[Baseline]>) -> Self {
        Self {
            predefined,
            baselines: BTreeMap::new(),
            default_baselines: HashMap::new(),
            patch_groups: BTreeMap::new(),
            windows: BTreeMap::new(),
            instances: BTreeMap::new(),
            activations: BTreeMap::new(),
            commands: BTreeMap::new(),
            command_keys: HashMap::new(),
            command_seq: 0,
            client_tokens: HashMap::new(),
        }
    }

    /// Stores a command so that listings return the newest first.
    pub fn add_command(&mut self, command: Command) {
        self.command_seq += 1;
        let key = format!("{:020}-{}", u64::MAX - self.command_seq, command.id);
        self.command_keys.insert(command.id.clone(), key.clone());
        self.commands.insert(key, Box::new(command));
    }

    pub fn command(&self, id: &str) -> Option<&Command> {
        self.command_keys
            .get(id)
            .and_then(|k| self.commands.get(k))
            .map(|c| &**c)
    }

    /// A custom or predefined baseline by id.
    pub fn baseline(&self, id: &str) -> Option<&Baseline> {
        self.baselines
            .get(id)
            .map(|b| &**b)
            .or_else(|| self.predefined.iter().find(|b| b.id == id))
    }

    pub fn is_predefined(&self, id: &str) -> bool {
        self.predefined.iter().any(|b| b.id == id)
    }

    /// The default baseline id for an operating system.
    pub fn default_baseline(&self, os: &str) -> Option<String> {
        self.default_baselines.get(os).cloned().or_else(|| {
            self.predefined
                .iter()
                .find(|b| b.operating_system == os && predefined::is_default(&b.name))
                .map(|b| b.id.clone())
        })
    }

    /// ClientToken idempotency: the id created by an earlier identical call, a
    /// mismatch error when the token was used with other parameters, or None.
    /// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreatePatchBaseline.html
    pub fn replayed(
        &self,
        op: &'static str,
        token: Option<&str>,
        request: &Map<String, Value>,
    ) -> ApiResult<Option<String>> {
        let Some(token) = token else { return Ok(None) };
        match self.client_tokens.get(&(op, token.to_string())) {
            None => Ok(None),
            Some((hash, id)) if *hash == request_hash(request) => Ok(Some(id.clone())),
            Some(_) => Err(ApiError::new(
                "IdempotentParameterMismatch",
                "Error returned when an idempotent operation is retried and the parameters don't match the original call to the API with the same idempotency token.",
            )),
        }
    }

    pub fn remember(
        &mut self,
        op: &'static str,
        token: Option<&str>,
        request: &Map<String, Value>,
        id: &str,
    ) {
        if let Some(token) = token {
            self.client_tokens.insert(
                (op, token.to_string()),
                (request_hash(request), id.to_string()),
            );
        }
    }
}

fn request_hash(request: &Map<String, Value>) -> u64 {
    let mut h = DefaultHasher::new();
    // serde_json's Map is ordered by key, so equal requests serialize alike.
    Value::Object(request.clone()).to_string().hash(&mut h);
    h.finish()
}

#[derive(Debug, Default)]
pub struct Store {
    shards: RwLock<HashMap<String, Arc<Mutex<RegionState>>>>,
    predefined: RwLock<HashMap<String, Arc<[Baseline]>>>,
}

impl Store {
    /// The state of one account in one region, created on first use.
    pub fn region(&self, account: &str, region: &str) -> Arc<Mutex<RegionState>> {
        let key = format!("{account}/{region}");
        if let Some(s) = self
            .shards
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return Arc::clone(s);
        }
        let predefined = self.predefined(region);
        Arc::clone(
            self.shards
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(key)
                .or_insert_with(|| Arc::new(Mutex::new(RegionState::new(predefined)))),
        )
    }

    fn predefined(&self, region: &str) -> Arc<[Baseline]> {
        if let Some(p) = self
            .predefined
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(region)
        {
            return Arc::clone(p);
        }
        Arc::clone(
            self.predefined
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(region.to_string())
                .or_insert_with(|| predefined::baselines(region).into()),
        )
    }

    /// Every account-region with state: (account, region, state).
    pub fn regions(&self) -> Vec<(String, String, Arc<Mutex<RegionState>>)> {
        self.shards
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(|(key, s)| {
                let (account, region) = key.split_once('/')?;
                Some((account.to_string(), region.to_string(), Arc::clone(s)))
            })
            .collect()
    }

    pub fn reset(&self) {
        self.shards
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    pub fn scopes(&self) -> usize {
        self.shards
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

/// Locks a region's state; a panic in another request must not wedge the simulator.
pub fn lock(state: &Mutex<RegionState>) -> MutexGuard<'_, RegionState> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
