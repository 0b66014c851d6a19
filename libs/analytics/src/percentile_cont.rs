//! `percentile_cont` over `DOUBLE` by radix selection.
//!
//! DataFusion's `percentile_cont` collects each group's values and, to answer, runs
//! `select_nth_unstable_by` (a comparison quickselect) once for the lower rank and again, over
//! the whole group, for the upper one — two full selections per percentile, on the one thread
//! that finalizes the group. That was most of the approval-wait KPI's time at 10M events
//! (docs/benchmarks.md). Here the values are mapped to unsigned integers in the same total
//! order as `f64::total_cmp` (which is DataFusion's order for floats: -NaN < -inf < … < -0 <
//! +0 < … < +inf < NaN), and the lower rank is found by radix selection — a histogram of one
//! 11-bit digit, keep the bucket that holds the rank, next digit — starting at the highest bit
//! where the group's values differ; the upper rank is then either the same value or the
//! smallest value above it (one linear pass). The interpolation is DataFusion's, weight
//! quantized to 1e-6, so the answers are the same to the bit (property-tested against the
//! built-in).
//!
//! Everything else — the name, aliases, signature, coercions, simplification of 0 and 1 to
//! `min`/`max`, the state's layout (a list of the values, so partial states from either
//! implementation merge), `DISTINCT`, `FLOAT`/`HALF`, windows — is the built-in's, which this
//! wraps. No crate offers a float radix select over Arrow buffers (`radsort` sorts; a sort is
//! O(n log n) work where one rank is needed), so it is written here.

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, ListArray, PrimitiveArray,
};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::functions_aggregate::percentile_cont::PercentileCont;
use datafusion::logical_expr::expr::{
    AggregateFunction, AggregateFunctionParams, WindowFunctionParams,
};
use datafusion::logical_expr::function::{
    AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs,
};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, EmitTo, Expr, GroupsAccumulator,
    ReversedUDAF, SetMonotonicity, Signature, StatisticsArgs,
};
use datafusion::physical_expr::expressions::Literal;
use std::sync::Arc;

/// The function to register (it replaces the built-in of the same name).
pub fn function() -> AggregateUDF {
    AggregateUDF::from(RadixPercentileCont::default())
}

/// Whether `f` is this crate's `percentile_cont`.
pub(crate) fn is_ours(f: &AggregateUDF) -> bool {
    f.inner().as_ref().is::<RadixPercentileCont>()
}

#[derive(Debug, Default, PartialEq, Eq, Hash)]
struct RadixPercentileCont {
    inner: PercentileCont,
}

/// The percentile a `percentile_cont` call computes over ascending values: its literal
/// argument (after coercion a `DOUBLE` in [0, 1]), mirrored for `ORDER BY … DESC`. None for
/// anything else — the built-in then answers (with its error where it is one).
fn percentile_of(args: &AccumulatorArgs<'_>) -> Option<f64> {
    let lit = args.exprs.get(1)?.downcast_ref::<Literal>()?;
    let &ScalarValue::Float64(Some(p)) = lit.value() else {
        return None;
    };
    if !(0.0..=1.0).contains(&p) {
        return None;
    }
    let descending = args.order_bys.first().is_some_and(|s| s.options.descending);
    Some(if descending { 1.0 - p } else { p })
}

