//! Takes a set of 128-bit keys the driver found (the id hashes of request ids that more than one
//! row carries; the (customer, UTC second) pairs that hold a system error) and gives it to the
//! cluster as a Bloom filter in one binary literal, with the function
//! `sla_may_contain(filter, key)` that tells, row by row, whether a key may be in the set.
//!
//! It may say yes for a key that is not in the set (rarely: below one row in a thousand while
//! the set fits the filter's largest size, more beyond), never no for one that is. Every query
//! that uses it is written so that a false yes costs work, not exactness: a row kept for a
//! closer look that the closer look then counts as it would have anyway.
//!
//! Why a literal and not a join: a join with a small set the driver computed would need it as
//! a table every executor can read (a `VALUES` list of 60,000 rows takes tens of seconds to
//! plan), and a join with the set computed in the same query is planned as a partitioned join,
//! which shuffles every call row. Why a filter and not the keys: the literal travels inside
//! every task's plan, so its size must not grow with the data (on a 20M-row data set the
//! repeated ids' keys, copied into each file's branch, made a 17 MB plan, past the cluster's
//! message limit; its 350,000 error seconds alone are 5.6 MB as keys).
//!
//! The function is declared volatile so that DataFusion neither copies it into each call
//! file's branch of a query (a filter pushed through a `UNION ALL` of 9 files is 9 literals)
//! nor moves it below a join: it is evaluated once per row where the query names it.
//!
//! The literal: one byte `k` (probes per key, 1 to 16), then the filter's bits, a power of two
//! of them from 2^10 to 2^24 ([`KeyFilter::literal`]). A key is one `DECIMAL(38, 0)` (an id
//! hash) or two `BIGINT`s packed high and low ([`pack`]). Null keys give null.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, BooleanArray};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Int64Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use xxhash_rust::xxh3::xxh3_64;

/// The name the queries call it by.
pub(crate) const MAY_CONTAIN: &str = "sla_may_contain";

/// Bits per key the filter aims for (about 1 false yes in 2,000 keys not in the set).
const BITS_PER_KEY: usize = 16;
const MIN_BITS_LOG2: u32 = 10;
/// 2 MiB: the largest literal, whatever the set's size.
const MAX_BITS_LOG2: u32 = 24;
const MAX_PROBES: u8 = 16;

/// Two 64-bit values as one key: `high` in the upper half, `low`'s bits in the lower half.
pub(crate) fn pack(high: i64, low: i64) -> i128 {
    (i128::from(high) << 64) | i128::from(low as u64)
}

/// A Bloom filter of a set of keys, as `sla_may_contain` takes it.
pub(crate) struct KeyFilter {
    probes: u8,
    bits: Vec<u8>,
    keys: usize,
}

impl KeyFilter {
    pub(crate) fn new(keys: &[i128]) -> KeyFilter {
        let wanted = keys.len().saturating_mul(BITS_PER_KEY).max(1);
        let log2 = wanted
            .next_power_of_two()
            .trailing_zeros()
            .clamp(MIN_BITS_LOG2, MAX_BITS_LOG2);
        let bit_count = 1usize << log2;
        // k = ln 2 · bits per key, the fewest false yeses for the size.
        let per_key = bit_count as f64 / keys.len().max(1) as f64;
        let probes = (per_key * std::f64::consts::LN_2)
            .round()
            .clamp(1.0, f64::from(MAX_PROBES)) as u8;
        let mut filter = KeyFilter {
            probes,
            bits: vec![0; bit_count / 8],
            keys: keys.len(),
        };
        for &key in keys {
            for bit in probe_bits(key, probes, bit_count) {
                filter.bits[bit / 8] |= 1 << (bit % 8);
            }
        }
        filter
    }

    /// How many keys went in.
    pub(crate) fn keys(&self) -> usize {
        self.keys
    }

