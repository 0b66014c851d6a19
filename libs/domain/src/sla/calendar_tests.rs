use super::calendar::Calendar;
use super::measure::{summarize, Sample};
use super::openslo;
use proptest::prelude::*;
use time::macros::datetime;

fn cal(duration: &str, start: &str, tz: &str) -> Calendar {
    Calendar::parse(duration, start, tz).expect("calendar").0
}

fn unix(t: time::OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

#[test]
fn periods_align_to_the_calendar_in_its_time_zone() {
    let month = cal("1M", "2026-01-01 00:00:00", "UTC");
    assert_eq!(
        month.period_start(unix(datetime!(2026-03-15 10:00 UTC))),
        Ok(unix(datetime!(2026-03-01 00:00 UTC)))
    );
    // A period's first second is its own; before the start, periods count backwards.
    assert_eq!(
        month.period_start(unix(datetime!(2026-03-01 00:00 UTC))),
        Ok(unix(datetime!(2026-03-01 00:00 UTC)))
    );
    assert_eq!(
        month.period_start(unix(datetime!(2025-12-20 00:00 UTC))),
        Ok(unix(datetime!(2025-12-01 00:00 UTC)))
    );
    let quarter = cal("1Q", "2026-01-01 00:00:00", "UTC");
    assert_eq!(
        quarter.period_start(unix(datetime!(2026-05-10 00:00 UTC))),
        Ok(unix(datetime!(2026-04-01 00:00 UTC)))
    );
    let two_months = cal("2M", "2026-01-15 00:00:00", "UTC");
    assert_eq!(
        two_months.period_start(unix(datetime!(2026-04-01 00:00 UTC))),
        Ok(unix(datetime!(2026-03-15 00:00 UTC)))
    );
    // Weeks from a Monday, in Berlin (UTC+1 in winter).
    let week = cal("1w", "2026-11-30 00:00:00", "Europe/Berlin");
    assert_eq!(
        week.period_start(unix(datetime!(2026-12-03 12:00 UTC))),
        Ok(unix(datetime!(2026-11-29 23:00 UTC)))
    );
    // Days in New York across the spring change (2026-03-08 has 23 hours).
    let day = cal("1d", "2026-01-01 00:00:00", "America/New_York");
    assert_eq!(
        day.period_start(unix(datetime!(2026-03-08 17:00 UTC))),
        Ok(unix(datetime!(2026-03-08 05:00 UTC)))
    );
    assert_eq!(
        day.period_start(unix(datetime!(2026-03-09 12:00 UTC))),
        Ok(unix(datetime!(2026-03-09 04:00 UTC)))
    );
}

#[test]
fn calendar_windows_are_validated_naming_the_field() {
    let doc = |window: &str| {
        format!(
            "apiVersion: openslo/v1
kind: SLO
metadata: {{name: a-month}}
spec:
  service: service-a
  budgetingMethod: Occurrences
  timeWindow:
{window}
  indicator:
    metadata: {{name: a-requests}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{type: golden-goose, spec: {{signal: requests}}}}}}
        total: {{metricSource: {{type: golden-goose, spec: {{signal: requests}}}}}}
  objectives: [{{displayName: availability, target: 0.99}}]
"
        )
    };
    let ok = openslo::parse(&doc(
        "    - duration: 1M\n      isRolling: false\n      calendar: {startTime: \"2026-01-01 00:00:00\", timeZone: Europe/Berlin}",
    ))
    .expect("a calendar month");
    let slo = &ok[0];
    assert_eq!(slo.window_seconds, 30 * 86_400);
    assert_eq!(slo.calendar.as_ref().map(|c| c.count), Some(1));
    for (window, field, says) in [
        ("    - duration: 1M\n      isRolling: false", "spec.timeWindow[0].calendar", "needs calendar"),
        ("    - duration: 5h\n      isRolling: false\n      calendar: {startTime: \"2026-01-01 00:00:00\", timeZone: UTC}", "spec.timeWindow[0].duration", "d, w, M, Q or Y"),
        ("    - duration: 1M\n      isRolling: false\n      calendar: {startTime: \"2026-01-01 00:00:00\", timeZone: Mars/Olympus}", "spec.timeWindow[0].calendar", "not an IANA time zone"),
        ("    - duration: 1M\n      isRolling: false\n      calendar: {startTime: \"first of January\", timeZone: UTC}", "spec.timeWindow[0].calendar", "YYYY-MM-DD HH:MM:SS"),
        ("    - duration: 30d\n      isRolling: true\n      calendar: {startTime: \"2026-01-01 00:00:00\", timeZone: UTC}", "spec.timeWindow[0].calendar", "rolling window has no calendar"),
    ] {
        let e = openslo::parse(&doc(window)).expect_err(window);
        assert_eq!(e.field, field, "{e}");
        assert!(e.message.contains(says), "{e}");
        assert!(e.line.is_some(), "{e}");
    }
}

#[test]
fn a_calendar_status_covers_the_period_so_far() {
    let slo = openslo::parse(
        "apiVersion: openslo/v1
kind: SLO
metadata: {name: a-day}
spec:
  service: service-a
  budgetingMethod: Occurrences
  timeWindow: [{duration: 1d, isRolling: false, calendar: {startTime: \"2026-01-01 00:00:00\", timeZone: UTC}}]
  indicator:
    metadata: {name: a-requests}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: golden-goose, spec: {signal: requests}}}
        total: {metricSource: {type: golden-goose, spec: {signal: requests}}}
  objectives: [{displayName: availability, target: 0.99}]
",
    )
    .expect("slo")
    .remove(0);
    // Failures late yesterday, successes this morning.
    let mut samples = Vec::new();
    for k in 0..60 {
        samples.push(Sample {
            at: datetime!(2026-12-02 23:00 UTC) + time::Duration::minutes(k),
            latency_ms: 5.0,
            status: Some(500),
            ok: None,
        });
        samples.push(Sample {
            at: datetime!(2026-12-03 06:00 UTC) + time::Duration::minutes(k),
            latency_ms: 5.0,
            status: Some(200),
            ok: None,
        });
    }
    let summaries = summarize("service-a", &samples).expect("summaries");
    let st = super::status::status(&slo, &summaries, unix(datetime!(2026-12-03 12:00 UTC)))
        .expect("status");
    assert_eq!(st.window_start, unix(datetime!(2026-12-03 00:00 UTC)));
    assert_eq!((st.requests, st.errors), (60, 0));
    assert_eq!(st.objectives[0].met, Some(true));
}

proptest! {
    #[test]
    fn the_period_holds_the_moment(at in 1_600_000_000i64..2_200_000_000, unit in 0usize..5, count in 1u32..4) {
        let d = format!("{count}{}", ["d", "w", "M", "Q", "Y"][unit]);
        let Ok((c, _)) = Calendar::parse(&d, "2026-01-31 02:30:00", "Europe/Berlin") else {
            return Ok(());
        };
        let start = c.period_start(at).expect("period");
        prop_assert!(start <= at);
        prop_assert_eq!(c.period_start(start), Ok(start));
        // The next period starts after `at`: one second before it is still this period.
        let max_period = 400 * 86_400 + 7_200;
        prop_assert!(at - start < max_period);
    }
}