// Delegates every method but `create_groups_accumulator`, so that it behaves as the built-in.
impl AggregateUDFImpl for RadixPercentileCont {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        self.inner.return_field(arg_fields)
    }
    fn is_nullable(&self) -> bool {
        self.inner.is_nullable()
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn schema_name(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.inner.schema_name(params)
    }
    fn human_display(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.inner.human_display(params)
    }
    fn display_name(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.inner.display_name(params)
    }
    fn window_function_schema_name(&self, params: &WindowFunctionParams) -> Result<String> {
        self.inner.window_function_schema_name(params)
    }
    fn window_function_display_name(&self, params: &WindowFunctionParams) -> Result<String> {
        self.inner.window_function_display_name(params)
    }
    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }
    fn accumulator(&self, args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        self.inner.accumulator(args)
    }
    fn create_sliding_accumulator(
        &self,
        args: AccumulatorArgs<'_>,
    ) -> Result<Box<dyn Accumulator>> {
        self.inner.create_sliding_accumulator(args)
    }
    fn groups_accumulator_supported(&self, args: AccumulatorArgs<'_>) -> bool {
        self.inner.groups_accumulator_supported(args)
    }
    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs<'_>,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        match percentile_of(&args) {
            Some(p)
                if !args.is_distinct && args.expr_fields[0].data_type() == &DataType::Float64 =>
            {
                Ok(Box::new(RadixGroups::new(p)))
            }
            _ => self.inner.create_groups_accumulator(args),
        }
    }
    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.order_sensitivity()
    }
    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        self.inner.simplify()
    }
    fn simplify_expr_op_literal(
        &self,
        agg_function: &AggregateFunction,
        arg: &Expr,
        op: datafusion::logical_expr::Operator,
        lit: &Expr,
        arg_is_left: bool,
    ) -> Result<Option<Expr>> {
        self.inner
            .simplify_expr_op_literal(agg_function, arg, op, lit, arg_is_left)
    }
    fn reverse_expr(&self) -> ReversedUDAF {
        self.inner.reverse_expr()
    }
    fn is_descending(&self) -> Option<bool> {
        self.inner.is_descending()
    }
    fn value_from_stats(&self, statistics_args: &StatisticsArgs<'_>) -> Option<ScalarValue> {
        self.inner.value_from_stats(statistics_args)
    }
    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        self.inner.default_value(data_type)
    }
    fn supports_null_handling_clause(&self) -> bool {
        self.inner.supports_null_handling_clause()
    }
    fn supports_within_group_clause(&self) -> bool {
        self.inner.supports_within_group_clause()
    }
    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner.set_monotonicity(data_type)
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// Each group's values, as the built-in keeps them; answered by [`percentile`].
#[derive(Debug)]
struct RadixGroups {
    groups: Vec<Vec<f64>>,
    percentile: f64,
}

impl RadixGroups {
    fn new(percentile: f64) -> Self {
        Self {
            groups: Vec::new(),
            percentile,
        }
    }
}

/// Whether row `i` counts: a value, and the filter (if any) true.
fn kept(values: &Float64Array, filter: Option<&BooleanArray>, i: usize) -> bool {
    values.is_valid(i) && filter.is_none_or(|f| f.is_valid(i) && f.value(i))
}

