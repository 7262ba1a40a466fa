//! Takes a string column; gives `sla_id_hash(text)`, the 128-bit XXH3 hash of each value's
//! UTF-8 bytes as a `DECIMAL(38, 0)` holding its 128 bits (null for null): the polars engine's
//! request id hash (`key::id_hash`), so both engines take the same rows for one call. The
//! queries group request ids by it: one fixed-width primitive key per row costs a fraction of
//! one string per row, and shuffles 16 bytes a row. Two different ids of 10^9 rows share a
//! hash with a chance below 10^-20.
//!
//! Every member of a cluster plans or runs the queries that name it, so the client's session,
//! the scheduler's sessions and the executors' function registries all hold it
//! ([`functions`]).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Decimal128Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use xxhash_rust::xxh3::xxh3_128;

use super::key_filter::MayContain;

/// The name the queries call it by.
pub(crate) const ID_HASH: &str = "sla_id_hash";

/// The hash of one id, as `sla_id_hash` gives it (its bits as they are, read as signed).
fn id_hash(text: &str) -> i128 {
    xxh3_128(text.as_bytes()) as i128
}

/// `DECIMAL(38, 0)`: Arrow's 128-bit primitive, which DataFusion groups and joins as one key.
const HASH_TYPE: DataType = DataType::Decimal128(38, 0);

/// The scalar functions the heavy step's queries use beyond DataFusion's own: this one and
/// the Bloom filter test of [`super::key_filter`].
pub(crate) fn functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(IdHash::new())),
        Arc::new(ScalarUDF::from(MayContain::new())),
    ]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IdHash {
    signature: Signature,
}

impl IdHash {
    fn new() -> IdHash {
        IdHash {
            signature: Signature::string(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for IdHash {
    fn name(&self) -> &str {
        ID_HASH
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(HASH_TYPE)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("{ID_HASH} takes one argument");
        };
        let array = arg.to_array(args.number_rows)?;
        let hashes = hash_strings(&array)?;
        Ok(ColumnarValue::Array(Arc::new(hashes)))
    }
}

fn hash_strings(array: &ArrayRef) -> Result<Decimal128Array> {
    fn each<'a>(values: impl Iterator<Item = Option<&'a str>>) -> Decimal128Array {
        values.map(|value| value.map(id_hash)).collect()
    }
    let hashes = match array.data_type() {
        DataType::Utf8View => each(array.as_string_view().iter()),
        DataType::Utf8 => each(array.as_string::<i32>().iter()),
        DataType::LargeUtf8 => each(array.as_string::<i64>().iter()),
        other => return exec_err!("{ID_HASH} takes a string, not {other}"),
    };
    // Any 128 bits: the precision is the type's name, not a bound on the values.
    Ok(hashes.with_precision_and_scale(38, 0)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, StringArray, StringViewArray};

    #[test]
    fn every_string_layout_hashes_alike_and_null_stays_null() {
        let plain: ArrayRef = Arc::new(StringArray::from(vec![Some("a-1"), None]));
        let view: ArrayRef = Arc::new(StringViewArray::from(vec![Some("a-1"), None]));
        let (plain, view) = (hash_strings(&plain).unwrap(), hash_strings(&view).unwrap());
        assert_eq!(plain, view);
        assert_eq!(plain.value(0), id_hash("a-1"));
        assert!(plain.is_null(1));
    }
}
