//! Takes call keys as chunks are read; keeps them in buckets by their id hash, as many in
//! memory as the budget holds and the rest in spill files, and hands the buckets back one by
//! one ([`KeyStore::for_each_bucket`]).
//!
//! With spill.rs, this holds all of the heavy step's `unsafe` code (every other file of the
//! step denies it): here, one block in [`scatter_by_digit`].

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rayon::prelude::*;

use super::key::{CallKey, KEY_BYTES};
use super::spill::{allow_open_files, SpillError, SpillFile};

/// Keys are kept in at least this many buckets by the top bits of their id hash, so each bucket
/// is sorted on its own (in parallel, in cache) and freed as soon as it is counted.
const MIN_BUCKET_BITS: u32 = 8;
pub(super) const MAX_BUCKETS: u64 = 1 << 10;

/// Where phase 1 puts keys: buckets by id hash, as many in memory as the budget holds, the rest
/// in files (written once, read once). Spilling only the excess keeps the disk writes small
/// enough for the page cache to absorb.
pub(super) struct KeyStore {
    /// `64 - log2(bucket count)`: a key's bucket is `id[0] >> shift`.
    shift: u32,
    /// Buckets `0..memory.len()`.
    memory: Vec<Mutex<Vec<CallKey>>>,
    /// Buckets `memory.len()..`, one file each.
    disk: Vec<Mutex<SpillFile>>,
    /// Scratch buffers for grouping a chunk's keys, sorting a bucket, reading one back.
    pool: BufferPool,
}

/// A lock whose holder panicked still guards consistent data here (a panic ends the run).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl KeyStore {
    pub(super) fn new(rows: u64, budget_bytes: u64, spill_dir: &Path) -> anyhow::Result<KeyStore> {
        let needed_bytes = rows * KEY_BYTES as u64;
        let budget_bytes = budget_bytes.max(1);
        // Buckets of about 64 Ki keys (a bucket, its sorted copy and its runs' counts stay a few
        // MB), and small enough that the two being de-duplicated at once are a fraction of the
        // budget; at most 1024 (more files, and the page cache, cost more than smaller buckets
        // save).
        let for_cache = rows.div_ceil(1 << 16);
        let for_budget = needed_bytes.div_ceil((budget_bytes / 8).max(1));
        let buckets = for_cache
            .max(for_budget)
            .next_power_of_two()
            .clamp(1 << MIN_BUCKET_BITS, MAX_BUCKETS);
        let bucket_rows = rows.div_ceil(buckets);
        let in_memory = (budget_bytes / (bucket_rows * KEY_BYTES as u64).max(1)).min(buckets);
        // Hashes spread evenly: a little headroom avoids regrowing (and doubling) a bucket.
        let capacity = (bucket_rows as usize) * 21 / 20 + 64;
        let memory = (0..in_memory)
            .map(|_| Mutex::new(Vec::with_capacity(capacity)))
            .collect();
        let mut disk = Vec::new();
        if in_memory < buckets {
            allow_open_files(buckets - in_memory + 64);
            for b in in_memory..buckets {
                // A file that fails to be created drops (and so removes) those made before it.
                let file = SpillFile::create(spill_dir, b).map_err(SpillError::into_error)?;
                disk.push(Mutex::new(file));
            }
        }
        Ok(KeyStore {
            shift: 64 - buckets.trailing_zeros(),
            memory,
            disk,
            pool: BufferPool::new(2 * rayon::current_num_threads() + 2),
        })
    }

    /// Buckets written to disk (0 when everything stays in memory).
    pub(super) fn spilled_buckets(&self) -> usize {
        self.disk.len()
    }

    /// Adds one chunk's keys to their buckets.
    pub(super) fn add(&self, keys: &[CallKey]) -> anyhow::Result<()> {
        let shift = self.shift;
        let buckets = self.memory.len() + self.disk.len();
        let mut grouped = self.pool.take();
        let ends = scatter_by_digit(keys, buckets, |k| (k.id[0] >> shift) as usize, &mut grouped);
        let mut start = 0;
        for (bucket, end) in ends.into_iter().enumerate() {
            let group = &grouped[start..end];
            start = end;
            if group.is_empty() {
                continue;
            }
            match self.memory.get(bucket) {
                Some(keys) => lock(keys).extend_from_slice(group),
                None => lock(&self.disk[bucket - self.memory.len()])
                    .write(group)
                    .map_err(SpillError::into_error)?,
            }
        }
        self.pool.give(grouped);
        Ok(())
    }

    /// Hands every bucket's keys to `work`, with the bucket's bit count and the buffer pool,
    /// on rayon's pool, in-memory buckets first. A spilled bucket is read back (into a pooled
    /// buffer) just before its turn, and its file is removed once read. Gives each bucket's
    /// result, or the error reading it back met.
    pub(super) fn for_each_bucket<T: Send>(
        mut self,
        work: impl Fn(Vec<CallKey>, u32, &BufferPool) -> T + Sync,
    ) -> Vec<anyhow::Result<T>> {
        let memory = std::mem::take(&mut self.memory);
        let disk = std::mem::take(&mut self.disk);
        let bucket_bits = 64 - self.shift;
        let pool = &self.pool;
        let from_memory = memory.into_par_iter().map(|keys| {
            let keys = keys.into_inner().unwrap_or_else(PoisonError::into_inner);
            Ok(work(keys, bucket_bits, pool))
        });
        let from_disk = disk.into_par_iter().map(|file| {
            let file = file.into_inner().unwrap_or_else(PoisonError::into_inner);
            let keys = file
                .read_back(pool.take())
                .map_err(SpillError::into_error)?;
            Ok(work(keys, bucket_bits, pool))
        });
        from_memory.chain(from_disk).collect()
    }
}

