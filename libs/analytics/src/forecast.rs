//! Holt-Winters forecasting (additive exponential smoothing: level, trend and, with two full
//! seasons of data, a weekly season), with prediction intervals.
//!
//! Written here rather than taken from a crate: the candidates on crates.io (`augurs-ets`,
//! `linfa`) bring a numeric stack far larger than these forty lines, and what we need — the
//! textbook recursions, a grid search for the smoothing weights and the ETS(A,A,A) interval
//! width — is small and checked below against closed-form cases.
//!
//! Pure: series in, numbers out.

/// What a fit produced: the smoothing weights chosen, the one-step error, and `horizon`
/// predictions with 95% intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub alpha: f64,
    pub beta: f64,
    /// 0 without a season.
    pub gamma: f64,
    /// The season's length used (None: trend only).
    pub season: Option<usize>,
    /// Standard deviation of the one-step-ahead errors over the fit.
    pub sigma: f64,
    /// (value, lower, upper) for steps 1..=horizon.
    pub points: Vec<(f64, f64, f64)>,
}

/// z of a two-sided 95% interval.
const Z95: f64 = 1.959_964;

/// Weights tried for alpha, beta and gamma.
const GRID: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// Fits `series` (equally spaced, oldest first) and predicts `horizon` steps. A season of
/// length `season` is used when the series holds at least two of them; fewer than three
/// values give no forecast.
pub fn holt_winters(series: &[f64], season: usize, horizon: usize) -> Option<Forecast> {
    if series.len() < 3 || series.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let m = (season >= 2 && series.len() >= 2 * season).then_some(season);
    let gammas: &[f64] = if m.is_some() { &GRID } else { &[0.0] };
    let mut best: Option<(f64, f64, f64, f64)> = None;
    for &a in &GRID {
        for &b in &GRID {
            for &g in gammas {
                let sse = fit(series, a, b, g, m).sse;
                if best.is_none_or(|(s, ..)| sse < s) {
                    best = Some((sse, a, b, g));
                }
            }
        }
    }
    let (_, alpha, beta, gamma) = best?;
    let f = fit(series, alpha, beta, gamma, m);
    let sigma = (f.sse / f.errors.max(1) as f64).sqrt();
    let points = (1..=horizon)
        .map(|h| {
            let seasonal = m.map_or(0.0, |m| f.season[(series.len() + h - 1) % m]);
            let value = f.level + h as f64 * f.trend + seasonal;
            // ETS(A,A,A): var_h = sigma² (1 + sum_{j<h} c_j²), c_j = alpha (1 + j beta) + gamma [j % m == 0].
            let var: f64 = 1.0
                + (1..h)
                    .map(|j| {
                        let c = alpha * (1.0 + j as f64 * beta)
                            + m.map_or(0.0, |m| if j % m == 0 { gamma } else { 0.0 });
                        c * c
                    })
                    .sum::<f64>();
            let half = Z95 * sigma * var.sqrt();
            (value, value - half, value + half)
        })
        .collect();
    Some(Forecast {
        alpha,
        beta,
        gamma,
        season: m,
        sigma,
        points,
    })
}

struct Fit {
    level: f64,
    trend: f64,
    /// Seasonal components indexed by position modulo the season.
    season: Vec<f64>,
    sse: f64,
    errors: usize,
}

fn fit(y: &[f64], alpha: f64, beta: f64, gamma: f64, m: Option<usize>) -> Fit {
    let (mut level, mut trend, mut season, start) = match m {
        Some(m) => {
            // Initial level: the first season's mean; trend: the mean step between the first
            // two seasons; seasonal: the first season's deviations from its mean.
            let first: f64 = y[..m].iter().sum::<f64>() / m as f64;
            let second: f64 = y[m..2 * m].iter().sum::<f64>() / m as f64;
            let trend = (second - first) / m as f64;
            let centre = (m as f64 - 1.0) / 2.0;
            let season: Vec<f64> = y[..m]
                .iter()
                .enumerate()
                .map(|(i, v)| v - (first + trend * (i as f64 - centre)))
                .collect();
            (first, trend, season, m)
        }
        None => (y[0], y[1] - y[0], Vec::new(), 1),
    };
    if m.is_some() {
        // The level stands at the end of the first season.
        level += trend * (start as f64 - 1.0) / 2.0;
    }
    let (mut sse, mut errors) = (0.0, 0);
    for (t, &v) in y.iter().enumerate().skip(start) {
        let s = m.map_or(0.0, |m| season[t % m]);
        let predicted = level + trend + s;
        let e = v - predicted;
        sse += e * e;
        errors += 1;
        let previous = level;
        level = alpha * (v - s) + (1.0 - alpha) * (level + trend);
        trend = beta * (level - previous) + (1.0 - beta) * trend;
        if let Some(m) = m {
            season[t % m] = gamma * (v - level) + (1.0 - gamma) * s;
        }
    }
    Fit {
        level,
        trend,
        season,
        sse,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_straight_line_is_continued_exactly() {
        let y: Vec<f64> = (0..20).map(|i| 5.0 + 2.0 * i as f64).collect();
        let f = holt_winters(&y, 7, 3).unwrap();
        for (h, (v, lo, hi)) in f.points.iter().enumerate() {
            let want = 5.0 + 2.0 * (20 + h) as f64;
            assert!((v - want).abs() < 1e-9, "step {}: {v} vs {want}", h + 1);
            assert!((hi - lo).abs() < 1e-6, "no error, no width: {lo}..{hi}");
        }
        assert_eq!(f.season, Some(7));
    }

    #[test]
    fn a_weekly_pattern_is_forecast_with_its_season() {
        let week = [10.0, 12.0, 11.0, 13.0, 30.0, 2.0, 1.0];
        let y: Vec<f64> = (0..28).map(|i| week[i % 7] + 0.5 * i as f64).collect();
        let f = holt_winters(&y, 7, 7).unwrap();
        for (h, (v, ..)) in f.points.iter().enumerate() {
            let t = 28 + h;
            let want = week[t % 7] + 0.5 * t as f64;
            assert!((v - want).abs() < 0.5, "step {}: {v} vs {want}", h + 1);
        }
    }

    #[test]
    fn too_little_data_gives_no_forecast_and_short_series_no_season() {
        assert!(holt_winters(&[1.0, 2.0], 7, 3).is_none());
        assert!(holt_winters(&[1.0, f64::NAN, 3.0], 7, 3).is_none());
        assert_eq!(
            holt_winters(&[1.0, 2.0, 4.0, 3.0], 7, 3).unwrap().season,
            None
        );
    }

    proptest! {
        /// Intervals contain their value and widen with the horizon; weights stay in (0, 1).
        #[test]
        fn intervals_are_ordered_and_widen(y in proptest::collection::vec(0.0f64..1000.0, 3..60), h in 1usize..20) {
            let f = holt_winters(&y, 7, h).unwrap();
            prop_assert_eq!(f.points.len(), h);
            let mut width = 0.0;
            for (v, lo, hi) in &f.points {
                prop_assert!(lo <= v && v <= hi, "{} {} {}", lo, v, hi);
                prop_assert!(hi - lo >= width - 1e-9);
                width = hi - lo;
            }
            prop_assert!(f.alpha > 0.0 && f.alpha < 1.0 && f.beta > 0.0 && f.beta < 1.0);
        }
    }
}
