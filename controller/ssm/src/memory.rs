//! What the SSM edge remembers about one account-region between passes, so that a pass
//! costs list calls only when nothing changed:
//!
//! - Ownership by object id. An id never changes and names the same object for its whole
//!   life, so the tags that prove (or disprove) ownership are read once per process with
//!   ListTagsForResource and remembered, owned or not; an object this process created is
//!   known owned without a read. Ids the lists no longer show are forgotten, and so are
//!   ids deleted or released here.
//! - Idempotency tokens of creates awaiting confirmation. SSM answers a token it has seen
//!   with the id of the object it created then, even once that object is gone. Instead of
//!   reading every new object back, the edge remembers which id a token answered: when the
//!   next list does not show it, the next create of the same object uses the next attempt's
//!   token, so a stale token costs one pass, never a loop.
//!
//! Small on purpose (1,000 accounts x 2 regions x ~30 ids): ids as boxed strings, owner
//! tags interned per account-region, tokens as 64-bit hashes kept only until confirmed.
//!
//! The memory lives as long as the edge keeps the account (a fresh edge, as after a
//! restart, starts empty; an account forgotten or rebuilt starts over): clients are built
//! per pass, so it is found by the account's identity (its rate limiter, which every
//! client of the account shares) and the region, without a field on the client.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use crate::edge::SsmClient;
use crate::ratelimit::RateLimiter;

/// What is known of one prefix-named object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Known {
    /// Not this controller's (no cluster tag, or another cluster's, or released).
    Foreign,
    /// This controller's, with the owner tag as written (None when it has none).
    Owned(Option<Arc<str>>),
}

#[derive(Debug)]
struct Token {
    attempt: u32,
    /// The id the token answered, until a list shows it (then the entry goes) or does not
    /// (then `attempt` moves on and this is None until the next create).
    id: Option<Box<str>>,
    /// Lists seen since the attempt moved on without a create using it.
    idle: u8,
}

/// Lists after which a token entry nobody used is dropped (the object is no longer
/// wanted under that key).
const TOKEN_IDLE_LISTS: u8 = 3;

#[derive(Debug, Default)]
pub(crate) struct Memory {
    ids: HashMap<Box<str>, Known>,
    owners: HashSet<Arc<str>>,
    tokens: HashMap<u64, Token>,
}

impl Memory {
    pub fn known(&self, id: &str) -> Option<Known> {
        self.ids.get(id).cloned()
    }

    /// Records what the tags say: owned when the cluster tag is this controller's.
    pub fn learn(&mut self, id: &str, owned: bool, owner: Option<&str>) -> Known {
        let known = if owned {
            Known::Owned(owner.map(|o| self.intern(o)))
        } else {
            Known::Foreign
        };
        self.ids.insert(id.into(), known.clone());
        known
    }

    /// An object this process created or tagged with `owner`.
    pub fn owned(&mut self, id: &str, owner: &str) {
        let owner = self.intern(owner);
        self.ids.insert(id.into(), Known::Owned(Some(owner)));
    }

    /// Released: its tags are gone, it is no longer this controller's.
    pub fn released(&mut self, id: &str) {
        self.ids.insert(id.into(), Known::Foreign);
    }

    pub fn forget(&mut self, id: &str) {
        self.ids.remove(id);
    }

    /// The owner tag remembered for an owned id.
    pub fn owner(&self, id: &str) -> Option<&str> {
        match self.ids.get(id) {
            Some(Known::Owned(owner)) => owner.as_deref(),
            _ => None,
        }
    }

    /// The attempt whose token the next create of `key` uses.
    pub fn token_attempt(&self, key: u64) -> u32 {
        self.tokens.get(&key).map_or(0, |t| t.attempt)
    }

    /// A create with `attempt`'s token answered `id`.
    pub fn token_answered(&mut self, key: u64, attempt: u32, id: &str) {
        self.tokens.insert(
            key,
            Token {
                attempt,
                id: Some(id.into()),
                idle: 0,
            },
        );
    }

