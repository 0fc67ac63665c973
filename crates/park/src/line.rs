//! Where a waiting party stands, answered without scanning its line. The
//! database is the record (`line_entries`); a line store holds each line's
//! WAITING entries by join number so that a position is a logarithmic
//! lookup: in this process ([`MemoryLines`], loaded from the database at
//! start; one instance) or in Redis ([`RedisLines`], sorted sets shared by
//! every instance). See `docs/adr/0021-park-lines.md`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use crate::model::{AttractionId, LineEntryId};

/// One WAITING entry as a line store holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    pub id: LineEntryId,
    /// The join number within its attraction (1, 2, …; never reused).
    pub seq: u64,
    pub party_size: u32,
}

/// How many parties and guests are waiting in one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineTotals {
    pub parties: u64,
    pub guests: u64,
}

/// The line store cannot answer (Redis unreachable).
#[derive(Debug, Clone, thiserror::Error)]
#[error("line store: {0}")]
pub struct LineStoreError(pub String);

#[async_trait]
pub trait LineStore: Send + Sync {
    /// Replaces what is held for `attraction` with `waiting`.
    async fn load(
        &self,
        attraction: AttractionId,
        waiting: &[Waiting],
    ) -> Result<(), LineStoreError>;
    /// Adds a WAITING entry; adding one already held, or already removed,
    /// changes nothing.
    async fn add(&self, attraction: AttractionId, entry: Waiting) -> Result<(), LineStoreError>;
    /// Removes entries that stopped waiting. One not held yet is
    /// remembered, so that its add — a join's, arriving after the call or
    /// leave that ended it — is ignored.
    async fn remove(
        &self,
        attraction: AttractionId,
        entries: &[Waiting],
    ) -> Result<(), LineStoreError>;
    /// 1 + the parties waiting before `entry`; `None` when not held.
    async fn position(
        &self,
        attraction: AttractionId,
        entry: LineEntryId,
    ) -> Result<Option<u64>, LineStoreError>;
    async fn totals(&self, attraction: AttractionId) -> Result<LineTotals, LineStoreError>;
    /// Every entry held for `attraction`, in join order, with the totals
    /// as they stood at the same moment: what reconciliation compares with
    /// the table.
    async fn members(
        &self,
        attraction: AttractionId,
    ) -> Result<(Vec<Waiting>, LineTotals), LineStoreError>;
}

/// A Fenwick tree over join numbers: prefix counts of waiting parties in
/// O(log n), growing as numbers are handed out.
#[derive(Debug, Default)]
struct Fenwick {
    /// 1-based; `tree[0]` unused.
    tree: Vec<i64>,
}

impl Fenwick {
    #[allow(clippy::cast_possible_truncation)]
    fn grow_to(&mut self, n: u64) {
        let n = n as usize;
        if self.tree.is_empty() {
            self.tree.push(0);
        }
        while self.tree.len() <= n {
            let i = self.tree.len();
            let low = i & i.wrapping_neg();
            // A new node covers (i - low, i]; all but i itself exist, and i is 0.
            let value = self.prefix((i - 1) as u64) - self.prefix((i - low) as u64);
            self.tree.push(value);
        }
    }

    #[allow(clippy::cast_possible_truncation)]
    fn add(&mut self, at: u64, delta: i64) {
        self.grow_to(at);
        let mut i = at as usize;
        while i < self.tree.len() {
            self.tree[i] += delta;
            i += i & i.wrapping_neg();
        }
    }

    #[allow(clippy::cast_possible_truncation)]
    fn prefix(&self, at: u64) -> i64 {
        let mut i = (at as usize).min(self.tree.len().saturating_sub(1));
        let mut sum = 0;
        while i > 0 {
            sum += self.tree[i];
            i -= i & i.wrapping_neg();
        }
        sum
    }
}

#[derive(Debug, Default)]
struct Line {
    counts: Fenwick,
    members: HashMap<LineEntryId, Waiting>,
    guests: u64,
    /// Removed before they were added (a join racing its own call).
    gone: HashSet<LineEntryId>,
}

impl Line {
    fn add(&mut self, entry: Waiting) {
        if entry.seq == 0
            || self.gone.remove(&entry.id)
            || self.members.insert(entry.id, entry).is_some()
        {
            return;
        }
        self.counts.add(entry.seq, 1);
        self.guests += u64::from(entry.party_size);
    }

