//! `ledger_events`: the events read from the ledger itself (PostgreSQL or SQLite) when a query
//! runs, not from memory — same columns as `events`. Filters on `position` and `recorded_at`
//! push down (`Inexact`: DataFusion still applies them): position bounds become the range read,
//! and time bounds become the position ranges whose events can hold such times, from a zone map
//! (first/last position and min/max time of each 8,192-event batch of the in-memory `events`).
//! Only those ranges are read, a page at a time, and never past the snapshot's position, so an
//! answer stays a function of the events below the position it reports.

use crate::rows::EventRow;
use crate::schema;
use crate::table::TableDef;
use crate::tables::{event_row, TableData};
use datafusion::arrow::array::{Array, AsArray, Int64Array};
use datafusion::arrow::datatypes::{SchemaRef, TimeUnit, TimestampMicrosecondType};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use goose_ledger::LedgerReader;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Events read per round trip.
const PAGE: u32 = 1024;

/// One batch of the in-memory `events`: positions `from..to`, times `min..=max` (µs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone {
    pub from: u64,
    pub to: u64,
    pub min: i64,
    pub max: i64,
}

/// The zone map of `events` batches.
pub fn zones(events: &TableData) -> Vec<Zone> {
    let mut out = Vec::new();
    for b in events.batches.iter() {
        let (Some(p), Some(t)) = (
            b.column_by_name("position"),
            b.column_by_name("recorded_at"),
        ) else {
            continue;
        };
        let (Some(p), Some(t)) = (
            p.as_any().downcast_ref::<Int64Array>(),
            t.as_primitive_opt::<TimestampMicrosecondType>(),
        ) else {
            continue;
        };
        if p.is_empty() {
            continue;
        }
        let (Some(min), Some(max)) = (
            datafusion::arrow::compute::min(t),
            datafusion::arrow::compute::max(t),
        ) else {
            continue;
        };
        out.push(Zone {
            from: u64::try_from(p.value(0)).unwrap_or(0),
            to: u64::try_from(p.value(p.len() - 1)).unwrap_or(0) + 1,
            min,
            max,
        });
    }
    out
}

/// What the filters allow: positions `lo..hi`, times `t_lo..=t_hi` (µs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub lo: u64,
    pub hi: u64,
    pub t_lo: i64,
    pub t_hi: i64,
}

impl Bounds {
    fn all(size: u64) -> Self {
        Self {
            lo: 0,
            hi: size,
            t_lo: i64::MIN,
            t_hi: i64::MAX,
        }
    }
}

enum Col {
    Position,
    Time,
}

fn column(e: &Expr) -> Option<Col> {
    match e {
        Expr::Column(c) if c.name == "position" => Some(Col::Position),
        Expr::Column(c) if c.name == "recorded_at" => Some(Col::Time),
        Expr::Cast(c) => column(&c.expr),
        _ => None,
    }
}

fn literal(e: &Expr, col: &Col) -> Option<i64> {
    let Expr::Literal(v, _) = e else {
        return None;
    };
    match col {
        Col::Position => match v
            .cast_to(&datafusion::arrow::datatypes::DataType::Int64)
            .ok()?
        {
            ScalarValue::Int64(Some(n)) => Some(n),
            _ => None,
        },
        Col::Time => match v
            .cast_to(&datafusion::arrow::datatypes::DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("UTC".into()),
            ))
            .ok()?
        {
            ScalarValue::TimestampMicrosecond(Some(n), _) => Some(n),
            _ => None,
        },
    }
}

/// `col op literal` (either way round), with the operator as seen from the column.
fn comparison(e: &Expr) -> Option<(Col, Operator, i64)> {
    let Expr::BinaryExpr(b) = e else {
        return None;
    };
    if let Some(c) = column(&b.left) {
        let v = literal(&b.right, &c)?;
        return Some((c, b.op, v));
    }
    let c = column(&b.right)?;
    let v = literal(&b.left, &c)?;
    let op = b.op.swap()?;
    Some((c, op, v))
}

fn narrow(b: &mut Bounds, e: &Expr) -> bool {
    if let Expr::Between(between) = e {
        if between.negated {
            return false;
        }
        let Some(c) = column(&between.expr) else {
            return false;
        };
        let (Some(lo), Some(hi)) = (literal(&between.low, &c), literal(&between.high, &c)) else {
            return false;
        };
        apply(b, &c, Operator::GtEq, lo);
        apply(b, &c, Operator::LtEq, hi);
        return true;
    }
    if let Expr::BinaryExpr(x) = e {
        if x.op == Operator::And {
            // Both sides narrow; an unrecognised side leaves the bounds as they are.
            let l = narrow(b, &x.left);
            let r = narrow(b, &x.right);
            return l || r;
        }
    }
    match comparison(e) {
        Some((c, op, v)) => apply(b, &c, op, v),
        None => false,
    }
}