    /// Every token of `key` up to `attempt` answered a stale id.
    pub fn token_exhausted(&mut self, key: u64, attempt: u32) {
        self.tokens.insert(
            key,
            Token {
                attempt,
                id: None,
                idle: 0,
            },
        );
    }

    /// After complete lists: forgets the ids they no longer show, confirms the tokens
    /// whose object they show, and moves the others on to their next attempt.
    pub fn listed(&mut self, listed: &HashSet<&str>) {
        self.ids.retain(|id, _| listed.contains(&**id));
        self.tokens.retain(|_, token| match &token.id {
            Some(id) if listed.contains(&**id) => false,
            Some(_) => {
                token.attempt += 1;
                token.id = None;
                true
            }
            None => {
                token.idle += 1;
                token.idle < TOKEN_IDLE_LISTS
            }
        });
        // Owner tags no id refers to any more.
        self.owners.retain(|o| Arc::strong_count(o) > 1);
    }

    #[cfg(test)]
    fn len(&self) -> (usize, usize, usize) {
        (self.ids.len(), self.owners.len(), self.tokens.len())
    }

    fn intern(&mut self, owner: &str) -> Arc<str> {
        if let Some(o) = self.owners.get(owner) {
            return Arc::clone(o);
        }
        let o: Arc<str> = owner.into();
        self.owners.insert(Arc::clone(&o));
        o
    }
}

/// One account-region's memory, shared by its client's clones.
#[derive(Debug, Default)]
pub(crate) struct RegionMemory(Mutex<Memory>);

impl RegionMemory {
    /// Never held across an await.
    pub fn lock(&self) -> MutexGuard<'_, Memory> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Memories by account (the address of its rate limiter, which the weak reference keeps
/// from being reused while the entry exists) and region.
type Registry = HashMap<(usize, Box<str>), (Weak<RateLimiter>, Arc<RegionMemory>)>;

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

/// The memory of `client`'s account-region, shared by every client the edge builds for
/// it while it keeps the account.
pub(crate) fn of(client: &SsmClient) -> Arc<RegionMemory> {
    let limiter = client.limiter();
    let key = (
        Arc::as_ptr(limiter) as usize,
        Box::<str>::from(client.target().region.as_str()),
    );
    let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    let registry = registry.get_or_insert_with(HashMap::new);
    if let Some((_, memory)) = registry.get(&key) {
        return Arc::clone(memory);
    }
    // Entries of accounts dropped since (SystemAccount deleted, access changed, edge
    // dropped).
    registry.retain(|_, (limiter, _)| limiter.strong_count() > 0);
    let memory = Arc::new(RegionMemory::default());
    registry.insert(key, (Arc::downgrade(limiter), Arc::clone(&memory)));
    memory
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_forgotten_once_no_longer_listed() {
        let mut m = Memory::default();
        m.learn("pb-1", true, Some("PatchPolicy/ns/a"));
        m.learn("pb-2", false, None);
        m.owned("mw-1", "PatchPolicy/ns/a");
        assert_eq!(m.len(), (3, 1, 0), "owner tags interned");
        assert_eq!(m.owner("pb-1"), Some("PatchPolicy/ns/a"));
        assert_eq!(m.known("pb-2"), Some(Known::Foreign));
        m.listed(&HashSet::from(["pb-2"]));
        assert_eq!(m.len(), (1, 0, 0));
        assert_eq!(m.known("pb-1"), None);
    }

    #[test]
    fn a_token_whose_object_is_not_listed_moves_on() {
        let mut m = Memory::default();
        m.token_answered(7, 0, "pb-stale");
        assert_eq!(m.token_attempt(7), 0);
        m.listed(&HashSet::new());
        assert_eq!(m.token_attempt(7), 1, "next create, next token");
        m.token_answered(7, 1, "pb-new");
        m.listed(&HashSet::from(["pb-new"]));
        assert_eq!(m.len().2, 0, "confirmed: nothing kept");
        // Moved on but never used again: dropped after a few lists.
        m.token_answered(8, 0, "pb-x");
        for _ in 0..=TOKEN_IDLE_LISTS {
            m.listed(&HashSet::new());
        }
        assert_eq!(m.len().2, 0);
    }
}
