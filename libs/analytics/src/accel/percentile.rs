//! Exact percentiles by radix select over two 16-bit digit histograms (one pass for the high
//! digit, one for the low digit among values with that high digit), so a [`Backend`] computes
//! the counting and the answer is exact; and `percentile_exact(value, p)`, the SQL aggregate.

use super::{accel, AccelError, Backend, Ran};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, UInt32Array};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use std::sync::Arc;

/// The `k`-th smallest (0-based) of `values` (`k < values.len()`).
pub fn kth(b: &dyn Backend, values: &[u32], k: u64) -> Result<u32, AccelError> {
    let high = b.digit_histogram(values, 16, None)?;
    let (h, k) = find(&high, k);
    let low = b.digit_histogram(values, 0, Some((h, 16)))?;
    let (l, _) = find(&low, k);
    Ok((h << 16) | l)
}

/// The bucket holding rank `k`, and the rank within it.
fn find(hist: &[u64], mut k: u64) -> (u32, u64) {
    for (i, &c) in hist.iter().enumerate() {
        if k < c {
            return (i as u32, k);
        }
        k -= c;
    }
    // k was past the end: the last non-empty bucket (not reached for k < len).
    (hist.iter().rposition(|&c| c > 0).unwrap_or(0) as u32, 0)
}

/// `percentile_cont(p)` of `values` (linear interpolation between the closest ranks, its
/// weight quantized to 1e-6 as DataFusion's `percentile_cont` does), exactly; None for no values.
pub fn percentile(values: &[u32], p: f64) -> Result<Option<(f64, Ran)>, AccelError> {
    if values.is_empty() {
        return Ok(None);
    }
    let rank = p * (values.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as u64, rank.ceil() as u64);
    let ((a, b), ran) = accel().run(values.len(), |be| {
        let a = kth(be, values, lo)?;
        let b = if hi == lo { a } else { kth(be, values, hi)? };
        Ok((a, b))
    })?;
    // As DataFusion's percentile_cont interpolates (the weight quantized to 1e-6), so the two
    // agree to the bit.
    let weight = ((rank - lo as f64) * 1e6).floor() / 1e6;
    let (a, b) = (f64::from(a), f64::from(b));
    Ok(Some((a + (b - a) * weight, ran)))
}

/// The aggregates to register.
pub fn functions() -> Vec<AggregateUDF> {
    vec![AggregateUDF::from(PercentileExact::default())]
}

/// `percentile_exact(value, p)`: `percentile_cont(p)` of whole numbers 0..=4294967295,
/// offloaded to the GPU for large inputs when one is configured.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PercentileExact {
    signature: Signature,
}

impl Default for PercentileExact {
    fn default() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

fn values_field(name: &str) -> FieldRef {
    Arc::new(Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", DataType::UInt32, true))),
        true,
    ))
}

impl AggregateUDFImpl for PercentileExact {
    fn name(&self) -> &str {
        "percentile_exact"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Acc::default()))
    }

    fn state_fields(&self, _args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        Ok(vec![
            values_field("values"),
            Arc::new(Field::new("p", DataType::Float64, true)),
        ])
    }
}

#[derive(Debug, Default)]
struct Acc {
    values: Vec<u32>,
    p: Option<f64>,
}

impl Acc {
    fn set_p(&mut self, p: f64) -> Result<()> {
        if !(0.0..=1.0).contains(&p) {
            return exec_err!("percentile_exact(value, p): p must be in [0, 1], not {p}");
        }
        match self.p {
            Some(q) if q != p => {
                exec_err!("percentile_exact(value, p): p must be the same for every row")
            }
            _ => {
                self.p = Some(p);
                Ok(())
            }
        }
    }
}