fn apply(b: &mut Bounds, c: &Col, op: Operator, v: i64) -> bool {
    match c {
        Col::Position => {
            // Positions are ≥ 0: a bound below 0 clamps to 0.
            let at = |x: i64| u64::try_from(x.max(0)).unwrap_or(0);
            match op {
                Operator::Eq if v < 0 => b.hi = 0,
                Operator::Eq => {
                    b.lo = b.lo.max(at(v));
                    b.hi = b.hi.min(at(v.saturating_add(1)));
                }
                Operator::Gt => b.lo = b.lo.max(at(v.saturating_add(1))),
                Operator::GtEq => b.lo = b.lo.max(at(v)),
                Operator::Lt => b.hi = b.hi.min(at(v)),
                Operator::LtEq => b.hi = b.hi.min(at(v.saturating_add(1))),
                _ => return false,
            }
        }
        Col::Time => match op {
            Operator::Eq => {
                b.t_lo = b.t_lo.max(v);
                b.t_hi = b.t_hi.min(v);
            }
            Operator::Gt | Operator::GtEq => b.t_lo = b.t_lo.max(v),
            Operator::Lt | Operator::LtEq => b.t_hi = b.t_hi.min(v),
            _ => return false,
        },
    }
    true
}

/// Whether a filter narrows the scan (and so is pushed down, inexactly).
pub fn pushable(e: &Expr) -> bool {
    narrow(&mut Bounds::all(u64::MAX), e)
}

/// The position ranges to read for `filters` over a log of `size` events with `zones`
/// (positions past the last zone are always read: their times are not known).
pub fn ranges(filters: &[Expr], zones: &[Zone], size: u64) -> Vec<(u64, u64)> {
    let mut b = Bounds::all(size);
    for f in filters {
        narrow(&mut b, f);
    }
    if b.lo >= b.hi || b.t_lo > b.t_hi {
        return Vec::new();
    }
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut push = |from: u64, to: u64| {
        let (from, to) = (from.max(b.lo), to.min(b.hi));
        if from >= to {
            return;
        }
        match out.last_mut() {
            Some(last) if last.1 >= from => last.1 = last.1.max(to),
            _ => out.push((from, to)),
        }
    };
    let mut covered = 0;
    for z in zones {
        if z.max >= b.t_lo && z.min <= b.t_hi {
            push(z.from, z.to);
        }
        covered = covered.max(z.to);
    }
    push(covered, size);
    out
}

/// The `ledger_events` table over `reader`, for a snapshot reaching `size` whose in-memory
/// `events` gave `zones`.
#[derive(Debug)]
pub struct LedgerEvents {
    reader: LedgerReader,
    zones: Vec<Zone>,
    size: u64,
    def: TableDef,
    /// Rows read from the ledger, added to as scans run.
    read: Arc<AtomicU64>,
}

impl LedgerEvents {
    /// `read` counts the rows its scans read from the ledger.
    pub fn new(reader: LedgerReader, zones: Vec<Zone>, size: u64, read: Arc<AtomicU64>) -> Self {
        let mut def = schema::events();
        def.name = "ledger_events";
        Self {
            reader,
            zones,
            size,
            def,
            read,
        }
    }
}