    fn remove(&mut self, id: LineEntryId) {
        if let Some(entry) = self.members.remove(&id) {
            self.counts.add(entry.seq, -1);
            self.guests = self.guests.saturating_sub(u64::from(entry.party_size));
        } else {
            self.gone.insert(id);
        }
    }
}

/// Lines in this process's memory. Right for one instance: another
/// instance would not see its joins.
#[derive(Debug, Default)]
pub struct MemoryLines {
    lines: Mutex<HashMap<AttractionId, Line>>,
}

impl MemoryLines {
    fn with<T>(&self, attraction: AttractionId, f: impl FnOnce(&mut Line) -> T) -> T {
        let mut lines = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(lines.entry(attraction).or_default())
    }
}

#[async_trait]
impl LineStore for MemoryLines {
    async fn load(
        &self,
        attraction: AttractionId,
        waiting: &[Waiting],
    ) -> Result<(), LineStoreError> {
        self.with(attraction, |line| {
            *line = Line::default();
            for entry in waiting {
                line.add(*entry);
            }
        });
        Ok(())
    }

    async fn add(&self, attraction: AttractionId, entry: Waiting) -> Result<(), LineStoreError> {
        self.with(attraction, |line| line.add(entry));
        Ok(())
    }

    async fn remove(
        &self,
        attraction: AttractionId,
        entries: &[Waiting],
    ) -> Result<(), LineStoreError> {
        self.with(attraction, |line| {
            for entry in entries {
                line.remove(entry.id);
            }
        });
        Ok(())
    }

    async fn position(
        &self,
        attraction: AttractionId,
        entry: LineEntryId,
    ) -> Result<Option<u64>, LineStoreError> {
        Ok(self.with(attraction, |line| {
            line.members
                .get(&entry)
                .map(|w| u64::try_from(line.counts.prefix(w.seq)).unwrap_or(0))
        }))
    }

    async fn totals(&self, attraction: AttractionId) -> Result<LineTotals, LineStoreError> {
        Ok(self.with(attraction, |line| LineTotals {
            parties: line.members.len() as u64,
            guests: line.guests,
        }))
    }

    async fn members(
        &self,
        attraction: AttractionId,
    ) -> Result<(Vec<Waiting>, LineTotals), LineStoreError> {
        let (mut held, totals) = self.with(attraction, |line| {
            let held: Vec<Waiting> = line.members.values().copied().collect();
            let totals = LineTotals {
                parties: held.len() as u64,
                guests: line.guests,
            };
            (held, totals)
        });
        held.sort_unstable_by_key(|w| w.seq);
        Ok((held, totals))
    }
}

/// Lines in Redis: per attraction a sorted set of entry ids scored by join
/// number (`ZRANK` is the position, O(log n)) and a hash of party sizes,
/// with the guest total beside them; each change is one script, atomic.
pub struct RedisLines {
    redis: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLines")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: &redis::RedisError) -> LineStoreError {
    LineStoreError(e.to_string())
}

/// KEYS: line, parties, guests, gone. ARGV: seq, id, party. Adds unless
/// held or removed already.
const ADD: &str = r"
if redis.call('HDEL', KEYS[4], ARGV[2]) == 1 then return 0 end
if redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[2]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  redis.call('INCRBY', KEYS[3], ARGV[3])
end
return 1";

/// KEYS: line, parties, guests, gone. ARGV: ids. Removes those held and
/// remembers the others.
const REMOVE: &str = r"
for _, id in ipairs(ARGV) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local party = redis.call('HGET', KEYS[2], id)
    redis.call('HDEL', KEYS[2], id)
    if party then redis.call('DECRBY', KEYS[3], party) end
  else
    redis.call('HSET', KEYS[4], id, 1)
  end
end
return 1";

impl RedisLines {
    /// Connects to `url`; every key starts with `{prefix}:park:`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, LineStoreError> {
        let client = redis::Client::open(url).map_err(|e| unavailable(&e))?;
        let redis = ConnectionManager::new(client)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(Self {
            redis,
            prefix: format!("{prefix}:park"),
        })
    }

    /// The line's keys, in one hash slot.
    fn keys(&self, attraction: AttractionId) -> [String; 4] {
        let base = format!("{}:{{{}}}", self.prefix, attraction.0.simple());
        [
            format!("{base}:line"),
            format!("{base}:parties"),
            format!("{base}:guests"),
            format!("{base}:gone"),
        ]
    }
}