impl Accumulator for Acc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let v = super::as_i64(&values[0], "percentile_exact")?;
        let v = v.as_primitive::<Int64Type>();
        let p = cast(&values[1], &DataType::Float64)?;
        let p = p.as_primitive::<Float64Type>();
        for i in 0..v.len() {
            if !p.is_null(i) {
                self.set_p(p.value(i))?;
            }
            if v.is_null(i) {
                continue;
            }
            match u32::try_from(v.value(i)) {
                Ok(x) => self.values.push(x),
                Err(_) => {
                    return exec_err!(
                        "percentile_exact takes whole numbers 0..=4294967295, not {}",
                        v.value(i)
                    )
                }
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let Some(p) = self.p else {
            return Ok(ScalarValue::Float64(None));
        };
        let got = percentile(&self.values, p)
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        Ok(ScalarValue::Float64(got.map(|(v, _)| v)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * 4
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let list = ListArray::new(
            Arc::new(Field::new("item", DataType::UInt32, true)),
            OffsetBuffer::from_lengths([self.values.len()]),
            Arc::new(UInt32Array::from(std::mem::take(&mut self.values))),
            None,
        );
        Ok(vec![
            ScalarValue::List(Arc::new(list)),
            ScalarValue::Float64(self.p),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        let ps = states[1].as_primitive::<Float64Type>();
        for i in 0..lists.len() {
            if !ps.is_null(i) {
                self.set_p(ps.value(i))?;
            }
            if lists.is_null(i) {
                continue;
            }
            let v = lists.value(i);
            let v = v.as_any().downcast_ref::<UInt32Array>().ok_or_else(|| {
                datafusion::error::DataFusionError::Internal("percentile_exact state".into())
            })?;
            self.values.extend(v.iter().flatten());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accel::Cpu;
    use proptest::prelude::*;

    proptest! {
        /// The radix select agrees with sorting, for any values and rank.
        #[test]
        fn kth_is_the_sorted_rank(mut v in proptest::collection::vec(any::<u32>(), 1..300), k in any::<prop::sample::Index>()) {
            let k = k.index(v.len());
            let got = kth(&Cpu, &v, k as u64).unwrap();
            v.sort_unstable();
            prop_assert_eq!(got, v[k]);
        }
    }

    #[test]
    fn percentiles_interpolate_like_percentile_cont() {
        let v = [10, 20, 30, 40];
        let (p50, _) = percentile(&v, 0.5).unwrap().unwrap();
        assert_eq!(p50, 25.0);
        let (p90, _) = percentile(&v, 0.9).unwrap().unwrap();
        assert!((p90 - 37.0).abs() < 1e-12, "{p90}");
        assert_eq!(percentile(&[], 0.5).unwrap(), None);
        assert_eq!(percentile(&[7], 0.99).unwrap().map(|(v, _)| v), Some(7.0));
    }

    /// From SQL, on the machine's (software) adapter: the same numbers as `percentile_cont`,
    /// computed on the device above the row threshold and on the CPU below it.
    #[cfg(feature = "gpu")]
    #[tokio::test]
    async fn percentile_exact_runs_on_the_gpu_above_its_threshold_and_matches_the_cpu() {
        let a = crate::accel::configure(crate::accel::AccelConfig {
            allow_software: true,
            min_rows: 100_000,
            ..Default::default()
        });
        let hw = a.hardware();
        assert!(hw.selected.is_some(), "no adapter: {hw:?}");
        let before = hw.offloaded;
        let tables = crate::Tables::default().snapshot().unwrap();
        let sql = "SELECT percentile_exact(v, 0.9) AS ours, \
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY v) AS reference \
                   FROM (SELECT (value * 7919) % 1000003 AS v FROM range(0, 300000))";
        let got = crate::query::run(&tables, 0, sql, &crate::Limits::default())
            .await
            .unwrap();
        let rows = crate::encode::json_rows(&got).unwrap();
        assert_eq!(rows[0]["ours"], rows[0]["reference"], "{rows}");
        assert!(
            a.hardware().offloaded > before,
            "ran on the CPU: {:?}",
            a.hardware()
        );
        // Below the threshold: the CPU, the same answer.
        let before = a.hardware().offloaded;
        let sql = "SELECT percentile_exact(value, 0.5) AS ours, \
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS reference FROM range(0, 1001)";
        let got = crate::query::run(&tables, 0, sql, &crate::Limits::default())
            .await
            .unwrap();
        let rows = crate::encode::json_rows(&got).unwrap();
        assert_eq!(rows[0]["ours"], rows[0]["reference"], "{rows}");
        assert_eq!(a.hardware().offloaded, before);
        // Bad input says what is wrong.
        let e = crate::query::run(
            &tables,
            0,
            "SELECT percentile_exact(value - 5, 0.5) FROM range(0, 3)",
            &crate::Limits::default(),
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string().contains("whole numbers 0..=4294967295"),
            "{e}"
        );
    }
}
