//! The Holt-Winters SQL function and the KPI views built on it, over series with known answers.

use crate::query::{run, Limits};
use crate::rows::{SlaWindowRow, SloObjectiveRow};
use crate::Tables;
use serde_json::Value;

const DAY: i64 = 86_400_000_000;
/// 2024-10-04, a day boundary.
const START: i64 = 20_000 * DAY;

async fn rows(t: &Tables, sql: &str) -> Vec<Value> {
    let a = run(&t.snapshot().unwrap(), 0, sql, &Limits::default())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    match crate::encode::json_rows(&a).unwrap() {
        Value::Array(r) => r,
        other => panic!("{other}"),
    }
}

fn close(v: &Value, want: f64, tolerance: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() <= tolerance)
}

#[tokio::test]
async fn holt_winters_is_callable_from_sql() {
    let t = Tables::default();
    let r = rows(
        &t,
        "SELECT p['step'] AS step, p['value'] AS value FROM \
         (SELECT unnest(holt_winters(make_array(1.0, 3.0, 5.0, 7.0), 0, 2)) AS p)",
    )
    .await;
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(
        close(&r[0]["value"], 9.0, 1e-9) && close(&r[1]["value"], 11.0, 1e-9),
        "{r:?}"
    );
    // Too short a series: null, not an error.
    let r = rows(
        &t,
        "SELECT holt_winters(make_array(1.0, 2.0), 7, 3) IS NULL AS none",
    )
    .await;
    assert_eq!(r[0]["none"], true);
    let a = run(
        &t.snapshot().unwrap(),
        0,
        "SELECT holt_winters(make_array(1.0, 2.0, 3.0), 7, -1)",
        &Limits::default(),
    )
    .await;
    assert!(a.is_err_and(|e| e.to_string().contains("horizon")));
}

/// Three weeks of a weekly pattern on a rising line: the next two weeks follow both.
#[tokio::test]
async fn promotion_volume_follows_its_weekly_season() {
    let week = [4, 6, 5, 7, 12, 1, 0];
    let mut t = Tables::default();
    for day in 0..21i64 {
        let n = week[(day % 7) as usize] + day / 7;
        for i in 0..n {
            let id = format!("p{day}-{i}");
            t.promotions.insert(
                id.clone(),
                crate::tests::promotion(&id, START + day * DAY + i * 1_000_000),
            );
        }
    }
    let r = rows(&t, "SELECT * FROM kpi_forecast_promotion_volume_hw").await;
    assert_eq!(r.len(), 14, "{r:?}");
    assert_eq!(r[0]["day"], "2024-10-25T00:00:00", "{r:?}");
    assert_eq!(r[0]["fitted_days"], 21);
    for (h, row) in r.iter().enumerate() {
        let day = 21 + h as i64;
        let want = (week[(day % 7) as usize] + day / 7) as f64;
        // The level steps once a week; the smoothed trend spreads it over the days.
        assert!(
            close(&row["predicted"], want, 1.5),
            "day {day}: {row} vs {want}"
        );
        assert!(row["lower"].as_f64() <= row["predicted"].as_f64());
        assert!(row["upper"].as_f64() >= row["predicted"].as_f64());
    }
}

/// A 99% objective over 30 days, ten days of 1,000 requests with 5 errors each: half the
/// budget is left and a day uses 1/60 of it, so it runs out 30 days after the last day.
#[tokio::test]
async fn the_error_budget_runs_out_when_the_burn_says() {
    let mut t = Tables::default();
    t.slo_objectives.insert(
        "api/availability".into(),
        SloObjectiveRow {
            slo: "api".into(),
            objective: "availability".into(),
            service: "a".into(),
            indicator: "ratio".into(),
            target: 0.99,
            window_seconds: 30 * 86_400,
            applied_at: START,
            applied_by: "sre".into(),
            position: 0,
        },
    );
    for day in 0..10i64 {
        t.sla_windows.push(SlaWindowRow {
            position: day + 1,
            service: "a".into(),
            version: None,
            minute: START + day * DAY + 60_000_000,
            requests: 1_000,
            errors: 5,
            approximate: false,
        });
    }
    let r = rows(&t, "SELECT * FROM kpi_error_budget_forecast").await;
    assert_eq!(r.len(), 1, "{r:?}");
    let r = &r[0];
    assert!(close(&r["budget_remaining"], 0.5, 1e-9), "{r}");
    assert!(close(&r["forecast_burn_per_day"], 1.0 / 60.0, 1e-9), "{r}");
    // Last day 2024-10-13; 30 days on.
    assert_eq!(r["exhausted_on"], "2024-11-12T00:00:00", "{r}");
    assert_eq!(r["fitted_days"], 10);
}
