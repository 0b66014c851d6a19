//! SQL functions of our own, registered in every query session:
//!
//! `holt_winters(values, season, horizon)`: `values` a list of numbers (equally spaced, oldest
//! first, e.g. `array_agg(n ORDER BY day)`), `season` the season's length in steps (7 for a
//! week of days; used with at least two seasons of data), `horizon` the steps to predict.
//! Returns a list of `{step, value, lower, upper}` (95% interval) — null with fewer than 3
//! values. See [`crate::forecast`].

use crate::forecast::holt_winters;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, ListArray, StructArray,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Float64Type, Int64Type};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use std::sync::Arc;

/// Longest horizon accepted (steps).
pub const MAX_HORIZON: i64 = 3660;

/// The functions to register.
pub fn functions() -> Vec<ScalarUDF> {
    vec![ScalarUDF::from(HoltWinters::default())]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct HoltWinters {
    signature: Signature,
}

impl Default for HoltWinters {
    fn default() -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

fn point_fields() -> Fields {
    Fields::from(vec![
        Field::new("step", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
        Field::new("lower", DataType::Float64, false),
        Field::new("upper", DataType::Float64, false),
    ])
}

fn item() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Struct(point_fields()), true))
}

impl ScalarUDFImpl for HoltWinters {
    fn name(&self) -> &str {
        "holt_winters"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !matches!(
            args.first(),
            Some(DataType::List(_) | DataType::LargeList(_) | DataType::Null)
        ) {
            return exec_err!(
                "holt_winters(values, season, horizon): values must be a list (array_agg(x ORDER BY t)), not {:?}",
                args.first()
            );
        }
        Ok(DataType::List(item()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let values = cast(
            &arrays[0],
            &DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
        )?;
        let values = values.as_list::<i32>();
        let season = cast(&arrays[1], &DataType::Int64)?;
        let season = season.as_primitive::<Int64Type>();
        let horizon = cast(&arrays[2], &DataType::Int64)?;
        let horizon = horizon.as_primitive::<Int64Type>();
        let (mut step, mut value, mut lower, mut upper) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut lengths = Vec::with_capacity(rows);
        let mut valid = Vec::with_capacity(rows);
        for row in 0..rows {
            let h = if horizon.is_null(row) {
                0
            } else {
                horizon.value(row)
            };
            if !(0..=MAX_HORIZON).contains(&h) {
                return exec_err!("holt_winters: horizon must be 0..={MAX_HORIZON} steps, not {h}");
            }
            let m = if season.is_null(row) {
                0
            } else {
                season.value(row)
            };
            let series: Option<Vec<f64>> = (!values.is_null(row)).then(|| {
                let v = values.value(row);
                let v = v.as_primitive::<Float64Type>();
                // Missing values are not skipped silently: a null makes the series unusable.
                v.iter().collect::<Option<Vec<f64>>>().unwrap_or_default()
            });
            let forecast = series.and_then(|s| {
                holt_winters(
                    &s,
                    usize::try_from(m).unwrap_or(0),
                    usize::try_from(h).unwrap_or(0),
                )
            });
            match forecast {
                Some(f) => {
                    lengths.push(f.points.len());
                    valid.push(true);
                    for (i, (v, lo, hi)) in f.points.into_iter().enumerate() {
                        step.push(i as i64 + 1);
                        value.push(v);
                        lower.push(lo);
                        upper.push(hi);
                    }
                }
                None => {
                    lengths.push(0);
                    valid.push(false);
                }
            }
        }
        let points = StructArray::try_new(
            point_fields(),
            vec![
                Arc::new(Int64Array::from(step)) as ArrayRef,
                Arc::new(Float64Array::from(value)),
                Arc::new(Float64Array::from(lower)),
                Arc::new(Float64Array::from(upper)),
            ],
            None,
        )?;
        let list = ListArray::try_new(
            item(),
            OffsetBuffer::from_lengths(lengths),
            Arc::new(points),
            Some(NullBuffer::from(valid)),
        )?;
        Ok(ColumnarValue::Array(Arc::new(list)))
    }
}
