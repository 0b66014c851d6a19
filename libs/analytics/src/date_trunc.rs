//! `date_trunc` for timestamps in UTC at the speed of arithmetic.
//!
//! Every timestamp of our tables is `Timestamp(µs, "UTC")`. DataFusion's `date_trunc` takes
//! its fast path (integer arithmetic for day and finer) only for timestamps *without* a time
//! zone; with one — even UTC — it converts every value through chrono's time-zone machinery,
//! about 15× slower than `date_bin` on the same column (docs/benchmarks.md). In UTC wall-clock
//! time and the instant are the same numbers, so truncating a UTC timestamp is truncating the
//! same values without a zone: this function hands DataFusion's own `date_trunc` the values
//! with the zone taken off (no copy) and puts the zone back on its answer. Any other zone, a
//! zone-less timestamp, a time of day and scalars go to DataFusion's function unchanged. Same
//! name, aliases, signature, return type and ordering properties as the built-in it wraps, so
//! results are the built-in's by construction (and tested against it).

use datafusion::arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use datafusion::arrow::datatypes::{
    ArrowTimestampType, DataType, Field, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::Result;
use datafusion::functions::datetime::date_trunc::DateTruncFunc;
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};
use std::sync::Arc;

/// The function to register (it replaces the built-in of the same name).
pub fn function() -> ScalarUDF {
    ScalarUDF::from(UtcDateTrunc::default())
}

#[derive(Debug, Default, PartialEq, Eq, Hash)]
struct UtcDateTrunc {
    inner: DateTruncFunc,
}

/// Zone names that mean UTC (offset zero, no daylight saving, ever).
fn is_utc(tz: &str) -> bool {
    [
        "utc", "z", "+00:00", "+0000", "+00", "etc/utc", "gmt", "etc/gmt",
    ]
    .iter()
    .any(|u| tz.eq_ignore_ascii_case(u))
}

/// `array` with its time zone set to `tz` (the same values; no copy).
fn with_zone(array: &ArrayRef, tz: Option<Arc<str>>) -> Option<ArrayRef> {
    fn set<T: ArrowTimestampType>(a: &ArrayRef, tz: Option<Arc<str>>) -> ArrayRef {
        let p: &PrimitiveArray<T> = a.as_primitive::<T>();
        Arc::new(p.clone().with_timezone_opt(tz))
    }
    Some(match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => set::<TimestampSecondType>(array, tz),
        DataType::Timestamp(TimeUnit::Millisecond, _) => set::<TimestampMillisecondType>(array, tz),
        DataType::Timestamp(TimeUnit::Microsecond, _) => set::<TimestampMicrosecondType>(array, tz),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => set::<TimestampNanosecondType>(array, tz),
        _ => return None,
    })
}

