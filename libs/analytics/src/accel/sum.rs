//! `sum_exact(value)`: SUM over whole numbers, grouped or not, with the grouped sum and count
//! done by the accelerator ([`Backend::grouped_sum_count`]) when a GPU is configured.
//!
//! The device only adds unsigned 32-bit numbers per key, so each 64-bit value is split into
//! its sign (half of the key: `group * 2 + negative`) and the two 32-bit halves of its
//! magnitude (the high halves need a second pass only when some value has one). Per group
//! the totals are recombined in 128 bits on the host: `(lo + hi << 32)` of the positives minus
//! that of the negatives, so the answer equals SQL `sum` exactly — except that a sum past the
//! 64-bit range is an error here, where `sum` would wrap.
//!
//! Without a GPU the values are added as they arrive (no buffering: as fast as `sum`). With
//! one, (key, value) pairs are buffered and handed over in dispatches of at most [`FLUSH`]
//! rows; a buffer below [`super::AccelConfig::min_rows`] is added on the CPU.
//!
//! [`Backend::grouped_sum_count`]: super::Backend::grouped_sum_count

use super::{accel, AccelError, Backend, GroupSum};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Int64Array, UInt64Array,
};
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Field, FieldRef, Int64Type, UInt64Type,
};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use std::sync::Arc;

/// Rows buffered before one dispatch (the device's sums of 32-bit halves stay below 2^64).
pub const FLUSH: usize = 1 << 22;

/// The aggregates to register.
pub fn functions() -> Vec<AggregateUDF> {
    vec![AggregateUDF::from(SumExact::default())]
}

/// Per-group totals, and the (key, value) pairs not yet added to them.
#[derive(Debug, Default)]
pub struct Sums {
    sums: Vec<i128>,
    counts: Vec<u64>,
    /// Buffer (only when a device may take it): `group * 2 + negative`.
    keys: Vec<u32>,
    lo: Vec<u32>,
    hi: Vec<u32>,
    any_hi: bool,
    /// Add as values arrive: no device to hand them to.
    direct: bool,
}

impl Sums {
    /// Buffers for the device when the process has one.
    pub fn new() -> Self {
        Self {
            direct: !accel().has_device(),
            ..Self::default()
        }
    }

    /// Adds on the CPU as values arrive.
    pub fn direct() -> Self {
        Self {
            direct: true,
            ..Self::default()
        }
    }

    fn grow(&mut self, groups: usize) -> Result<()> {
        if groups > (u32::MAX / 2) as usize {
            return exec_err!("sum_exact: too many groups ({groups})");
        }
        if groups > self.sums.len() {
            self.sums.resize(groups, 0);
            self.counts.resize(groups, 0);
        }
        Ok(())
    }

    /// Adds `v` to group `g` (below the `groups` last passed to `grow`).
    fn add(&mut self, g: usize, v: i64) -> Result<()> {
        if self.direct {
            self.sums[g] += i128::from(v);
            self.counts[g] += 1;
            return Ok(());
        }
        let m = v.unsigned_abs();
        self.keys.push(g as u32 * 2 + u32::from(v < 0));
        self.lo.push(m as u32);
        let hi = (m >> 32) as u32;
        self.any_hi |= hi != 0;
        self.hi.push(hi);
        if self.keys.len() >= FLUSH {
            self.flush()?;
        }
        Ok(())
    }

