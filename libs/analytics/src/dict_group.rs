//! Grouping by one dictionary-encoded string column without hashing a string per row.
//!
//! The `events` table keeps its few-valued strings (event type, aggregate type, service,
//! actor) dictionary-encoded: each batch holds its distinct values once and a small integer
//! per row. DataFusion 55 groups a dictionary column through its generic row format (every
//! row's string encoded, hashed and compared). This rule gives the common case — `GROUP BY`
//! one dictionary column, aggregates that have a [`GroupsAccumulator`] — an operator that maps
//! each batch's few dictionary values to group numbers once and then uses the row's key as its
//! group: no per-row hashing; `count(*)` adds up rows per dictionary index. DataFusion's own
//! accumulators do the rest, so the answers are DataFusion's (property-tested against it
//! below); anything else (several grouping columns, DISTINCT, ordered aggregates, grouping
//! sets, a limit on groups) stays with DataFusion's `AggregateExec`.
//!
//! DataFusion has no extension point for its group-by's key handling (`GroupValues` is
//! internal), hence an operator of our own in place of the first-stage `AggregateExec`.

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int32Type, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{internal_datafusion_err, Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{ColumnarValue, EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode, PhysicalExpr, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::sync::Arc;

/// The physical optimizer rule (runs after DataFusion's own).
#[derive(Debug, Default)]
pub struct DictionaryGroupBy;

impl PhysicalOptimizerRule for DictionaryGroupBy {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let rewritten = node
                .downcast_ref::<AggregateExec>()
                .and_then(DictionaryAggregateExec::replacing);
            Ok(match rewritten {
                Some(exec) => Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "dictionary_group_by"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The first (or only) stage of an aggregate grouped by one dictionary column of strings:
/// same input, output, partitioning and ordering as the [`AggregateExec`] it replaces.
#[derive(Debug, Clone)]
pub struct DictionaryAggregateExec {
    /// The aggregate replaced: its expressions, schema and plan properties are ours.
    aggregate: Arc<AggregateExec>,
    /// The grouping column's index in the input.
    column: usize,
    metrics: ExecutionPlanMetricsSet,
}

impl DictionaryAggregateExec {
    /// The operator for `agg` when it is a case this handles.
    fn replacing(agg: &AggregateExec) -> Option<Self> {
        let raw_input = matches!(
            agg.mode(),
            AggregateMode::Partial | AggregateMode::Single | AggregateMode::SinglePartitioned
        );
        let group = agg.group_expr();
        if !raw_input
            || !group.is_single()
            || group.expr().len() != 1
            || agg.limit_options().is_some()
            || *agg.input_order_mode() != InputOrderMode::Linear
            || !agg.dynamic_expressions_produced().is_empty()
        {
            return None;
        }
        let column = group.expr()[0].0.downcast_ref::<Column>()?.index();
        let input = agg.input_schema();
        match input.fields().get(column)?.data_type() {
            DataType::Dictionary(_, values) if **values == DataType::Utf8 => {}
            _ => return None,
        }
        // An ordered aggregate's accumulator may need the ordering columns as well (DataFusion
        // passes them after the arguments); ours passes the arguments only. `percentile_cont`'s
        // ordering is its argument: its accumulators read that and nothing else.
        let simple = agg.aggr_expr().iter().all(|a| {
            !a.is_distinct()
                && (a.order_bys().is_empty() || crate::percentile_cont::is_ours(a.fun()))
                && a.groups_accumulator_supported()
        });
        simple.then(|| Self {
            aggregate: Arc::new(agg.clone()),
            column,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    fn input(&self) -> &Arc<dyn ExecutionPlan> {
        self.aggregate.input()
    }
}

impl DisplayAs for DictionaryAggregateExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (expr, name) = &self.aggregate.group_expr().expr()[0];
        let names: Vec<&str> = self
            .aggregate
            .aggr_expr()
            .iter()
            .map(|a| a.name())
            .collect();
        write!(
            f,
            "DictionaryAggregateExec: mode={:?}, gby=[{expr} as {name}], aggr=[{}]",
            self.aggregate.mode(),
            names.join(", ")
        )
    }
}

impl ExecutionPlan for DictionaryAggregateExec {
    fn name(&self) -> &'static str {
        "DictionaryAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.aggregate.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.input()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.aggregate.apply_expressions(f)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let aggregate = Arc::clone(&self.aggregate).replace_children(children, options)?;
        // The new aggregate is still one this handles unless the input's type changed: then
        // it stays DataFusion's.
        Ok(
            match aggregate
                .downcast_ref::<AggregateExec>()
                .and_then(Self::replacing)
            {
                Some(exec) => Arc::new(exec),
                None => aggregate,
            },
        )
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let agg = &self.aggregate;
        let aggregates = agg
            .aggr_expr()
            .iter()
            .zip(agg.filter_expr())
            .map(|(a, filter)| {
                Ok(if counts_rows(a, filter.as_ref()) {
                    Aggregate::CountRows(Vec::new())
                } else {
                    Aggregate::Accumulator(a.create_groups_accumulator()?)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let reservation = MemoryConsumer::new(format!("DictionaryAggregateExec[{partition}]"))
            .register(context.memory_pool());
        let mut groups = Groups {
            column: self.column,
            ids: HashMap::new(),
            values: Vec::new(),
            null: None,
            remap: Vec::new(),
            indices: Vec::new(),
            rows_per_key: Vec::new(),
            scratch: Vec::new(),
            aggregates,
            arguments: agg.aggr_expr().iter().map(|a| a.expressions()).collect(),
            constants: HashMap::new(),
            filters: agg.filter_expr().to_vec(),
            partial: agg.mode() == &AggregateMode::Partial,
            schema: agg.schema(),
            reservation,
        };
        let batch_size = context.session_config().batch_size().max(1);
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let mut input = self.input().execute(partition, context)?;
        let schema = agg.schema();
        let out = futures::stream::once(async move {
            while let Some(batch) = input.next().await {
                let batch = batch?;
                let _timer = metrics.elapsed_compute().timer();
                groups.update(&batch)?;
            }
            let _timer = metrics.elapsed_compute().timer();
            let answer = groups.finish()?;
            metrics.record_output(answer.num_rows());
            let chunks: Vec<Result<RecordBatch>> = (0..answer.num_rows())
                .step_by(batch_size)
                .map(|at| Ok(answer.slice(at, batch_size.min(answer.num_rows() - at))))
                .collect();
            Ok::<_, datafusion::error::DataFusionError>(futures::stream::iter(chunks))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, out)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// `count(*)` (any count of a non-null constant, unfiltered): rows per group, which a batch
/// adds per dictionary value rather than per row. Its state and value are the count itself,
/// as DataFusion's count accumulator emits them.
fn counts_rows(a: &AggregateFunctionExpr, filter: Option<&Arc<dyn PhysicalExpr>>) -> bool {
    let args = a.expressions();
    a.fun().name() == "count"
        && !a.is_distinct()
        && filter.is_none()
        && args.len() == 1
        && args[0]
            .downcast_ref::<Literal>()
            .is_some_and(|l| !l.value().is_null())
}

/// Adds to `counts` how many of `keys` hold each index. Four histograms, each key in turn to
/// the next, then summed: a run of equal keys would otherwise wait on its own increments.
/// `keys` are valid indices of `counts` (a dictionary's keys, checked when it was built).
fn count_keys(keys: &[i32], counts: &mut [i64], scratch: &mut Vec<u32>) {
    let n = counts.len();
    scratch.clear();
    scratch.resize(4 * n, 0);
    let (h0, rest) = scratch.split_at_mut(n);
    let (h1, rest) = rest.split_at_mut(n);
    let (h2, h3) = rest.split_at_mut(n);
    let quads = keys.chunks_exact(4);
    for &k in quads.remainder() {
        h0[k as usize] += 1;
    }
    for q in quads {
        h0[q[0] as usize] += 1;
        h1[q[1] as usize] += 1;
        h2[q[2] as usize] += 1;
        h3[q[3] as usize] += 1;
    }
    for (i, c) in counts.iter_mut().enumerate() {
        *c += i64::from(h0[i]) + i64::from(h1[i]) + i64::from(h2[i]) + i64::from(h3[i]);
    }
}

/// How a partition aggregates one aggregate expression.
enum Aggregate {
    /// Rows per group (see [`counts_rows`]).
    CountRows(Vec<i64>),
    /// DataFusion's accumulator, given each row's group.
    Accumulator(Box<dyn GroupsAccumulator>),
}

/// One partition's groups: a number per distinct string (in order of first appearance) and
/// DataFusion's accumulators indexed by it.
struct Groups {
    column: usize,
    ids: HashMap<Box<str>, usize>,
    /// Each group's value (None: the NULL group).
    values: Vec<Option<Box<str>>>,
    null: Option<usize>,
    /// This batch's dictionary index → group.
    remap: Vec<usize>,
    /// This batch's row → group.
    indices: Vec<usize>,
    /// This batch's rows per dictionary index (for the row counts).
    rows_per_key: Vec<i64>,
    scratch: Vec<u32>,
    aggregates: Vec<Aggregate>,
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    /// Constant arguments as arrays, by (aggregate, argument).
    constants: HashMap<(usize, usize), (ScalarValue, ArrayRef)>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    /// First stage of two (accumulator states out) or the only one (final values out).
    partial: bool,
    schema: SchemaRef,
    reservation: MemoryReservation,
}

impl Groups {
    fn null_group(&mut self) -> usize {
        *self.null.get_or_insert_with(|| {
            self.values.push(None);
            self.values.len() - 1
        })
    }

    fn group_of(&mut self, value: &str) -> usize {
        if let Some(&g) = self.ids.get(value) {
            return g;
        }
        let g = self.values.len();
        self.values.push(Some(value.into()));
        self.ids.insert(value.into(), g);
        g
    }

    fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        let rows = batch.num_rows();
        let column = batch.column(self.column);
        let dictionary = column
            .as_any_dictionary_opt()
            .ok_or_else(|| internal_datafusion_err!("grouping column is not a dictionary"))?;
        let strings = dictionary
            .values()
            .as_string_opt::<i32>()
            .ok_or_else(|| internal_datafusion_err!("dictionary values are not Utf8"))?;
        let nulls = column.nulls().filter(|n| n.null_count() > 0).cloned();
        let int32 = column.as_dictionary_opt::<Int32Type>();
        // Rows per dictionary index first: a value no row uses makes no group (a group without
        // rows would be answered), and the row counts need nothing more.
        // Valid dictionary arrays (checked when built) hold keys within their values.
        self.rows_per_key.clear();
        self.rows_per_key.resize(strings.len(), 0);
        let mut null_rows = 0i64;
        match (int32, &nulls) {
            (Some(d), None) => {
                count_keys(d.keys().values(), &mut self.rows_per_key, &mut self.scratch)
            }
            _ => {
                for (row, k) in dictionary.normalized_keys().into_iter().enumerate() {
                    if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                        null_rows += 1;
                    } else {
                        self.rows_per_key[k] += 1;
                    }
                }
            }
        }
        let mut remap = std::mem::take(&mut self.remap);
        remap.clear();
        for i in 0..strings.len() {
            remap.push(if self.rows_per_key[i] == 0 {
                usize::MAX // no row has this index
            } else if strings.is_null(i) {
                self.null_group()
            } else {
                self.group_of(strings.value(i))
            });
        }
        let null_group = (null_rows > 0).then(|| self.null_group());
        let total = self.values.len();
        for a in &mut self.aggregates {
            if let Aggregate::CountRows(c) = a {
                c.resize(total, 0);
                for (k, &n) in self.rows_per_key.iter().enumerate() {
                    if n > 0 {
                        c[remap[k]] += n;
                    }
                }
                if let Some(g) = null_group {
                    c[g] += null_rows;
                }
            }
        }
        let per_row = self
            .aggregates
            .iter()
            .any(|a| matches!(a, Aggregate::Accumulator(_)));
        if per_row {
            self.indices.clear();
            match (int32, &nulls, null_group) {
                (Some(d), None, _) => {
                    let keys = d.keys().values();
                    self.indices.extend(keys.iter().map(|&k| remap[k as usize]));
                }
                (_, Some(n), Some(g)) => self.indices.extend(
                    dictionary
                        .normalized_keys()
                        .into_iter()
                        .enumerate()
                        .map(|(row, k)| if n.is_null(row) { g } else { remap[k] }),
                ),
                _ => self
                    .indices
                    .extend(dictionary.normalized_keys().into_iter().map(|k| remap[k])),
            }
        }
        self.remap = remap;
        for (i, a) in self.aggregates.iter_mut().enumerate() {
            let Aggregate::Accumulator(acc) = a else {
                continue;
            };
            let mut values = Vec::with_capacity(self.arguments[i].len());
            for (j, e) in self.arguments[i].iter().enumerate() {
                values.push(match e.evaluate(batch)? {
                    ColumnarValue::Array(a) => a,
                    // A constant (`count(1)` with a filter): one array per batch size, reused.
                    ColumnarValue::Scalar(v) => match self.constants.get(&(i, j)) {
                        Some((same, a)) if *same == v && a.len() == rows => a.clone(),
                        _ => {
                            let a = v.to_array_of_size(rows)?;
                            self.constants.insert((i, j), (v, a.clone()));
                            a
                        }
                    },
                });
            }
            let filter = match &self.filters[i] {
                Some(f) => Some(f.evaluate(batch)?.into_array(rows)?),
                None => None,
            };
            let filter = match &filter {
                Some(f) => Some(
                    f.as_boolean_opt()
                        .ok_or_else(|| internal_datafusion_err!("filter is not boolean"))?,
                ),
                None => None,
            };
            acc.update_batch(&values, &self.indices, filter, total)?;
        }
        self.reservation.try_resize(self.size())?;
        Ok(())
    }

    fn size(&self) -> usize {
        let strings: usize = self.values.iter().flatten().map(|s| s.len()).sum();
        let aggregates: usize = self
            .aggregates
            .iter()
            .map(|a| match a {
                Aggregate::CountRows(c) => c.capacity() * 8,
                Aggregate::Accumulator(acc) => acc.size(),
            })
            .sum();
        aggregates
            + 2 * strings
            + self.values.capacity() * 24
            + self.ids.capacity() * 32
            + (self.remap.capacity() + self.indices.capacity() + self.rows_per_key.capacity()) * 8
            + self.scratch.capacity() * 4
    }

    /// Every group with its accumulators' states (first stage) or values (only stage).
    fn finish(mut self) -> Result<RecordBatch> {
        let n = self.values.len();
        let keys: Int32Array = (0..n)
            .map(|g| {
                self.values[g]
                    .is_some()
                    .then(|| i32::try_from(g).ok())
                    .flatten()
            })
            .collect();
        let values = StringArray::from_iter(self.values.iter().map(|v| v.as_deref()));
        let dictionary = datafusion::arrow::array::DictionaryArray::<Int32Type>::try_new(
            keys,
            Arc::new(values),
        )?;
        let field = self.schema.field(0);
        let mut columns: Vec<ArrayRef> = vec![cast(&dictionary, field.data_type())?];
        for a in &mut self.aggregates {
            match a {
                Aggregate::CountRows(c) => {
                    c.resize(n, 0);
                    columns.push(Arc::new(Int64Array::from(std::mem::take(c))));
                }
                Aggregate::Accumulator(acc) if self.partial => {
                    columns.extend(acc.state(EmitTo::All)?)
                }
                Aggregate::Accumulator(acc) => columns.push(acc.evaluate(EmitTo::All)?),
            }
        }
        self.reservation.free();
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{DictionaryArray, Int64Array};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use proptest::prelude::*;

    const WORDS: &[&str] = &[
        "PromotionRequested",
        "GateEvaluated",
        "",
        "é",
        "TargetPromoted",
    ];

    /// A batch per entry: each row (key, x); a key indexes the batch's own dictionary, which
    /// may repeat a value or hold a null.
    type Rows = Vec<(Vec<Option<&'static str>>, Vec<(Option<usize>, Option<i64>)>)>;

    fn table(batches: &Rows) -> (Arc<Schema>, Vec<RecordBatch>) {
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", dict, true),
            Field::new("x", DataType::Int64, true),
        ]));
        let out = batches
            .iter()
            .map(|(values, rows)| {
                let keys: Int32Array = rows
                    .iter()
                    .map(|(k, _)| k.map(|k| (k % values.len()) as i32))
                    .collect();
                let values = StringArray::from(values.clone());
                let k = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values)).unwrap();
                let x: Int64Array = rows.iter().map(|(_, x)| *x).collect();
                RecordBatch::try_new(schema.clone(), vec![Arc::new(k), Arc::new(x)]).unwrap()
            })
            .collect();
        (schema, out)
    }

    fn context(partitions: usize, ours: bool) -> SessionContext {
        let config = SessionConfig::new().with_target_partitions(partitions);
        let mut state = SessionStateBuilder::new()
            .with_default_features()
            .with_config(config);
        if ours {
            state = state.with_physical_optimizer_rule(Arc::new(DictionaryGroupBy));
        }
        let ctx = SessionContext::new_with_state(state.build());
        if ours {
            // As the service's sessions have it: the answers must still be the built-in's.
            ctx.register_udaf(crate::percentile_cont::function());
        }
        ctx
    }

    const SQL: &str = "SELECT k, count(*) AS n, count(x) AS nx, sum(x) AS s, min(x) AS lo, \
        max(x) AS hi, avg(x) AS mean, count(*) FILTER (WHERE x > 0) AS positive, \
        array_length(array_agg(x)) AS listed \
        FROM t GROUP BY k ORDER BY k NULLS FIRST";

    /// Ordered-set aggregates whose ordering is their argument (ours over DOUBLE, coerced
    /// from BIGINT, ascending and descending, filtered).
    const PERCENTILES: &str = "SELECT k, count(*) AS n, \
        percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS p50, \
        percentile_cont(0.9) WITHIN GROUP (ORDER BY x / 3.0 DESC) AS p90_desc, \
        percentile_cont(0.25) WITHIN GROUP (ORDER BY x) FILTER (WHERE x > 0) AS p25_positive \
        FROM t GROUP BY k ORDER BY k NULLS FIRST";

    /// Row counts only: no per-row groups (`counts_rows`).
    const COUNT: &str =
        "SELECT k, count(*) AS n, count(2) AS again FROM t GROUP BY k ORDER BY k NULLS FIRST";

    /// The answer of `sql` with and without the rule, and whether the rule's operator ran.
    async fn both(batches: &Rows, partitions: usize, sql: &str) -> (String, String, bool) {
        let (schema, data) = table(batches);
        // Two input partitions so two first-stage aggregates each see part of the groups.
        let half = data.len() / 2;
        let parts = vec![data[..half].to_vec(), data[half..].to_vec()];
        let mut out = Vec::new();
        let mut used = false;
        for ours in [false, true] {
            let ctx = context(partitions, ours);
            let t = MemTable::try_new(schema.clone(), parts.clone()).unwrap();
            ctx.register_table("t", Arc::new(t)).unwrap();
            let df = ctx.sql(sql).await.unwrap();
            let plan = df.clone().create_physical_plan().await.unwrap();
            let shown = datafusion::physical_plan::displayable(plan.as_ref())
                .indent(true)
                .to_string();
            if ours {
                used = shown.contains("DictionaryAggregateExec");
            } else {
                assert!(!shown.contains("DictionaryAggregateExec"));
            }
            let batches = df.collect().await.unwrap();
            out.push(pretty_format_batches(&batches).unwrap().to_string());
        }
        let ours = out.pop().unwrap();
        (out.pop().unwrap(), ours, used)
    }

    fn rows() -> impl Strategy<Value = Rows> {
        let values = proptest::collection::vec(
            proptest::option::weighted(0.9, prop::sample::select(WORDS.to_vec())),
            1..6,
        );
        let row = (
            proptest::option::weighted(0.9, 0usize..6),
            proptest::option::weighted(0.8, -50i64..50),
        );
        proptest::collection::vec((values, proptest::collection::vec(row, 0..40)), 2..6)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Same answers as DataFusion's own aggregate, with NULL keys, NULL and repeated
        /// dictionary values, empty batches, filters, in one stage and in two.
        #[test]
        fn answers_as_datafusion_does(batches in rows(), partitions in 1usize..4) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            for sql in [SQL, COUNT, PERCENTILES] {
                let (theirs, ours, used) = rt.block_on(both(&batches, partitions, sql));
                prop_assert!(used, "the rule did not apply");
                prop_assert_eq!(theirs, ours);
            }
        }
    }

    #[tokio::test]
    async fn other_shapes_stay_with_datafusion() {
        let batches: Rows = vec![
            (
                vec![Some("a"), Some("b")],
                vec![(Some(0), Some(1)), (Some(1), Some(2))],
            ),
            (vec![Some("b")], vec![(Some(0), Some(3))]),
        ];
        for (sql, ours) in [
            // Planned as a grouping by (k, x) under a grouping by k: the outer one is ours.
            (
                "SELECT k, count(DISTINCT x) FROM t GROUP BY k ORDER BY k",
                true,
            ),
            (
                "SELECT k, x, count(*) FROM t GROUP BY k, x ORDER BY k, x",
                false,
            ),
            (
                "SELECT k, array_agg(x ORDER BY x) FROM t GROUP BY k ORDER BY k",
                false,
            ),
            (
                "SELECT upper(k), count(*) FROM t GROUP BY 1 ORDER BY 1",
                false,
            ),
        ] {
            let (theirs, answer, used) = both(&batches, 2, sql).await;
            assert_eq!(used, ours, "{sql}");
            assert_eq!(theirs, answer, "{sql}");
        }
        let (_, ours, used) = both(&batches, 2, SQL).await;
        assert!(used);
        assert!(ours.contains("| b |"), "{ours}");
    }

    #[tokio::test]
    async fn the_memory_limit_holds() {
        let values: Vec<Option<&'static str>> = WORDS.iter().copied().map(Some).collect();
        let rows: Vec<(Option<usize>, Option<i64>)> =
            (0..8192).map(|i| (Some(i % 5), Some(i as i64))).collect();
        let batches: Rows = (0..8).map(|_| (values.clone(), rows.clone())).collect();
        let (schema, data) = table(&batches);
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_memory_limit(64 * 1024, 1.0)
            .build_arc()
            .unwrap();
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_runtime_env(runtime)
            .with_physical_optimizer_rule(Arc::new(DictionaryGroupBy))
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.register_table(
            "t",
            Arc::new(MemTable::try_new(schema, vec![data]).unwrap()),
        )
        .unwrap();
        // array_agg keeps every value: 64k rows cannot fit in 64 KiB.
        let err = ctx
            .sql("SELECT k, array_agg(x) FROM t GROUP BY k")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("Resources exhausted"), "{err}");
    }
}
