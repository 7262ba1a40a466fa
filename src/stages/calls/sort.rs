//! Takes one bucket's keys; gives them sorted by (id hash, content hash), by one counting pass
//! into cache-sized runs and a sort of each run.

use super::key::CallKey;
use super::store::scatter_by_digit;

/// Keys per run that the radix pass of [`sort_bucket`] aims for: small enough to sort in L1.
const RUN_KEYS: usize = 64;

/// Sorts one bucket's `keys` by (id, content) into `sorted`, whose contents are replaced.
///
/// The keys of a bucket share the top `bucket_bits` bits of `id[0]`, and the bits below are
/// uniformly spread (a hash). One counting pass on the next bits scatters them into runs of
/// about [`RUN_KEYS`] keys, in order of those bits; each run is then sorted on its own. The
/// cost per key so stays the same however large buckets grow (a comparison sort of a bucket
/// larger than the cache does not).
pub(super) fn sort_bucket(keys: &[CallKey], bucket_bits: u32, sorted: &mut Vec<CallKey>) {
    let radix_bits = (keys.len() / RUN_KEYS)
        .max(1)
        .ilog2()
        .min(16)
        .min(64 - bucket_bits);
    // With no radix bits the mask is 0 and there is one run; the shift only has to stay legal.
    let shift = (64 - bucket_bits - radix_bits).min(63);
    let mask = (1u64 << radix_bits) - 1;
    let ends = scatter_by_digit(
        keys,
        1 << radix_bits,
        |key| ((key.id[0] >> shift) & mask) as usize,
        sorted,
    );
    let mut start = 0;
    for end in ends {
        sorted[start..end].sort_unstable_by_key(|k| (k.id, k.content));
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::stages::calls::testing::{in_bucket, key};

    proptest! {
        #[test]
        fn spec2_sorting_a_bucket_orders_it_as_a_full_sort_would(
            rows in proptest::collection::vec((0u64..400, 0u64..3, 0u64..3), 0..4000),
            bits in 0u32..=10,
            prefix in any::<u64>(),
        ) {
            let keys: Vec<CallKey> = rows
                .iter()
                .enumerate()
                .map(|(i, &(low, id1, content))| {
                    key([in_bucket(prefix, bits, low), id1], content, i as u32)
                })
                .collect();
            let mut sorted = Vec::new();
            sort_bucket(&keys, bits, &mut sorted);
            let mut expected = keys.clone();
            expected.sort_by_key(|k| (k.id, k.content));
            let order = |v: &[CallKey]| v.iter().map(|k| (k.id, k.content)).collect::<Vec<_>>();
            prop_assert_eq!(order(&sorted), order(&expected));
            let mut all = sorted.iter().map(|k| (k.id, k.content, k.position)).collect::<Vec<_>>();
            all.sort();
            let mut want = keys.iter().map(|k| (k.id, k.content, k.position)).collect::<Vec<_>>();
            want.sort();
            prop_assert_eq!(all, want);
        }

    }
}