impl ScalarUDFImpl for UtcDateTrunc {
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

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<Arc<Field>> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let utc = match args.args.get(1) {
            Some(ColumnarValue::Array(a)) => match a.data_type() {
                DataType::Timestamp(_, Some(tz)) if is_utc(tz) => Some(tz.clone()),
                _ => None,
            },
            _ => None,
        };
        let Some(tz) = utc else {
            return self.inner.invoke_with_args(args);
        };
        if let Some(ColumnarValue::Array(a)) = args.args.get_mut(1) {
            if let Some(plain) = with_zone(a, None) {
                *a = plain;
            }
        }
        if let Some(f) = args.arg_fields.get_mut(1) {
            let plain = f.data_type().clone();
            if let DataType::Timestamp(unit, _) = plain {
                *f = Arc::new(
                    f.as_ref()
                        .clone()
                        .with_data_type(DataType::Timestamp(unit, None)),
                );
            }
        }
        if let DataType::Timestamp(unit, _) = args.return_field.data_type().clone() {
            args.return_field = Arc::new(
                args.return_field
                    .as_ref()
                    .clone()
                    .with_data_type(DataType::Timestamp(unit, None)),
            );
        }
        match self.inner.invoke_with_args(args)? {
            ColumnarValue::Array(out) => match with_zone(&out, Some(tz)) {
                Some(zoned) => Ok(ColumnarValue::Array(zoned)),
                None => Ok(ColumnarValue::Array(out)),
            },
            scalar => Ok(scalar),
        }
    }

    fn output_ordering(&self, input: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(input)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::TimestampMicrosecondArray;
    use datafusion::arrow::datatypes::Schema;
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;
    use proptest::prelude::*;

    const UNITS: &[&str] = &[
        "microsecond",
        "millisecond",
        "second",
        "minute",
        "hour",
        "day",
        "week",
        "month",
        "quarter",
        "year",
    ];

    /// `date_trunc(unit, t)` for every unit over `values` in a `tz` column: the built-in's
    /// answers, then ours.
    async fn both(values: Vec<Option<i64>>, tz: &str) -> (Vec<RecordBatch>, Vec<RecordBatch>) {
        let array = TimestampMicrosecondArray::from(values).with_timezone(tz);
        let schema = Arc::new(Schema::new(vec![Field::new(
            "t",
            array.data_type().clone(),
            true,
        )]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(array)]).unwrap();
        let cols: Vec<String> = UNITS
            .iter()
            .map(|u| format!("date_trunc('{u}', t) AS {u}"))
            .collect();
        let sql = format!(
            "SELECT {}, datetrunc('day', t) AS alias FROM t",
            cols.join(", ")
        );
        let mut out = Vec::new();
        for ours in [false, true] {
            let ctx = SessionContext::new();
            if ours {
                ctx.register_udf(function());
            }
            let t = MemTable::try_new(schema.clone(), vec![vec![batch.clone()]]).unwrap();
            ctx.register_table("t", Arc::new(t)).unwrap();
            out.push(ctx.sql(&sql).await.unwrap().collect().await.unwrap());
        }
        let ours = out.pop().unwrap();
        (out.pop().unwrap(), ours)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Ours answers what DataFusion's answers, to the value and the type, in UTC and in
        /// zones it leaves to the built-in; negative times (before 1970) included.
        #[test]
        fn same_answers_as_the_built_in(
            values in proptest::collection::vec(
                proptest::option::weighted(0.9, -4_000_000_000_000_000i64..8_000_000_000_000_000), 1..200),
            tz in prop::sample::select(vec!["UTC", "+00:00", "Europe/Paris", "America/New_York", "+05:30"]),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (builtin, ours) = rt.block_on(both(values, tz));
            prop_assert_eq!(builtin, ours);
        }
    }

    #[tokio::test]
    async fn utc_keeps_its_zone_and_truncates_to_the_calendar() {
        // 2026-03-14T15:09:26.535897Z
        let (builtin, ours) = both(vec![Some(1_773_500_966_535_897), None], "UTC").await;
        assert_eq!(builtin, ours);
        let b = &ours[0];
        assert_eq!(
            b.schema().field(0).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&ours)
            .unwrap()
            .to_string();
        for expected in [
            "2026-03-14T15:09:26.535897Z",
            "2026-03-14T15:09:26.535Z",
            "2026-03-14T15:09:00Z",
            "2026-03-14T00:00:00Z",
            "2026-03-09T00:00:00Z",
            "2026-03-01T00:00:00Z",
            "2026-01-01T00:00:00Z",
        ] {
            assert!(text.contains(expected), "{expected} not in\n{text}");
        }
    }

    #[tokio::test]
    async fn a_bad_unit_is_the_built_in_error() {
        let ctx = SessionContext::new();
        ctx.register_udf(function());
        let array = TimestampMicrosecondArray::from(vec![0]).with_timezone("UTC");
        let batch = RecordBatch::try_from_iter([("t", Arc::new(array) as ArrayRef)]).unwrap();
        ctx.register_batch("t", batch).unwrap();
        let err = match ctx.sql("SELECT date_trunc('fortnight', t) FROM t").await {
            Ok(df) => df.collect().await.unwrap_err(),
            Err(e) => e,
        }
        .to_string();
        assert!(err.contains("Unsupported date_trunc granularity"), "{err}");
    }
}