impl GroupsAccumulator for RadixGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, Vec::new);
        let values = values[0].as_primitive::<Float64Type>();
        let data = values.values();
        if values.null_count() == 0 && opt_filter.is_none() {
            for (&g, &v) in group_indices.iter().zip(data.iter()) {
                self.groups[g].push(v);
            }
        } else {
            for (i, &g) in group_indices.iter().enumerate() {
                if kept(values, opt_filter, i) {
                    self.groups[g].push(data[i]);
                }
            }
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, Vec::new);
        let lists = values[0].as_list::<i32>();
        for (&g, list) in group_indices.iter().zip(lists.iter()) {
            if let Some(list) = list {
                // The built-in's states hold no nulls; skip any all the same.
                let list = list.as_primitive::<Float64Type>();
                if list.null_count() == 0 {
                    self.groups[g].extend_from_slice(list.values());
                } else {
                    self.groups[g].extend(list.iter().flatten());
                }
            }
        }
        Ok(())
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = emit_to.take_needed(&mut self.groups);
        let offsets = OffsetBuffer::from_lengths(groups.iter().map(Vec::len));
        let mut flat = Vec::with_capacity(groups.iter().map(Vec::len).sum());
        for g in &groups {
            flat.extend_from_slice(g);
        }
        let list = ListArray::new(
            Arc::new(Field::new_list_field(DataType::Float64, true)),
            offsets,
            Arc::new(PrimitiveArray::<Float64Type>::new(
                ScalarBuffer::from(flat),
                None,
            )),
            None,
        );
        Ok(vec![Arc::new(list)])
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let groups = emit_to.take_needed(&mut self.groups);
        let answers: Float64Array = groups
            .into_iter()
            .map(|values| percentile(values, self.percentile))
            .collect();
        Ok(Arc::new(answers))
    }

    /// Each row its own group: a list of its value, or NULL where the value is NULL or the
    /// filter leaves the row out (as the built-in does).
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let values = values[0].as_primitive::<Float64Type>();
        let kept = BooleanBuffer::collect_bool(values.len(), |i| kept(values, opt_filter, i));
        let list = ListArray::new(
            Arc::new(Field::new_list_field(DataType::Float64, true)),
            OffsetBuffer::from_lengths(std::iter::repeat_n(1, values.len())),
            Arc::new(PrimitiveArray::<Float64Type>::new(
                values.values().clone(),
                None,
            )),
            Some(NullBuffer::new(kept)),
        );
        Ok(vec![Arc::new(list)])
    }

    fn size(&self) -> usize {
        self.groups.capacity() * size_of::<Vec<f64>>()
            + self
                .groups
                .iter()
                .map(|g| g.capacity() * size_of::<f64>())
                .sum::<usize>()
    }
}

/// `v`'s place in `f64::total_cmp`'s order, as an unsigned integer.
fn key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | 1 << 63
    }
}

