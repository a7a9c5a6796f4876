//! Per-instance detail from SSM, on demand: through the controller's SSM edge (per-account
//! credentials, rate limit, retries), and kept for `--cache-ttl` so that a reload or a
//! second viewer costs no call. Only the routes call it, after the fleet permission held.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use patchfleet_api::v1alpha1::SystemAccount;
use patchfleet_planner::instances::{InstanceDetail, InstanceSummary};
use patchfleet_ssm::instances::{read_group_instances, read_instance};
use patchfleet_ssm::{AccountAccess, EdgeError, SsmEdge};
use tracing::info;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Group {
        account: String,
        region: String,
        group: String,
    },
    Node {
        account: String,
        region: String,
        id: String,
    },
}

#[derive(Clone)]
enum Cached {
    Group(Arc<Vec<InstanceSummary>>),
    Node(Arc<Option<InstanceDetail>>),
}

/// A read and when it was made (RFC 3339).
pub struct Read<T> {
    pub value: T,
    pub read_at: String,
}

pub struct Fleet {
    edge: SsmEdge,
    ttl: Duration,
    cache: Mutex<HashMap<Key, (Instant, String, Cached)>>,
}

/// More entries than this and the expired ones go (each is one page's worth).
const CACHE_ENTRIES: usize = 10_000;

impl Fleet {
    pub fn new(edge: SsmEdge, ttl: Duration) -> Self {
        Fleet {
            edge,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, key: &Key) -> Option<(String, Cached)> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(key)
            .filter(|(at, _, _)| at.elapsed() < self.ttl)
            .map(|(_, read_at, v)| (read_at.clone(), v.clone()))
    }

    fn keep(&self, key: Key, value: Cached) -> String {
        let read_at = Timestamp::now()
            .round(k8s_openapi::jiff::Unit::Second)
            .map_or_else(|_| Timestamp::now().to_string(), |t| t.to_string());
        if self.ttl.is_zero() {
            return read_at;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_ENTRIES {
            let ttl = self.ttl;
            cache.retain(|_, (at, _, _)| at.elapsed() < ttl);
        }
        cache.insert(key, (Instant::now(), read_at.clone(), value));
        read_at
    }

    /// The nodes tagged `group` in the account-region, worst first.
    pub async fn group(
        &self,
        account: &SystemAccount,
        region: &str,
        group: &str,
    ) -> Result<Read<Arc<Vec<InstanceSummary>>>, EdgeError> {
        let key = Key::Group {
            account: account.name_any(),
            region: region.to_owned(),
            group: group.to_owned(),
        };
        if let Some((read_at, Cached::Group(value))) = self.cached(&key) {
            return Ok(Read { value, read_at });
        }
        let access = AccountAccess::from_spec(&account.name_any(), &account.spec);
        let client = self.edge.account(&access).await.client(region);
        let reading = read_group_instances(&client, group, account.spec.platform).await;
        info!(account = %account.name_any(), region, group, calls = reading.calls, "read a group's nodes from SSM");
        let value = Arc::new(reading.reading?);
        let read_at = self.keep(key, Cached::Group(Arc::clone(&value)));
        Ok(Read { value, read_at })
    }

    /// One node and its patches; None when the account-region has no such node.
    pub async fn node(
        &self,
        account: &SystemAccount,
        region: &str,
        id: &str,
    ) -> Result<Read<Arc<Option<InstanceDetail>>>, EdgeError> {
        let key = Key::Node {
            account: account.name_any(),
            region: region.to_owned(),
            id: id.to_owned(),
        };
        if let Some((read_at, Cached::Node(value))) = self.cached(&key) {
            return Ok(Read { value, read_at });
        }
        let access = AccountAccess::from_spec(&account.name_any(), &account.spec);
        let client = self.edge.account(&access).await.client(region);
        let reading = read_instance(&client, id, account.spec.platform).await;
        info!(account = %account.name_any(), region, node = id, calls = reading.calls, "read a node's patches from SSM");
        let value = Arc::new(reading.reading?);
        let read_at = self.keep(key, Cached::Node(Arc::clone(&value)));
        Ok(Read { value, read_at })
    }
}