    /// The filter as a SQL binary literal, `X'…'`.
    pub(crate) fn literal(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(5 + self.bits.len() * 2);
        text.push_str("X'");
        for byte in std::iter::once(self.probes).chain(self.bits.iter().copied()) {
            text.push(char::from(HEX[usize::from(byte >> 4)]));
            text.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        text.push('\'');
        text
    }
}

/// The bits `key` sets: `probes` positions from two halves of one 64-bit hash of its bytes
/// (double hashing), so keys that are not random (packed pairs) spread like random ones.
fn probe_bits(key: i128, probes: u8, bit_count: usize) -> impl Iterator<Item = usize> {
    let hash = xxh3_64(&key.to_le_bytes());
    let (first, step) = (hash as u32, (hash >> 32) as u32 | 1);
    let mask = bit_count - 1;
    (0..u32::from(probes)).map(move |i| first.wrapping_add(i.wrapping_mul(step)) as usize & mask)
}

/// A literal read back as (probes, bits); an error unless it is laid out as [`KeyFilter`]
/// writes it.
fn parts(literal: &[u8]) -> Result<(u8, &[u8])> {
    let Some((&probes, bits)) = literal.split_first() else {
        return exec_err!("{MAY_CONTAIN}: the filter is empty");
    };
    let bit_count = bits.len().saturating_mul(8);
    let sizes = (1usize << MIN_BITS_LOG2)..=(1usize << MAX_BITS_LOG2);
    if !(1..=MAX_PROBES).contains(&probes)
        || !bit_count.is_power_of_two()
        || !sizes.contains(&bit_count)
    {
        return exec_err!(
            "{MAY_CONTAIN}: the filter has {probes} probes and {bit_count} bits; expected 1 to \
             {MAX_PROBES} probes and a power of two from 2^{MIN_BITS_LOG2} to 2^{MAX_BITS_LOG2} bits"
        );
    }
    Ok((probes, bits))
}

fn may_contain(probes: u8, bits: &[u8], key: i128) -> bool {
    probe_bits(key, probes, bits.len() * 8).all(|bit| bits[bit / 8] & (1 << (bit % 8)) != 0)
}

fn literal_bytes(value: &ScalarValue) -> Option<&[u8]> {
    match value {
        ScalarValue::Binary(Some(bytes))
        | ScalarValue::LargeBinary(Some(bytes))
        | ScalarValue::BinaryView(Some(bytes)) => Some(bytes),
        _ => None,
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct MayContain {
    signature: Signature,
}

impl MayContain {
    pub(super) fn new() -> MayContain {
        let hash = DataType::Decimal128(38, 0);
        MayContain {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Binary, hash]),
                    TypeSignature::Exact(vec![DataType::Binary, DataType::Int64, DataType::Int64]),
                ],
                // Not that it varies: this keeps the optimizer from copying the literal (above).
                Volatility::Volatile,
            ),
        }
    }
}

