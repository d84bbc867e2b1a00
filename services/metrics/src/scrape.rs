//! One `GET /metrics`: the families a daemon reports, encoded by `prometheus-client` in the
//! Prometheus text format, version 0.0.4.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// The `Content-Type` of `/metrics`: the text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// `(sum in seconds, count, (upper bound, observations in that bucket alone))` of a histogram.
pub type HistogramValue = (f64, u64, Vec<(f64, u64)>);

#[derive(Debug, Clone)]
enum Value {
    Counter(u64),
    Gauge(i64),
    Histogram(HistogramValue),
}

#[derive(Debug)]
struct Family {
    name: &'static str,
    help: String,
    metric_type: MetricType,
    /// The one label of the family's samples, `None` for a single sample without labels.
    label: Option<&'static str>,
    rows: Vec<(String, Value)>,
}

/// The families of one scrape, in the order written. A counter's name is given without
/// `_total` (the encoder adds it). Families with no sample are left out; samples of a family
/// with the same label value are summed (counters, gauges) or the first kept (histograms).
#[derive(Debug, Default)]
pub struct Scrape {
    families: Vec<Family>,
}

impl Scrape {
    pub fn new() -> Scrape {
        Scrape::default()
    }

    fn push(
        &mut self,
        name: &'static str,
        help: &str,
        metric_type: MetricType,
        label: Option<&'static str>,
        rows: impl IntoIterator<Item = (String, Value)>,
    ) {
        let mut merged: Vec<(String, Value)> = Vec::new();
        for (key, value) in rows {
            match merged.iter_mut().find(|(k, _)| *k == key) {
                Some((_, Value::Counter(a))) => {
                    if let Value::Counter(b) = value {
                        *a += b;
                    }
                }
                Some((_, Value::Gauge(a))) => {
                    if let Value::Gauge(b) = value {
                        *a += b;
                    }
                }
                Some(_) => {}
                None => merged.push((key, value)),
            }
        }
        self.families.push(Family {
            name,
            help: help.to_string(),
            metric_type,
            label,
            rows: merged,
        });
    }

    /// A counter without labels.
    pub fn counter(&mut self, name: &'static str, help: &str, value: u64) {
        let rows = vec![(String::new(), Value::Counter(value))];
        self.push(name, help, MetricType::Counter, None, rows);
    }

    /// A gauge without labels.
    pub fn gauge(&mut self, name: &'static str, help: &str, value: i64) {
        let rows = vec![(String::new(), Value::Gauge(value))];
        self.push(name, help, MetricType::Gauge, None, rows);
    }

    /// Counters with one label.
    pub fn counter_family(
        &mut self,
        name: &'static str,
        help: &str,
        label: &'static str,
        rows: impl IntoIterator<Item = (String, u64)>,
    ) {
        let rows = rows.into_iter().map(|(k, v)| (k, Value::Counter(v)));
        self.push(name, help, MetricType::Counter, Some(label), rows);
    }

    /// Gauges with one label.
    pub fn gauge_family(
        &mut self,
        name: &'static str,
        help: &str,
        label: &'static str,
        rows: impl IntoIterator<Item = (String, i64)>,
    ) {
        let rows = rows.into_iter().map(|(k, v)| (k, Value::Gauge(v)));
        self.push(name, help, MetricType::Gauge, Some(label), rows);
    }

    /// Histograms with one label.
    pub fn histogram_family(
        &mut self,
        name: &'static str,
        help: &str,
        label: &'static str,
        rows: impl IntoIterator<Item = (String, HistogramValue)>,
    ) {
        let rows = rows.into_iter().map(|(k, v)| (k, Value::Histogram(v)));
        self.push(name, help, MetricType::Histogram, Some(label), rows);
    }

    /// The text of the scrape.
    pub fn render(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Families(self.families)));
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry) {
            log::error!("metrics: encoding failed: {e}");
        }
        out
    }
}

#[derive(Debug)]
struct Families(Vec<Family>);

fn encode_value(encoder: MetricEncoder<'_>, value: &Value) -> fmt::Result {
    let mut encoder = encoder;
    match value {
        Value::Counter(v) => ConstCounter::new(*v).encode(encoder),
        Value::Gauge(v) => ConstGauge::new(*v).encode(encoder),
        Value::Histogram((sum, count, buckets)) => {
            encoder.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)
        }
    }
}

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        for family in self.0.iter().filter(|f| !f.rows.is_empty()) {
            let mut metric =
                encoder.encode_descriptor(family.name, &family.help, None, family.metric_type)?;
            for (label_value, value) in &family.rows {
                match family.label {
                    Some(key) => {
                        let labels = [(key, label_value.as_str())];
                        encode_value(metric.encode_family(&labels)?, value)?;
                    }
                    None => {
                        let no_labels: &[(&str, &str)] = &[];
                        encode_value(metric.encode_family(&no_labels)?, value)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_0_0_4() {
        let mut s = Scrape::new();
        s.counter("tt_things", "Things", 3);
        s.gauge("tt_level", "Level", -2);
        s.gauge_family(
            "tt_links_up",
            "Links",
            "peer",
            [
                ("a:1".to_string(), 1),
                ("b\"2".to_string(), 0),
                ("a:1".to_string(), 1),
            ],
        );
        s.counter_family("tt_empty", "Nothing", "x", []);
        let text = s.render();
        assert!(
            text.contains("# TYPE tt_things_total counter\ntt_things_total 3\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE tt_level gauge\ntt_level -2\n"),
            "{text}"
        );
        assert!(text.contains("tt_links_up{peer=\"a:1\"} 2\n"), "{text}");
        assert!(text.contains("tt_links_up{peer=\"b\\\"2\"} 0\n"), "{text}");
        assert!(!text.contains("tt_empty"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
    }

    #[test]
    fn histogram_lines() {
        let mut s = Scrape::new();
        s.histogram_family(
            "tt_latency_seconds",
            "Latency",
            "command",
            [(
                "CID_X".to_string(),
                (0.5, 3, vec![(0.1, 1), (1.0, 2), (f64::INFINITY, 0)]),
            )],
        );
        let text = s.render();
        assert!(
            text.contains("# TYPE tt_latency_seconds histogram\n"),
            "{text}"
        );
        assert!(
            text.contains("tt_latency_seconds_bucket{command=\"CID_X\",le=\"1.0\"} 3\n")
                || text.contains("tt_latency_seconds_bucket{command=\"CID_X\",le=\"1\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("tt_latency_seconds_count{command=\"CID_X\"} 3\n"),
            "{text}"
        );
    }
}
