//! An index over half-open intervals `[start, end)` of UTC nanoseconds (SPEC §8: exemption
//! lookups must not cost errors × windows).
//!
//! Takes intervals, each with a key (a clause, a position), in table order; gives, for an
//! instant, the smallest key among the intervals covering it in O(log W), and the positions
//! of every covering interval in O((k + 1) log W) for k hits. Built in O(W log W). An
//! interval with `start >= end` covers nothing, as the linear rule `start <= ts < end` says.

use std::collections::BTreeMap;

/// One non-empty interval and where it stood in the input.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: i64,
    end: i64,
    position: usize,
}

/// Intervals arranged twice: cut into elementary segments for the smallest key, and sorted
/// by start under a max-end tree for listing every covering interval.
#[derive(Debug, Clone)]
pub struct IntervalIndex<K> {
    /// Distinct boundaries, ascending; segment `i` is `[bounds[i], bounds[i + 1])`.
    bounds: Vec<i64>,
    /// `smallest[i]`: the smallest key covering segment `i`; the last one is always `None`
    /// (nothing covers the time from the last end on).
    smallest: Vec<Option<K>>,
    /// Non-empty intervals by ascending start.
    by_start: Vec<Span>,
    /// A segment tree over `by_start`: node `n` holds the largest end in its range, so a
    /// listing descends only into ranges that reach past the instant.
    max_end: Vec<i64>,
}

impl<K: Ord + Copy> IntervalIndex<K> {
    /// Indexes `(start, end, key)` intervals; positions count from 0 in iteration order.
    pub fn new(intervals: impl IntoIterator<Item = (i64, i64, K)>) -> Self {
        let mut spans = Vec::new();
        let mut keys = Vec::new();
        for (position, (start, end, key)) in intervals.into_iter().enumerate() {
            if start < end {
                spans.push(Span {
                    start,
                    end,
                    position,
                });
                keys.push(key);
            }
        }
        let (bounds, smallest) = segments(&spans, &keys);
        spans.sort_by_key(|s| (s.start, s.position));
        let max_end = max_end_tree(&spans);
        IntervalIndex {
            bounds,
            smallest,
            by_start: spans,
            max_end,
        }
    }

    /// The smallest key of the intervals covering `ts`.
    #[cfg(test)]
    pub fn smallest_covering(&self, ts: i64) -> Option<K> {
        self.smallest_covering_counted(ts, &mut 0)
    }

    /// As `smallest_covering`, adding to `examined` the boundaries it compared `ts` with
    /// (the measure of its cost that tests check).
    pub fn smallest_covering_counted(&self, ts: i64, examined: &mut usize) -> Option<K> {
        let after = count_at_most(&self.bounds, ts, examined);
        // `after == 0`: `ts` is before every boundary, so nothing covers it.
        let segment = after.checked_sub(1)?;
        self.smallest.get(segment).copied().flatten()
    }

    /// Positions (in input order, ascending) of every interval covering `ts`.
    pub fn covering(&self, ts: i64) -> Vec<usize> {
        self.covering_counted(ts, &mut 0)
    }

    /// As `covering`, adding to `examined` the entries it looked at.
    pub fn covering_counted(&self, ts: i64, examined: &mut usize) -> Vec<usize> {
        let mut found = Vec::new();
        // The segment lookup answers the common case, nothing covers `ts`, in O(log W).
        if self.smallest_covering_counted(ts, examined).is_none() {
            return found;
        }
        let started = self.by_start.partition_point(|s| s.start <= ts);
        let mut walk = Walk {
            ts,
            started,
            found: &mut found,
            examined,
        };
        self.collect(&mut walk, 0, 0, self.by_start.len());
        found.sort_unstable();
        found
    }

    /// Descends node `node` (covering `by_start[lo..hi]`), keeping intervals that started by
    /// `ts` and end after it.
    fn collect(&self, walk: &mut Walk<'_>, node: usize, lo: usize, hi: usize) {
        if lo >= walk.started || lo >= hi || self.max_end[node] <= walk.ts {
            return;
        }
        *walk.examined += 1;
        if hi - lo == 1 {
            walk.found.push(self.by_start[lo].position);
            return;
        }
        let mid = lo + (hi - lo) / 2;
        self.collect(walk, 2 * node + 1, lo, mid);
        self.collect(walk, 2 * node + 2, mid, hi);
    }
}