/// Key buffers freed by de-duplication, handed out again so that sorting or reading back a
/// bucket reuses memory that is already mapped instead of faulting in fresh pages. Holds at
/// most `limit` buffers; more are freed.
pub(super) struct BufferPool {
    free: Mutex<Vec<Vec<CallKey>>>,
    limit: usize,
}

impl BufferPool {
    pub(super) fn new(limit: usize) -> BufferPool {
        BufferPool {
            free: Mutex::new(Vec::new()),
            limit,
        }
    }

    /// An empty buffer, with whatever capacity it had.
    pub(super) fn take(&self) -> Vec<CallKey> {
        lock(&self.free).pop().unwrap_or_default()
    }

    pub(super) fn give(&self, mut buffer: Vec<CallKey>) {
        buffer.clear();
        let mut free = lock(&self.free);
        if free.len() < self.limit {
            free.push(buffer);
        }
    }
}

/// Copies `keys` into `out` (contents replaced) grouped by `digit(key)`, which must be below
/// `digits`: a counting sort, stable, in digit order. Gives where each digit's run ends.
pub(super) fn scatter_by_digit(
    keys: &[CallKey],
    digits: usize,
    digit: impl Fn(&CallKey) -> usize,
    out: &mut Vec<CallKey>,
) -> Vec<usize> {
    let n = keys.len();
    // ends[d]: first a count, then where run d starts, and once filled where it ends.
    let mut ends = vec![0usize; digits];
    for key in keys {
        ends[digit(key)] += 1;
    }
    let mut start = 0;
    for end in ends.iter_mut() {
        let count = *end;
        *end = start;
        start += count;
    }
    out.clear();
    out.reserve(n);
    let slots = &mut out.spare_capacity_mut()[..n];
    for key in keys {
        let d = digit(key);
        slots[ends[d]].write(*key);
        ends[d] += 1;
    }
    // SAFETY: the counts and their prefix sums make `ends` visit every slot in 0..n exactly
    // once, so all n slots were written above.
    unsafe { out.set_len(n) };
    ends
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::stages::calls::dedup::deduplicate_buckets;
    use crate::stages::calls::tally::{Coverage, TallyContext};
    use crate::stages::calls::testing::{key, some_keys, spill_folder};
    use crate::stages::service_months::CoverageInterval;

    proptest! {
        #[test]
        fn spec2_scattering_groups_keys_by_digit_and_keeps_their_order(
            digits in proptest::collection::vec(0usize..7, 0..500),
        ) {
            let keys: Vec<CallKey> = digits
                .iter()
                .enumerate()
                .map(|(i, &d)| key([d as u64, 0], 0, i as u32))
                .collect();
            let mut out = Vec::new();
            let ends = scatter_by_digit(&keys, 7, |k| k.id[0] as usize, &mut out);
            prop_assert_eq!(ends.len(), 7);
            prop_assert_eq!(out.len(), keys.len());
            let mut start = 0;
            for (d, &end) in ends.iter().enumerate() {
                let run = &out[start..end];
                prop_assert!(run.iter().all(|k| k.id[0] == d as u64));
                prop_assert!(run.windows(2).all(|w| w[0].position < w[1].position));
                prop_assert_eq!(run.len(), digits.iter().filter(|&&x| x == d).count());
                start = end;
            }
        }
    }

    #[test]
    fn spec8_the_key_store_spills_into_the_callers_folder_and_leaves_it_empty() {
        let dir = spill_folder("store");
        let keys = some_keys(3000);
        // A 1-byte budget: every bucket goes to disk.
        let store = KeyStore::new(keys.len() as u64, 1, &dir).unwrap();
        assert_eq!(store.spilled_buckets() as u64, MAX_BUCKETS);
        store.add(&keys).unwrap();
        let coverage = Coverage::new(
            &[CoverageInterval {
                month_index: 0,
                customer_id: 0,
                start: i64::MIN,
                end: i64::MAX,
            }],
            3,
        );
        let error_seconds = foldhash::HashSet::default();
        let context = TallyContext::new(&coverage, &error_seconds);
        let partial = deduplicate_buckets(store, &context, None).unwrap();
        assert_eq!(partial.unique, 3000);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir(&dir).unwrap();
        let missing = KeyStore::new(keys.len() as u64, 1, &dir)
            .err()
            .unwrap()
            .to_string();
        assert!(missing.contains("bucket-0.keys"), "{missing}");
    }
}