    /// Adds the buffered pairs to the totals (on the device when there are enough of them).
    pub fn flush(&mut self) -> Result<()> {
        if self.keys.is_empty() {
            return Ok(());
        }
        let groups = (self.sums.len() * 2) as u32;
        let (keys, lo, hi, any_hi) = (&self.keys, &self.lo, &self.hi, self.any_hi);
        let ((lo, hi), _) = accel()
            .run(keys.len(), |b: &dyn Backend| {
                let l = b.grouped_sum_count(keys, lo, groups)?;
                let h = if any_hi {
                    Some(b.grouped_sum_count(keys, hi, groups)?)
                } else {
                    None
                };
                Ok::<_, AccelError>((l, h))
            })
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let part = |k: usize| -> i128 {
            let high = hi.as_ref().map_or(0, |h: &Vec<GroupSum>| h[k].sum);
            i128::from(lo[k].sum) + (i128::from(high) << 32)
        };
        for g in 0..self.sums.len() {
            self.sums[g] += part(2 * g) - part(2 * g + 1);
            self.counts[g] += lo[2 * g].count + lo[2 * g + 1].count;
        }
        self.keys.clear();
        self.lo.clear();
        self.hi.clear();
        self.any_hi = false;
        Ok(())
    }

    /// Adds `values` (one row per entry of `groups`), skipping nulls and rows `filter` leaves out.
    fn update(
        &mut self,
        values: &ArrayRef,
        groups: &[usize],
        filter: Option<&BooleanArray>,
        total_groups: usize,
    ) -> Result<()> {
        self.grow(total_groups)?;
        let v = super::as_i64(values, "sum_exact")?;
        let v = v.as_primitive::<Int64Type>();
        for (i, &g) in groups.iter().enumerate() {
            if v.is_null(i) || filter.is_some_and(|f| !f.is_valid(i) || !f.value(i)) {
                continue;
            }
            self.add(g, v.value(i))?;
        }
        Ok(())
    }

    /// Adds partial states (`[sum, count]` arrays) to the totals.
    fn merge(&mut self, states: &[ArrayRef], groups: &[usize], total_groups: usize) -> Result<()> {
        self.grow(total_groups)?;
        let sums = states[0].as_primitive::<Decimal128Type>();
        let counts = states[1].as_primitive::<UInt64Type>();
        for (i, &g) in groups.iter().enumerate() {
            if !sums.is_null(i) {
                self.sums[g] += sums.value(i);
            }
            if !counts.is_null(i) {
                self.counts[g] += counts.value(i);
            }
        }
        Ok(())
    }

    /// The totals of the groups `emit` names (the rest move down), after a flush.
    fn take(&mut self, emit: EmitTo) -> Result<(Vec<i128>, Vec<u64>)> {
        self.flush()?;
        Ok((
            emit.take_needed(&mut self.sums),
            emit.take_needed(&mut self.counts),
        ))
    }

    fn evaluate(&mut self, emit: EmitTo) -> Result<Int64Array> {
        let (sums, counts) = self.take(emit)?;
        sums.iter()
            .zip(&counts)
            .map(|(&s, &c)| match (c, i64::try_from(s)) {
                (0, _) => Ok(None),
                (_, Ok(v)) => Ok(Some(v)),
                (_, Err(_)) => exec_err!("sum_exact: the sum {s} is past the 64-bit range"),
            })
            .collect()
    }

    fn state(&mut self, emit: EmitTo) -> Result<Vec<ArrayRef>> {
        let (sums, counts) = self.take(emit)?;
        Ok(vec![
            Arc::new(Decimal128Array::from(sums).with_precision_and_scale(38, 0)?),
            Arc::new(UInt64Array::from(counts)),
        ])
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.sums.capacity() * 16
            + self.counts.capacity() * 8
            + (self.keys.capacity() + self.lo.capacity() + self.hi.capacity()) * 4
    }
}

/// `sum_exact(value)`: `sum` of integers, offloadable.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SumExact {
    signature: Signature,
}

impl Default for SumExact {
    fn default() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for SumExact {
    fn name(&self) -> &str {
        "sum_exact"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args.first() {
            Some(t) if t.is_integer() || *t == DataType::Null => Ok(DataType::Int64),
            Some(t) => plan_err!("sum_exact takes whole numbers, not {t}"),
            None => plan_err!("sum_exact takes one argument"),
        }
    }

    fn accumulator(&self, _args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(One(Sums::new())))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs<'_>) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs<'_>,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(Grouped(Sums::new())))
    }

    fn state_fields(&self, _args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new("sum", DataType::Decimal128(38, 0), true)),
            Arc::new(Field::new("count", DataType::UInt64, true)),
        ])
    }
}