/// The state of one listing, threaded through the tree descent.
struct Walk<'w> {
    ts: i64,
    /// Intervals `by_start[..started]` start at or before `ts`.
    started: usize,
    found: &'w mut Vec<usize>,
    examined: &'w mut usize,
}

/// How many of the ascending `bounds` are `<= ts`, by binary search, counting comparisons.
fn count_at_most(bounds: &[i64], ts: i64, examined: &mut usize) -> usize {
    let (mut lo, mut hi) = (0, bounds.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        *examined += 1;
        if bounds[mid] <= ts {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Cuts the timeline at every boundary and sweeps it once, keeping the smallest active key
/// per segment. A multiset of active keys makes each step O(log W).
fn segments<K: Ord + Copy>(spans: &[Span], keys: &[K]) -> (Vec<i64>, Vec<Option<K>>) {
    let mut starts: Vec<(i64, K)> = spans.iter().zip(keys).map(|(s, &k)| (s.start, k)).collect();
    let mut ends: Vec<(i64, K)> = spans.iter().zip(keys).map(|(s, &k)| (s.end, k)).collect();
    starts.sort_unstable_by_key(|&(t, _)| t);
    ends.sort_unstable_by_key(|&(t, _)| t);
    let mut bounds: Vec<i64> = starts.iter().chain(&ends).map(|&(t, _)| t).collect();
    bounds.sort_unstable();
    bounds.dedup();

    let mut active: BTreeMap<K, usize> = BTreeMap::new();
    let mut smallest = Vec::with_capacity(bounds.len());
    let (mut next_start, mut next_end) = (0, 0);
    for &bound in &bounds {
        while let Some(&(_, key)) = starts.get(next_start).filter(|&&(t, _)| t == bound) {
            *active.entry(key).or_default() += 1;
            next_start += 1;
        }
        while let Some(&(_, key)) = ends.get(next_end).filter(|&&(t, _)| t == bound) {
            release(&mut active, key);
            next_end += 1;
        }
        smallest.push(active.first_key_value().map(|(&k, _)| k));
    }
    (bounds, smallest)
}

/// Removes one occurrence of `key` from the multiset `active`.
fn release<K: Ord>(active: &mut BTreeMap<K, usize>, key: K) {
    if let Some(count) = active.get_mut(&key) {
        *count -= 1;
        if *count == 0 {
            active.remove(&key);
        }
    }
}

/// The max-end segment tree over `spans` (sorted by start), in the usual heap layout.
fn max_end_tree(spans: &[Span]) -> Vec<i64> {
    let mut tree = vec![i64::MIN; 4 * spans.len().max(1)];
    fill(&mut tree, spans, 0, 0, spans.len());
    tree
}

fn fill(tree: &mut [i64], spans: &[Span], node: usize, lo: usize, hi: usize) -> i64 {
    if lo >= hi {
        return i64::MIN;
    }
    let value = if hi - lo == 1 {
        spans[lo].end
    } else {
        let mid = lo + (hi - lo) / 2;
        let left = fill(tree, spans, 2 * node + 1, lo, mid);
        left.max(fill(tree, spans, 2 * node + 2, mid, hi))
    };
    tree[node] = value;
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The rule as the linear scan states it: the reference the index must equal.
    fn linear_smallest(intervals: &[(i64, i64, u8)], ts: i64) -> Option<u8> {
        intervals
            .iter()
            .filter(|&&(s, e, _)| s <= ts && ts < e)
            .map(|&(_, _, k)| k)
            .min()
    }

    fn linear_covering(intervals: &[(i64, i64, u8)], ts: i64) -> Vec<usize> {
        (0..intervals.len())
            .filter(|&i| intervals[i].0 <= ts && ts < intervals[i].1)
            .collect()
    }

    #[test]
    fn spec_4_intervals_are_half_open() {
        let index = IntervalIndex::new([(10, 20, 3u8)]);
        assert_eq!(index.smallest_covering(9), None);
        assert_eq!(index.smallest_covering(10), Some(3));
        assert_eq!(index.smallest_covering(19), Some(3));
        assert_eq!(index.smallest_covering(20), None);
        assert_eq!(index.covering(10), vec![0]);
        assert!(index.covering(20).is_empty());
    }

    #[test]
    fn spec_4_empty_intervals_cover_nothing_but_keep_positions() {
        let index = IntervalIndex::new([(10, 10, 1u8), (12, 5, 1), (0, 30, 7)]);
        assert_eq!(index.smallest_covering(10), Some(7));
        assert_eq!(index.covering(10), vec![2]);
    }

    #[test]
    fn spec_4_nested_and_shared_boundaries_give_the_smallest_key() {
        let index = IntervalIndex::new([(0, 100, 9u8), (20, 40, 2), (40, 60, 5), (20, 40, 4)]);
        assert_eq!(index.smallest_covering(19), Some(9));
        assert_eq!(index.smallest_covering(20), Some(2));
        assert_eq!(index.smallest_covering(40), Some(5));
        assert_eq!(index.covering(39), vec![0, 1, 3]);
        assert_eq!(index.covering(40), vec![0, 2]);
        assert_eq!(index.smallest_covering(100), None);
    }

    #[test]
    fn spec_4_extreme_instants_do_not_overflow() {
        let index = IntervalIndex::new([(i64::MIN, i64::MAX, 1u8)]);
        assert_eq!(index.smallest_covering(i64::MIN), Some(1));
        assert_eq!(index.smallest_covering(i64::MAX), None);
        let empty: IntervalIndex<u8> = IntervalIndex::new([]);
        assert_eq!(empty.smallest_covering(0), None);
        assert!(empty.covering(0).is_empty());
    }

    #[test]
    fn spec_8_a_lookup_among_3000_intervals_examines_log_w_boundaries() {
        // 3,000 overlapping windows of an hour, one every 10 minutes: 6,000 boundaries.
        let minute = 60_000_000_000i64;
        let intervals: Vec<(i64, i64, u8)> = (0..3000)
            .map(|i| {
                (
                    i * 10 * minute,
                    i * 10 * minute + 60 * minute,
                    (i % 18) as u8,
                )
            })
            .collect();
        let index = IntervalIndex::new(intervals.iter().copied());
        let mut worst = 0;
        for ts in (0..3000 * 10 * minute).step_by((7 * minute + 13) as usize) {
            let mut examined = 0;
            let found = index.smallest_covering_counted(ts, &mut examined);
            assert_eq!(found, linear_smallest(&intervals, ts));
            worst = worst.max(examined);
        }
        // ceil(log2(6001)) = 13: a linear scan would examine 3,000.
        assert!(worst <= 13, "a lookup examined {worst} boundaries");
    }

    #[test]
    fn spec_8_a_listing_examines_entries_in_proportion_to_its_hits() {
        // 3,000 disjoint windows: each instant is covered by at most one.
        let intervals: Vec<(i64, i64, u8)> = (0..3000).map(|i| (i * 10, i * 10 + 5, 1)).collect();
        let index = IntervalIndex::new(intervals.iter().copied());
        for ts in [0, 4, 5, 12_345, 29_994, 29_995] {
            let mut examined = 0;
            let found = index.covering_counted(ts, &mut examined);
            assert_eq!(found, linear_covering(&intervals, ts));
            // A binary search (13 boundaries at most), then a root-to-leaf path of the tree
            // (13 levels) to the edge of the started intervals and one per hit: a linear
            // scan would examine 3,000.
            assert!(
                examined <= 3 * 13,
                "listing at {ts} examined {examined} entries"
            );
        }
    }

    fn interval() -> impl Strategy<Value = (i64, i64, u8)> {
        // Few distinct instants, so boundaries are shared, windows nest and some are empty.
        (0i64..40, 0i64..40, 1u8..=18)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn spec_4_the_index_equals_the_linear_scan(
            intervals in proptest::collection::vec(interval(), 0..40),
            instants in proptest::collection::vec(-2i64..42, 1..40),
        ) {
            let index = IntervalIndex::new(intervals.iter().copied());
            for ts in instants.into_iter().chain(intervals.iter().flat_map(|&(s, e, _)| [s, e])) {
                prop_assert_eq!(index.smallest_covering(ts), linear_smallest(&intervals, ts));
                prop_assert_eq!(index.covering(ts), linear_covering(&intervals, ts));
            }
        }
    }
}
