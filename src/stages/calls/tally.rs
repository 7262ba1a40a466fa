//! Takes kept calls one at a time; gives per service month the counted calls, each counted
//! system error, and the counted calls of every (customer, second) that holds a system error
//! (for the burst rule, SLA 5.7). [`Coverage`] looks up the month a call counts for.

use xxhash_rust::xxh3::xxh3_64;

use super::key::CallKey;
use crate::stages::service_months::CoverageInterval;
use crate::time::NANOS_PER_SECOND;

/// One customer's calls in one UTC second: what the burst rule (SLA 5.7) counts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct CustomerSecond {
    pub(super) customer_id: i64,
    /// `ts.div_euclid(NANOS_PER_SECOND)`.
    pub(super) utc_second: i64,
}

impl CustomerSecond {
    /// The second of a call of `customer_id` at `ts` (UTC nanoseconds).
    pub(super) fn of(customer_id: i64, ts: i64) -> CustomerSecond {
        CustomerSecond {
            customer_id,
            utc_second: ts.div_euclid(NANOS_PER_SECOND),
        }
    }
}

/// A counted system error, as the tally keeps it for attribution.
#[derive(Debug, Clone, Copy)]
pub(super) struct CountedError {
    pub(super) month_index: u32,
    /// The id and content hashes of its key, which find its detail.
    pub(super) id: [u64; 2],
    pub(super) content: u64,
    pub(super) customer_id: i64,
    /// UTC nanoseconds.
    pub(super) ts: i64,
}

/// Service-month lookup: a customer's covered instant ranges, sorted.
pub(super) struct Coverage {
    by_customer: foldhash::HashMap<i64, Vec<CoverageInterval>>,
    /// The customer of each service month, by `month_index`.
    month_customers: Vec<i64>,
}

impl Coverage {
    pub(super) fn new(intervals: &[CoverageInterval], month_count: usize) -> Coverage {
        let mut by_customer: foldhash::HashMap<i64, Vec<CoverageInterval>> =
            foldhash::HashMap::default();
        let mut month_customers = vec![0; month_count];
        for interval in intervals {
            by_customer
                .entry(interval.customer_id)
                .or_default()
                .push(*interval);
            month_customers[interval.month_index as usize] = interval.customer_id;
        }
        for list in by_customer.values_mut() {
            list.sort_by_key(|i| i.start);
        }
        Coverage {
            by_customer,
            month_customers,
        }
    }

    /// The service month a call at `ts` counts for, if any.
    pub(super) fn month(&self, customer_id: i64, ts: i64) -> Option<u32> {
        let list = self.by_customer.get(&customer_id)?;
        let after = list.partition_point(|i| i.start <= ts);
        let candidate = list.get(after.checked_sub(1)?)?;
        (ts < candidate.end).then_some(candidate.month_index)
    }
}

/// What counting needs besides the calls: the customer of each service month, and the
/// seconds in which system errors happened (only those need burst counts).
pub(super) struct TallyContext<'a> {
    month_customers: &'a [i64],
    error_seconds: &'a foldhash::HashSet<CustomerSecond>,
    /// A cache-sized pre-check for the set above: most calls are not in an error's second,
    /// and a bit test avoids a cache-missing hash probe for them.
    second_filter: BitFilter,
}

impl<'a> TallyContext<'a> {
    pub(super) fn new(
        coverage: &'a Coverage,
        error_seconds: &'a foldhash::HashSet<CustomerSecond>,
    ) -> TallyContext<'a> {
        let mut second_filter = BitFilter::new(error_seconds.len());
        for &second in error_seconds {
            second_filter.insert(second_key(second));
        }
        TallyContext {
            month_customers: &coverage.month_customers,
            error_seconds,
            second_filter,
        }
    }

    pub(super) fn month_count(&self) -> usize {
        self.month_customers.len()
    }

    fn is_error_second(&self, second: CustomerSecond) -> bool {
        self.second_filter.may_contain(second_key(second)) && self.error_seconds.contains(&second)
    }
}

/// A well-mixed 64-bit key for a (customer, second) pair.
fn second_key(second: CustomerSecond) -> u64 {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&second.customer_id.to_le_bytes());
    bytes[8..].copy_from_slice(&second.utc_second.to_le_bytes());
    xxh3_64(&bytes)
}

/// A one-hash bit set over well-mixed 64-bit keys: `false` is certain, `true` means "look".
struct BitFilter {
    bits: Vec<u64>,
    mask: u64,
}

impl BitFilter {
    /// About 16 bits per entry (a false "look" for 1 key in 16), at least 64 KiB.
    fn new(entries: usize) -> BitFilter {
        let bits = (entries as u64 * 16).next_power_of_two().max(1 << 19);
        BitFilter {
            bits: vec![0; (bits / 64) as usize],
            mask: bits - 1,
        }
    }

    fn insert(&mut self, key: u64) {
        let bit = key & self.mask;
        self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
    }

    fn may_contain(&self, key: u64) -> bool {
        let bit = key & self.mask;
        self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0
    }
}

/// Counts over kept calls, mergeable across threads and buckets.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) totals: Vec<u64>,
    pub(super) counted: u64,
    /// Counted system errors.
    pub(super) errors: Vec<CountedError>,
    /// Counted calls per (customer, UTC second), for seconds holding a system error.
    pub(super) seconds: foldhash::HashMap<CustomerSecond, u32>,
}

impl Tally {
    pub(super) fn new(month_count: usize) -> Tally {
        Tally {
            totals: vec![0; month_count],
            ..Tally::default()
        }
    }

    /// Counts one kept call in its service month, if it has one.
    pub(super) fn add(&mut self, context: &TallyContext, key: &CallKey) {
        let Some(month) = key.month() else {
            return;
        };
        let customer_id = context.month_customers[month as usize];
        self.totals[month as usize] += 1;
        self.counted += 1;
        let second = CustomerSecond::of(customer_id, key.ts);
        if context.is_error_second(second) {
            *self.seconds.entry(second).or_default() += 1;
        }
        if key.is_system_error() {
            self.errors.push(CountedError {
                month_index: month,
                id: key.id,
                content: key.content,
                customer_id,
                ts: key.ts,
            });
        }
    }

    pub(super) fn merge(mut self, other: Tally) -> Tally {
        if self.totals.len() < other.totals.len() {
            self.totals.resize(other.totals.len(), 0);
        }
        for (a, b) in self.totals.iter_mut().zip(&other.totals) {
            *a += b;
        }
        self.counted += other.counted;
        self.errors.extend(other.errors);
        for (k, v) in other.seconds {
            *self.seconds.entry(k).or_default() += v;
        }
        self
    }
}