#[async_trait::async_trait]
impl TableProvider for LedgerEvents {
    fn schema(&self) -> SchemaRef {
        self.def.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if pushable(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let part = Arc::new(Scan {
            reader: self.reader.clone(),
            ranges: ranges(filters, &self.zones, self.size),
            schema: self.def.schema(),
            def: self.def.clone(),
            read: self.read.clone(),
        });
        Ok(Arc::new(StreamingTableExec::try_new(
            self.def.schema(),
            vec![part],
            projection,
            Vec::<datafusion::physical_expr::LexOrdering>::new(),
            false,
            limit,
        )?))
    }
}

#[derive(Debug)]
struct Scan {
    reader: LedgerReader,
    ranges: Vec<(u64, u64)>,
    schema: SchemaRef,
    def: TableDef,
    read: Arc<AtomicU64>,
}

impl PartitionStream for Scan {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let reader = self.reader.clone();
        let def = self.def.clone();
        let read = self.read.clone();
        let pages = futures::stream::unfold(
            (self.ranges.clone(), 0usize, None::<u64>),
            move |(ranges, mut i, mut next)| {
                let reader = reader.clone();
                let def = def.clone();
                let read = read.clone();
                async move {
                    loop {
                        let &(from, to) = ranges.get(i)?;
                        let at = next.unwrap_or(from);
                        if at >= to {
                            i += 1;
                            next = None;
                            continue;
                        }
                        let want = u32::try_from((to - at).min(u64::from(PAGE))).unwrap_or(PAGE);
                        let events = match reader.read_all(at, want).await {
                            Ok(e) => e,
                            Err(e) => {
                                let e = DataFusionError::External(Box::new(e));
                                return Some((Err(e), (Vec::new(), 0, None)));
                            }
                        };
                        if events.is_empty() {
                            // The log is shorter than the snapshot said: nothing more here.
                            i += 1;
                            next = None;
                            continue;
                        }
                        let rows: Vec<EventRow> = events
                            .iter()
                            .filter(|e| e.position < to)
                            .map(event_row)
                            .collect();
                        read.fetch_add(rows.len() as u64, Ordering::Relaxed);
                        next = Some(at + events.len() as u64);
                        let batch = def
                            .batch(&rows)
                            .map_err(|e| DataFusionError::External(Box::new(e)));
                        return Some((batch, (ranges, i, next)));
                    }
                }
            },
        );
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), pages))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    const SEC: i64 = 1_000_000;

    /// Three zones of 100 events, a second apart per zone: 0..100 at 0-99 s, 100..200 at
    /// 100-199 s, 200..300 at 200-299 s; the log has 350 events (the last 50 not zoned yet).
    fn zones() -> Vec<Zone> {
        (0..3)
            .map(|i| Zone {
                from: i * 100,
                to: (i + 1) * 100,
                min: (i as i64) * 100 * SEC,
                max: ((i as i64) * 100 + 99) * SEC,
            })
            .collect()
    }

    fn ts(s: i64) -> Expr {
        lit(ScalarValue::TimestampMicrosecond(
            Some(s * SEC),
            Some("UTC".into()),
        ))
    }

    #[test]
    fn position_bounds_become_the_range_read() {
        let z = zones();
        assert_eq!(ranges(&[], &z, 350), vec![(0, 350)]);
        let f = [col("position").between(lit(10i64), lit(19i64))];
        assert_eq!(ranges(&f, &z, 350), vec![(10, 20)]);
        let f = [
            col("position").gt(lit(120i64)),
            col("position").lt(lit(130i64)),
        ];
        assert_eq!(ranges(&f, &z, 350), vec![(121, 130)]);
        let f = [lit(340i64).lt_eq(col("position"))];
        assert_eq!(ranges(&f, &z, 350), vec![(340, 350)]);
        let f = [col("position").eq(lit(7i64))];
        assert_eq!(ranges(&f, &z, 350), vec![(7, 8)]);
        // Past the snapshot: nothing.
        let f = [col("position").gt_eq(lit(400i64))];
        assert!(ranges(&f, &z, 350).is_empty());
        let f = [col("position").lt(lit(0i64))];
        assert!(ranges(&f, &z, 350).is_empty());
        let f = [col("position").gt(lit(-5i64))];
        assert_eq!(ranges(&f, &z, 350), vec![(0, 350)]);
    }

    #[test]
    fn time_bounds_keep_only_the_zones_that_can_hold_them_and_the_unzoned_tail() {
        let z = zones();
        let f = [
            col("recorded_at").gt_eq(ts(150)),
            col("recorded_at").lt(ts(160)),
        ];
        assert_eq!(ranges(&f, &z, 350), vec![(100, 200), (300, 350)]);
        let f = [col("recorded_at").gt_eq(ts(250))];
        assert_eq!(ranges(&f, &z, 350), vec![(200, 350)]);
        let f = [col("recorded_at")
            .lt(ts(50))
            .and(col("position").gt_eq(lit(20i64)))];
        assert_eq!(ranges(&f, &z, 350), vec![(20, 100), (300, 350)]);
        let f = [col("recorded_at").between(ts(1000), ts(2000))];
        assert_eq!(ranges(&f, &z, 350), vec![(300, 350)]);
    }

    #[test]
    fn other_filters_are_not_pushed_and_do_not_narrow() {
        for f in [
            col("event_type").eq(lit("PromotionRequested")),
            col("position").not_eq(lit(3i64)),
            col("position").gt(col("stream_version")),
            !col("position").between(lit(1i64), lit(5i64)),
            col("position")
                .eq(lit(3i64))
                .or(col("position").eq(lit(9i64))),
        ] {
            assert!(!pushable(&f), "{f}");
            assert_eq!(ranges(&[f], &zones(), 350), vec![(0, 350)]);
        }
        assert!(pushable(&col("position").gt(lit(3i64))));
        assert!(pushable(&col("recorded_at").lt_eq(ts(3))));
    }
}