/// One group (no GROUP BY).
#[derive(Debug)]
struct One(Sums);

impl Accumulator for One {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let groups = vec![0; values[0].len()];
        self.0.update(&values[0], &groups, None, 1)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let groups = vec![0; states[0].len()];
        self.0.merge(states, &groups, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.0.grow(1)?;
        let v = self.0.evaluate(EmitTo::All)?;
        Ok(ScalarValue::Int64(v.is_valid(0).then(|| v.value(0))))
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.0.grow(1)?;
        self.0
            .state(EmitTo::All)?
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn size(&self) -> usize {
        self.0.size()
    }
}

/// Many groups.
#[derive(Debug)]
struct Grouped(Sums);

impl GroupsAccumulator for Grouped {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.0
            .update(&values[0], group_indices, opt_filter, total_num_groups)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.0.merge(values, group_indices, total_num_groups)
    }

    /// Each row as its own group's state: the value (null when null or filtered out) and a
    /// count of 1 or 0.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let v = super::as_i64(&values[0], "sum_exact")?;
        let v = v.as_primitive::<Int64Type>();
        let kept =
            |i: usize| v.is_valid(i) && opt_filter.is_none_or(|f| f.is_valid(i) && f.value(i));
        let sums: Decimal128Array = (0..v.len())
            .map(|i| kept(i).then(|| i128::from(v.value(i))))
            .collect();
        let counts: UInt64Array = (0..v.len()).map(|i| Some(u64::from(kept(i)))).collect();
        Ok(vec![
            Arc::new(sums.with_precision_and_scale(38, 0)?),
            Arc::new(counts),
        ])
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(Arc::new(self.0.evaluate(emit_to)?))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        self.0.state(emit_to)
    }

    fn size(&self) -> usize {
        self.0.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `rows` as one batch and emits every group.
    fn sums_of(mut s: Sums, rows: &[(usize, Option<i64>)], groups: usize) -> Vec<Option<i64>> {
        let values: ArrayRef = Arc::new(Int64Array::from(
            rows.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
        ));
        let g: Vec<usize> = rows.iter().map(|(g, _)| *g).collect();
        s.update(&values, &g, None, groups).unwrap();
        s.evaluate(EmitTo::All).unwrap().iter().collect()
    }

    fn reference(rows: &[(usize, Option<i64>)], groups: usize) -> Vec<Option<i64>> {
        let mut out = vec![None; groups];
        for (g, v) in rows {
            if let Some(v) = v {
                out[*g] = Some(out[*g].unwrap_or(0i64).wrapping_add(*v));
            }
        }
        out
    }

    fn buffered() -> Sums {
        Sums {
            direct: false,
            ..Sums::default()
        }
    }

    proptest! {
        /// Split into sign and 32-bit halves and added per key, the totals are the plain sums,
        /// negative and past 2^32 values included; buffered or direct alike.
        #[test]
        fn halves_recombine_to_the_sum(
            rows in proptest::collection::vec((0usize..5, proptest::option::of(-(1i64 << 40)..(1i64 << 40))), 0..300)
        ) {
            let want = reference(&rows, 5);
            prop_assert_eq!(sums_of(buffered(), &rows, 5), want.clone());
            prop_assert_eq!(sums_of(Sums::direct(), &rows, 5), want);
        }
    }

    #[test]
    fn extremes_and_overflow() {
        let rows = [(0, Some(i64::MIN)), (1, Some(i64::MAX)), (1, Some(-1))];
        assert_eq!(
            sums_of(buffered(), &rows, 3),
            vec![Some(i64::MIN), Some(i64::MAX - 1), None]
        );
        let mut s = buffered();
        let values: ArrayRef = Arc::new(Int64Array::from(vec![i64::MAX, 1]));
        s.update(&values, &[0, 0], None, 1).unwrap();
        let e = s.evaluate(EmitTo::All).unwrap_err().to_string();
        assert!(e.contains("past the 64-bit range"), "{e}");
    }

    /// Emitting the first groups hands over their totals and renumbers the rest.
    #[test]
    fn emit_first_shifts_the_rest() {
        let mut s = buffered();
        let values: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3, 4]));
        s.update(&values, &[0, 1, 2, 2], None, 3).unwrap();
        let first: Vec<_> = s.evaluate(EmitTo::First(2)).unwrap().iter().collect();
        assert_eq!(first, vec![Some(1), Some(2)]);
        let values: ArrayRef = Arc::new(Int64Array::from(vec![10]));
        s.update(&values, &[0], None, 1).unwrap();
        let rest: Vec<_> = s.evaluate(EmitTo::All).unwrap().iter().collect();
        assert_eq!(rest, vec![Some(17)]);
    }

    /// Partial states merge into the same totals; filtered-out rows do not count.
    #[test]
    fn states_merge_and_filters_apply() {
        let mut a = buffered();
        let values: ArrayRef = Arc::new(Int64Array::from(vec![5, -7, 9]));
        let filter = BooleanArray::from(vec![true, true, false]);
        a.update(&values, &[0, 1, 1], Some(&filter), 2).unwrap();
        let state = a.state(EmitTo::All).unwrap();
        let mut b = Sums::direct();
        b.merge(&state, &[1, 0], 2).unwrap();
        b.merge(&state, &[1, 0], 2).unwrap();
        let got: Vec<_> = b.evaluate(EmitTo::All).unwrap().iter().collect();
        assert_eq!(got, vec![Some(-14), Some(10)]);
    }

    /// From SQL, on the machine's (software) adapter: the same numbers as `sum`, grouped and
    /// not, computed on the device above the row threshold.
    #[cfg(feature = "gpu")]
    #[tokio::test]
    async fn sum_exact_runs_on_the_gpu_and_matches_sum() {
        let a = crate::accel::configure(crate::accel::AccelConfig {
            allow_software: true,
            min_rows: 100_000,
            ..Default::default()
        });
        assert!(
            a.hardware().selected.is_some(),
            "no adapter: {:?}",
            a.hardware()
        );
        let before = a.hardware().offloaded;
        let tables = crate::Tables::default().snapshot().unwrap();
        let sql = "SELECT value % 97 AS k, sum_exact(v) AS ours, sum(v) AS reference, count(v) AS n \
                   FROM (SELECT value, CASE WHEN value % 5 = 0 THEN -(value * 1000003) \
                   WHEN value % 11 = 0 THEN NULL ELSE value * 4294967 END AS v FROM range(0, 400000)) \
                   GROUP BY 1 ORDER BY 1";
        let got = crate::query::run(&tables, 0, sql, &crate::Limits::default())
            .await
            .unwrap();
        let rows = crate::encode::json_rows(&got).unwrap();
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 97);
        for r in rows {
            assert_eq!(r["ours"], r["reference"], "{r}");
        }
        assert!(
            a.hardware().offloaded > before,
            "ran on the CPU: {:?}",
            a.hardware()
        );
        let sql = "SELECT sum_exact(value) AS ours, sum(value) AS reference FROM range(0, 300000)";
        let got = crate::query::run(&tables, 0, sql, &crate::Limits::default())
            .await
            .unwrap();
        let rows = crate::encode::json_rows(&got).unwrap();
        assert_eq!(rows[0]["ours"], rows[0]["reference"], "{rows}");
        let e = crate::query::run(
            &tables,
            0,
            "SELECT sum_exact(0.5)",
            &crate::Limits::default(),
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string().contains("sum_exact takes whole numbers"),
            "{e}"
        );
    }
}