impl ScalarUDFImpl for MayContain {
    fn name(&self) -> &str {
        MAY_CONTAIN
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    /// Checks the filter where the query is planned: it must be a literal laid out as
    /// [`KeyFilter`] writes it.
    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        match args.first() {
            Some(Expr::Literal(value, _)) => match literal_bytes(value) {
                Some(bytes) => parts(bytes).map(|_| ())?,
                None => return plan_err!("{MAY_CONTAIN}: the filter must be a binary literal"),
            },
            _ => return plan_err!("{MAY_CONTAIN}: the filter must be a literal"),
        }
        Ok(ExprSimplifyResult::Original(args))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(ColumnarValue::Scalar(filter)) = args.args.first() else {
            return exec_err!("{MAY_CONTAIN}: the filter must be a literal");
        };
        let Some(filter) = literal_bytes(filter) else {
            return exec_err!("{MAY_CONTAIN}: the filter must be a binary literal");
        };
        let (probes, bits) = parts(filter)?;
        let rows = args.number_rows;
        let found: BooleanArray = match &args.args[1..] {
            [key] => {
                let key = key.to_array(rows)?;
                key.as_primitive::<Decimal128Type>()
                    .iter()
                    .map(|k| k.map(|k| may_contain(probes, bits, k)))
                    .collect()
            }
            [high, low] => {
                let (high, low) = (high.to_array(rows)?, low.to_array(rows)?);
                let (high, low) = (
                    high.as_primitive::<Int64Type>(),
                    low.as_primitive::<Int64Type>(),
                );
                high.iter()
                    .zip(low.iter())
                    .map(|pair| match pair {
                        (Some(h), Some(l)) => Some(may_contain(probes, bits, pack(h, l))),
                        _ => None,
                    })
                    .collect()
            }
            _ => return exec_err!("{MAY_CONTAIN} takes a filter and one or two key columns"),
        };
        Ok(ColumnarValue::Array(Arc::new(found)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(filter: &KeyFilter) -> Vec<u8> {
        std::iter::once(filter.probes)
            .chain(filter.bits.iter().copied())
            .collect()
    }

    #[test]
    fn every_key_of_the_set_is_found_and_few_others_are() {
        let keys: Vec<i128> = (0..60_000).map(|i| pack(i % 2_000, i * 7)).collect();
        let filter = KeyFilter::new(&keys);
        assert_eq!(filter.keys(), 60_000);
        let (probes, bits) = (filter.probes, &filter.bits);
        assert!(keys.iter().all(|&k| may_contain(probes, bits, k)));
        let false_yes = (0..100_000)
            .filter(|&i| may_contain(probes, bits, pack(-1 - i, i)))
            .count();
        assert!(false_yes < 100, "{false_yes} false yeses in 100,000");
        let empty = KeyFilter::new(&[]);
        assert!(!may_contain(empty.probes, &empty.bits, 0));
    }

    #[test]
    fn the_literal_stays_bounded_however_many_keys() {
        let keys: Vec<i128> = (0..2_000_000).collect();
        let filter = KeyFilter::new(&keys);
        assert_eq!(filter.bits.len() * 8, 1 << MAX_BITS_LOG2);
        assert!(keys
            .iter()
            .step_by(997)
            .all(|&k| may_contain(filter.probes, &filter.bits, k)));
        let small = KeyFilter::new(&[1]);
        assert_eq!(small.literal().len(), 3 + 2 + (1 << MIN_BITS_LOG2) / 4);
        assert!(small.literal().starts_with("X'"));
    }

    #[test]
    fn pairs_pack_apart() {
        assert_ne!(pack(1, -1), pack(-1, 1));
        assert_eq!(pack(0, -1), i128::from(u64::MAX));
    }

    #[test]
    fn a_filter_of_the_wrong_shape_is_refused() {
        let good = raw(&KeyFilter::new(&[1, 2]));
        assert!(parts(&good).is_ok());
        assert!(parts(&good[..good.len() - 1]).is_err());
        assert!(parts(&[]).is_err());
        let mut no_probes = good.clone();
        no_probes[0] = 0;
        assert!(parts(&no_probes).is_err());
    }

    /// The function as a query plans and runs it (one process, DataFusion's own engine).
    fn query(sql: &str) -> Result<Vec<Option<bool>>> {
        use datafusion::prelude::SessionContext;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let ctx = SessionContext::new();
            ctx.register_udf(datafusion::logical_expr::ScalarUDF::from(MayContain::new()));
            let batches = ctx.sql(sql).await?.collect().await?;
            Ok(batches
                .iter()
                .flat_map(|b| b.column(0).as_boolean().iter().collect::<Vec<_>>())
                .collect())
        })
    }

    #[test]
    fn a_query_finds_hashes_and_pairs_and_refuses_a_bad_filter() {
        let hashes = KeyFilter::new(&[7, -7]).literal();
        let found = query(&format!(
            "SELECT {MAY_CONTAIN}({hashes}, CAST(k AS DECIMAL(38, 0))) \
             FROM (VALUES (7), (-7), (NULL)) AS t(k)"
        ))
        .unwrap();
        assert_eq!(found, [Some(true), Some(true), None]);

        let pairs = KeyFilter::new(&[pack(101, -1)]).literal();
        let found = query(&format!(
            "SELECT {MAY_CONTAIN}({pairs}, CAST(c AS BIGINT), CAST(s AS BIGINT)) \
             FROM (VALUES (101, -1)) AS t(c, s)"
        ))
        .unwrap();
        assert_eq!(found, [Some(true)]);

        let refused = query(&format!(
            "SELECT {MAY_CONTAIN}(X'0100', CAST(k AS DECIMAL(38, 0))) FROM (VALUES (1)) AS t(k)"
        ))
        .unwrap_err();
        assert!(refused.to_string().contains("power of two"), "{refused}");
    }
}
