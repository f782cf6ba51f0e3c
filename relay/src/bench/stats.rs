//! Figures from raw samples: latency percentiles, and the report each scenario prints (an
//! aligned table for people, one JSON line for scripts).

use std::time::Duration;

use serde_json::{Map, Value};

/// Latency percentiles over a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    /// Percentiles (nearest rank) of `samples`; `None` when there are none.
    pub fn of(samples: &mut [Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = |q: f64| {
            let index = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
            ms(samples[index])
        };
        Some(Self {
            count: samples.len(),
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            max: ms(samples[samples.len() - 1]),
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One scenario's results, in the order they were added.
#[derive(Debug, Default)]
pub struct Report {
    rows: Vec<(String, Value, String)>,
}

impl Report {
    /// Adds a figure: its JSON key, value and unit (shown in the table only).
    pub fn add(&mut self, key: &str, value: impl Into<Value>, unit: &str) {
        self.rows
            .push((key.to_owned(), value.into(), unit.to_owned()));
    }

    /// Adds `prefix_p50_ms`, `_p95_ms`, `_p99_ms`, `_max_ms` and `_samples`.
    pub fn add_latency(&mut self, prefix: &str, latency: Option<Latency>) {
        let Some(l) = latency else {
            self.add(&format!("{prefix}_samples"), 0, "");
            return;
        };
        for (name, value) in [
            ("p50", l.p50),
            ("p95", l.p95),
            ("p99", l.p99),
            ("max", l.max),
        ] {
            self.add(&format!("{prefix}_{name}_ms"), round3(value), "ms");
        }
        self.add(&format!("{prefix}_samples"), l.count, "");
    }

    /// The table and the JSON line.
    pub fn render(&self, scenario: &str) -> String {
        let width = self.rows.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
        let mut out = format!("== p2p-chat bench {scenario}\n");
        let mut json = Map::new();
        json.insert("scenario".into(), scenario.into());
        for (key, value, unit) in &self.rows {
            let shown = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push_str(&format!("{key:<width$}  {shown} {unit}\n"));
            json.insert(key.clone(), value.clone());
        }
        out.push_str(&Value::Object(json).to_string());
        out
    }
}

/// `value` rounded to three decimals (microseconds, for milliseconds).
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let l = Latency::of(&mut samples).expect("samples");
        assert_eq!((l.p50, l.p95, l.p99, l.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(l.count, 100);
        let mut one = vec![Duration::from_micros(250)];
        let l = Latency::of(&mut one).expect("one sample");
        assert_eq!((l.p50, l.p99, l.max), (0.25, 0.25, 0.25));
        assert_eq!(Latency::of(&mut []), None);
    }

    #[test]
    fn report_prints_a_table_and_one_json_line() {
        let mut report = Report::default();
        report.add("messages", 3, "");
        report.add_latency("delivery", Latency::of(&mut [Duration::from_millis(2)]));
        let text = report.render("latency");
        let json: Value =
            serde_json::from_str(text.lines().last().expect("json line")).expect("valid JSON");
        assert_eq!(json["scenario"], "latency");
        assert_eq!(json["messages"], 3);
        assert_eq!(json["delivery_p99_ms"], 2.0);
        let row = text
            .lines()
            .find(|l| l.starts_with("delivery_p50_ms "))
            .expect("a delivery_p50_ms row");
        assert!(row.ends_with(" 2.0 ms"), "{row}");
    }
}
