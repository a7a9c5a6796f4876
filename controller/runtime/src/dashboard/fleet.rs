//! Per-instance detail from SSM, on demand: through the controller's SSM edge (per-account
//! credentials, rate limit, retries), and kept for `--cache-ttl` so that a reload or a
//! second viewer costs no call. Only the routes call it, after the fleet permission held.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::{Timestamp, Unit};
use kube::ResourceExt;
use patchfleet_api::v1alpha1::SystemAccount;
use patchfleet_planner::instances::{InstanceDetail, InstanceSummary};
use patchfleet_ssm::instances::{read_group_instances, read_instance};
use patchfleet_ssm::{AccountAccess, EdgeError, SsmClient, SsmEdge};
use tracing::info;

use super::cache::TtlCache;

/// What was read: the account (by uid: a SystemAccount deleted and created again under
/// its name is another account), the region, and the group or the node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Group(String, String, String),
    Node(String, String, String),
}

/// A read and when it was made (RFC 3339).
pub struct Read<T> {
    pub value: T,
    pub read_at: String,
}

/// Each entry is one page's worth; more than this and the cache starts over.
const CACHE_ENTRIES: usize = 10_000;

/// Each answer with the time it was read.
type Cache<T> = TtlCache<Key, (String, Arc<T>)>;

pub struct Fleet {
    edge: SsmEdge,
    groups: Cache<Vec<InstanceSummary>>,
    nodes: Cache<Option<InstanceDetail>>,
}

impl Fleet {
    pub fn new(edge: SsmEdge, ttl: Duration) -> Self {
        Fleet {
            edge,
            groups: TtlCache::new(ttl, CACHE_ENTRIES),
            nodes: TtlCache::new(ttl, CACHE_ENTRIES),
        }
    }

    /// The nodes tagged `group` in the account-region, worst first.
    pub async fn group(
        &self,
        account: &SystemAccount,
        region: &str,
        group: &str,
    ) -> Result<Read<Arc<Vec<InstanceSummary>>>, EdgeError> {
        let key = Key::Group(uid(account), region.to_owned(), group.to_owned());
        let platform = account.spec.platform;
        self.read(&self.groups, key, account, region, |client| async move {
            let reading = read_group_instances(&client, group, platform).await;
            info!(
                region,
                group,
                calls = reading.calls,
                "read a group's nodes from SSM"
            );
            reading.reading
        })
        .await
    }

    /// One node and its patches; None when the account-region has no such node.
    pub async fn node(
        &self,
        account: &SystemAccount,
        region: &str,
        id: &str,
    ) -> Result<Read<Arc<Option<InstanceDetail>>>, EdgeError> {
        let key = Key::Node(uid(account), region.to_owned(), id.to_owned());
        let platform = account.spec.platform;
        self.read(&self.nodes, key, account, region, |client| async move {
            let reading = read_instance(&client, id, platform).await;
            info!(
                region,
                node = id,
                calls = reading.calls,
                "read a node's patches from SSM"
            );
            reading.reading
        })
        .await
    }

    /// The cached answer, else `read` through the account's client, kept if it succeeded.
    async fn read<T, F, Fut>(
        &self,
        cache: &Cache<T>,
        key: Key,
        account: &SystemAccount,
        region: &str,
        read: F,
    ) -> Result<Read<Arc<T>>, EdgeError>
    where
        F: FnOnce(SsmClient) -> Fut,
        Fut: Future<Output = Result<T, EdgeError>>,
    {
        if let Some((_, (read_at, value))) = cache.get(&key) {
            return Ok(Read { value, read_at });
        }
        let access = AccountAccess::from_spec(&account.name_any(), &account.spec);
        let client = self.edge.account(&access).await.client(region);
        let value = Arc::new(read(client).await?);
        let read_at = Timestamp::now()
            .round(Unit::Second)
            .unwrap_or_else(|_| Timestamp::now())
            .to_string();
        cache.put(key, (read_at.clone(), Arc::clone(&value)));
        Ok(Read { value, read_at })
    }
}

fn uid(account: &SystemAccount) -> String {
    account.uid().unwrap_or_else(|| account.name_any())
}