/// The value whose [`key`] is `k`.
fn value(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// The interpolation weight of DataFusion's `percentile_cont` (quantized to 1e-6).
fn weight(rank: f64, lower: usize) -> f64 {
    const PRECISION: f64 = 1_000_000.0;
    ((rank - lower as f64) * PRECISION) as usize as f64 / PRECISION
}

/// `percentile_cont(p)` of `values` (p in [0, 1]) as DataFusion's answers it; None for none.
pub(crate) fn percentile(values: Vec<f64>, p: f64) -> Option<f64> {
    let len = values.len();
    if len <= 1 {
        return values.first().copied();
    }
    // In place: a Vec<f64> collected into a Vec<u64> keeps its allocation.
    let mut keys: Vec<u64> = values.into_iter().map(key).collect();
    let rank = p * (len - 1) as f64;
    let (lower, upper) = (rank.floor() as usize, rank.ceil() as usize);
    let low = select(&mut keys, lower);
    if lower == upper {
        return Some(value(low));
    }
    // The next rank: the same value when it repeats past `lower`, else the least above it.
    let (mut at_most, mut above) = (0usize, u64::MAX);
    for &k in &keys {
        if k <= low {
            at_most += 1;
        } else if k < above {
            above = k;
        }
    }
    let high = if at_most > upper { low } else { above };
    let (lo, hi) = (value(low), value(high));
    Some(lo + (hi - lo) * weight(rank, lower))
}

/// Bits per radix digit: 2,048 counters fit in the L1 cache.
const DIGIT: u32 = 11;

/// The `k`-th smallest (0-based) of `keys` (k < len); reorders `keys`.
fn select(keys: &mut [u64], mut k: usize) -> u64 {
    let (mut min, mut max) = (u64::MAX, 0u64);
    for &x in keys.iter() {
        min = min.min(x);
        max = max.max(x);
    }
    // Bits above the highest one where the values differ are the same in all of them.
    let mut top = 64 - (min ^ max).leading_zeros();
    let mut len = keys.len();
    let mut counts = [0usize; 1 << DIGIT];
    while top > 0 && len > 32 {
        let shift = top.saturating_sub(DIGIT);
        let mask = (1u64 << (top - shift)) - 1;
        let digit = |x: u64| ((x >> shift) & mask) as usize;
        counts.fill(0);
        for &x in &keys[..len] {
            counts[digit(x)] += 1;
        }
        let mut bucket = 0;
        while k >= counts[bucket] {
            k -= counts[bucket];
            bucket += 1;
        }
        // Keep the bucket's values at the front.
        let mut kept = 0;
        for i in 0..len {
            if digit(keys[i]) == bucket {
                keys.swap(kept, i);
                kept += 1;
            }
        }
        len = kept;
        top = shift;
    }
    if top == 0 {
        // All that are left are the same value.
        return keys[0];
    }
    let rest = &mut keys[..len];
    rest.sort_unstable();
    rest[k]
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::Schema;
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::datasource::MemTable;
    use datafusion::execution::FunctionRegistry;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use proptest::prelude::*;

    /// The definition: sort, take the two closest ranks, interpolate as DataFusion does.
    fn by_sorting(mut values: Vec<f64>, p: f64) -> Option<f64> {
        values.sort_by(f64::total_cmp);
        let len = values.len();
        if len <= 1 {
            return values.first().copied();
        }
        let rank = p * (len - 1) as f64;
        let (lower, upper) = (rank.floor() as usize, rank.ceil() as usize);
        let (lo, hi) = (values[lower], values[upper]);
        Some(if lower == upper {
            lo
        } else {
            lo + (hi - lo) * weight(rank, lower)
        })
    }

    fn same(a: Option<f64>, b: Option<f64>) -> bool {
        a.map(f64::to_bits) == b.map(f64::to_bits)
    }

    #[test]
    fn keys_keep_the_total_order_and_come_back() {
        let mut values = vec![
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            1.5,
            -1.5,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            5e-324,
        ];
        for v in &values {
            assert_eq!(value(key(*v)).to_bits(), v.to_bits());
        }
        let mut by_key = values.clone();
        by_key.sort_by_key(|v| key(*v));
        values.sort_by(f64::total_cmp);
        assert_eq!(
            by_key.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }

    fn values() -> impl Strategy<Value = Vec<f64>> {
        let one = prop_oneof![
            4 => (0u32..2_000_000).prop_map(|ms| f64::from(ms) / 1000.0),
            2 => any::<f64>(),
            1 => (-3i8..3).prop_map(f64::from),
            1 => Just(f64::NAN),
            1 => Just(-0.0),
        ];
        prop::collection::vec(one, 0..3000)
    }

    proptest! {
        #[test]
        fn radix_selection_answers_as_sorting(values in values(), p in prop_oneof![0.0..=1.0, Just(0.0), Just(1.0), Just(0.5), Just(0.9)]) {
            let want = by_sorting(values.clone(), p);
            let got = percentile(values, p);
            prop_assert!(same(got, want), "{got:?} != {want:?}");
        }
    }

    /// `statements` over a table of `rows` (group, value, whole number, flag) split into
    /// `parts` partitions: the built-in's answers, then ours.
    async fn both(
        rows: &[(Option<&'static str>, Option<f64>, i64, bool)],
        parts: usize,
        statements: &[String],
    ) -> Vec<(Vec<RecordBatch>, Vec<RecordBatch>)> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("g", DataType::Utf8, true),
            Field::new("v", DataType::Float64, true),
            Field::new("i", DataType::Int64, false),
            Field::new("f", DataType::Boolean, false),
        ]));
        let per = rows.len().div_ceil(parts).max(1);
        let mut partitions: Vec<Vec<RecordBatch>> = rows
            .chunks(per)
            .map(|c| {
                let batch = RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(StringArray::from_iter(c.iter().map(|r| r.0))),
                        Arc::new(Float64Array::from_iter(c.iter().map(|r| r.1))),
                        Arc::new(Int64Array::from_iter_values(c.iter().map(|r| r.2))),
                        Arc::new(BooleanArray::from_iter(c.iter().map(|r| Some(r.3)))),
                    ],
                )
                .unwrap();
                vec![batch]
            })
            .collect();
        if partitions.is_empty() {
            // An empty table: one partition without batches (a table needs at least one).
            partitions.push(Vec::new());
        }
        let mut contexts = Vec::new();
        for ours in [false, true] {
            let config = SessionConfig::new().with_target_partitions(parts.max(1));
            let ctx = SessionContext::new_with_config(config);
            if ours {
                ctx.register_udaf(function());
                let f = ctx.udaf("percentile_cont").unwrap();
                assert!(f.inner().as_ref().is::<RadixPercentileCont>());
            }
            let t = MemTable::try_new(schema.clone(), partitions.clone()).unwrap();
            ctx.register_table("t", Arc::new(t)).unwrap();
            contexts.push(ctx);
        }
        let mut out = Vec::new();
        for sql in statements {
            let mut answers = Vec::new();
            for ctx in &contexts {
                answers.push(ctx.sql(sql).await.unwrap().collect().await.unwrap());
            }
            let ours = answers.pop().unwrap();
            out.push((answers.pop().unwrap(), ours));
        }
        out
    }

    fn rows() -> impl Strategy<Value = Vec<(Option<&'static str>, Option<f64>, i64, bool)>> {
        let group = prop_oneof![
            Just(Some("a")),
            Just(Some("b")),
            Just(Some("c")),
            Just(None)
        ];
        let value = prop_oneof![
            6 => (0u32..100_000).prop_map(|ms| Some(f64::from(ms) / 1000.0)),
            1 => any::<f64>().prop_map(Some),
            1 => Just(None),
        ];
        prop::collection::vec((group, value, -50i64..50, any::<bool>()), 0..400)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// In SQL, grouped and not, ascending and descending, with FILTER, NULLs, whole
        /// numbers (coerced) and 1–3 partitions: the built-in's answers, to the bit.
        #[test]
        fn same_answers_as_the_built_in(rows in rows(), parts in 1usize..4, p in 0.0f64..=1.0) {
            let statements = vec![
                format!(
                    "SELECT g, count(*) AS n, \
                     percentile_cont(0.5) WITHIN GROUP (ORDER BY v) AS p50, \
                     percentile_cont({p}) WITHIN GROUP (ORDER BY v) AS p, \
                     percentile_cont({p}) WITHIN GROUP (ORDER BY v DESC) AS p_desc, \
                     percentile_cont(0.9) WITHIN GROUP (ORDER BY v) FILTER (WHERE f) AS p90_f, \
                     quantile_cont(i, 0.25) AS q25_i, \
                     percentile_cont(0.75) WITHIN GROUP (ORDER BY v / 3.0) AS p75_expr \
                     FROM t GROUP BY g ORDER BY g NULLS FIRST"
                ),
                format!("SELECT percentile_cont({p}) WITHIN GROUP (ORDER BY v) FROM t"),
            ];
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            for (theirs, ours) in rt.block_on(both(&rows, parts, &statements)) {
                prop_assert_eq!(theirs, ours);
            }
        }
    }

    #[test]
    fn an_empty_table_answers_as_the_built_in() {
        let statements = vec![
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v) FROM t".to_string(),
            "SELECT g, percentile_cont(0.9) WITHIN GROUP (ORDER BY v) FROM t GROUP BY g"
                .to_string(),
        ];
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for (theirs, ours) in rt.block_on(both(&[], 1, &statements)) {
            assert_eq!(theirs, ours);
        }
    }

    #[test]
    fn large_groups_of_close_values() {
        // Many values sharing their high bits, with repeats: several digit rounds.
        let values: Vec<f64> = (0..200_000u32)
            .map(|i| 1000.0 + f64::from(i.wrapping_mul(2_654_435_761) % 50_000) / 1024.0)
            .collect();
        for p in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999_9, 1.0] {
            assert!(same(
                percentile(values.clone(), p),
                by_sorting(values.clone(), p)
            ));
        }
    }
}