#[async_trait]
impl LineStore for RedisLines {
    async fn load(
        &self,
        attraction: AttractionId,
        waiting: &[Waiting],
    ) -> Result<(), LineStoreError> {
        let [line, parties, guests, gone] = self.keys(attraction);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&line).del(&parties).del(&gone);
        let total: u64 = waiting.iter().map(|w| u64::from(w.party_size)).sum();
        for chunk in waiting.chunks(1000) {
            let scored: Vec<(u64, String)> =
                chunk.iter().map(|w| (w.seq, w.id.to_string())).collect();
            let sizes: Vec<(String, u32)> = chunk
                .iter()
                .map(|w| (w.id.to_string(), w.party_size))
                .collect();
            pipe.zadd_multiple(&line, &scored)
                .hset_multiple(&parties, &sizes);
        }
        pipe.set(&guests, total);
        pipe.query_async::<()>(&mut self.redis.clone())
            .await
            .map_err(|e| unavailable(&e))
    }

    async fn add(&self, attraction: AttractionId, entry: Waiting) -> Result<(), LineStoreError> {
        redis::Script::new(ADD)
            .key(self.keys(attraction).as_slice())
            .arg(entry.seq)
            .arg(entry.id.to_string())
            .arg(entry.party_size)
            .invoke_async::<i64>(&mut self.redis.clone())
            .await
            .map(drop)
            .map_err(|e| unavailable(&e))
    }

    async fn remove(
        &self,
        attraction: AttractionId,
        entries: &[Waiting],
    ) -> Result<(), LineStoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = entries.iter().map(|w| w.id.to_string()).collect();
        redis::Script::new(REMOVE)
            .key(self.keys(attraction).as_slice())
            .arg(ids)
            .invoke_async::<i64>(&mut self.redis.clone())
            .await
            .map(drop)
            .map_err(|e| unavailable(&e))
    }

    async fn position(
        &self,
        attraction: AttractionId,
        entry: LineEntryId,
    ) -> Result<Option<u64>, LineStoreError> {
        let [line, _, _, _] = self.keys(attraction);
        let rank: Option<u64> = redis::cmd("ZRANK")
            .arg(&line)
            .arg(entry.to_string())
            .query_async(&mut self.redis.clone())
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(rank.map(|r| r + 1))
    }

    async fn totals(&self, attraction: AttractionId) -> Result<LineTotals, LineStoreError> {
        let [line, _, guests, _] = self.keys(attraction);
        let (parties, total): (u64, Option<i64>) = redis::pipe()
            .zcard(&line)
            .get(&guests)
            .query_async(&mut self.redis.clone())
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(LineTotals {
            parties,
            guests: u64::try_from(total.unwrap_or(0)).unwrap_or(0),
        })
    }

    async fn members(
        &self,
        attraction: AttractionId,
    ) -> Result<(Vec<Waiting>, LineTotals), LineStoreError> {
        let [line, parties, guests, _] = self.keys(attraction);
        type Read = (Vec<(String, u64)>, HashMap<String, u32>, Option<i64>);
        let (scored, sizes, total): Read = redis::pipe()
            .atomic()
            .zrange_withscores(&line, 0, -1)
            .hgetall(&parties)
            .get(&guests)
            .query_async(&mut self.redis.clone())
            .await
            .map_err(|e| unavailable(&e))?;
        let totals = LineTotals {
            parties: scored.len() as u64,
            guests: u64::try_from(total.unwrap_or(0)).unwrap_or(0),
        };
        let held = scored
            .into_iter()
            .map(|(raw, seq)| {
                let id: LineEntryId = raw.parse().map_err(|_| {
                    LineStoreError(format!("{line} holds {raw:?}, not an entry id"))
                })?;
                Ok(Waiting {
                    id,
                    seq,
                    // A size lost from the hash shows as 0: a difference.
                    party_size: sizes.get(&raw).copied().unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, LineStoreError>>()?;
        Ok((held, totals))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fenwick_tree_counts_prefixes_as_it_grows() {
        let mut tree = Fenwick::default();
        for at in [1, 2, 3, 5, 8, 13, 100] {
            tree.add(at, 1);
        }
        assert_eq!(tree.prefix(0), 0);
        assert_eq!(tree.prefix(4), 3);
        assert_eq!(tree.prefix(13), 6);
        assert_eq!(tree.prefix(1000), 7);
        tree.add(3, -1);
        assert_eq!(tree.prefix(5), 3);
        // Growing after removals keeps every prefix.
        tree.add(300, 1);
        assert_eq!(tree.prefix(100), 6);
        assert_eq!(tree.prefix(300), 7);
    }
}
