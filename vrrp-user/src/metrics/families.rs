//! Building metric families by name, in first-seen order.
use prometheus::proto::{Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType};

#[derive(Default)]
pub struct Families {
    families: Vec<MetricFamily>,
}

pub type Labels<'a> = &'a [(&'a str, String)];

impl Families {
    fn family(&mut self, name: &str, help: &str, kind: MetricType) -> &mut MetricFamily {
        if let Some(i) = self.families.iter().position(|f| f.name() == name) {
            return &mut self.families[i];
        }
        let mut family = MetricFamily::default();
        family.set_name(name.to_string());
        family.set_help(help.to_string());
        family.set_field_type(kind);
        self.families.push(family);
        self.families.last_mut().expect("just pushed")
    }

    fn metric(labels: Labels<'_>) -> Metric {
        let mut metric = Metric::default();
        metric.set_label(
            labels
                .iter()
                .map(|(name, value)| {
                    let mut pair = LabelPair::default();
                    pair.set_name(name.to_string());
                    pair.set_value(value.clone());
                    pair
                })
                .collect(),
        );
        metric
    }

    pub fn gauge(&mut self, name: &str, help: &str, labels: Labels<'_>, value: f64) {
        let mut metric = Self::metric(labels);
        let mut gauge = Gauge::default();
        gauge.set_value(value);
        metric.set_gauge(gauge);
        self.family(name, help, MetricType::GAUGE).mut_metric().push(metric);
    }

    pub fn counter(&mut self, name: &str, help: &str, labels: Labels<'_>, value: f64) {
        let mut metric = Self::metric(labels);
        let mut counter = Counter::default();
        counter.set_value(value);
        metric.set_counter(counter);
        self.family(name, help, MetricType::COUNTER).mut_metric().push(metric);
    }

    /// `counts[i]` observations at or under `bounds[i]` (not cumulative); `count` in all.
    pub fn histogram(&mut self, name: &str, help: &str, labels: Labels<'_>, bounds: &[f64], counts: &[u64], sum: f64, count: u64) {
        let mut metric = Self::metric(labels);
        let mut histogram = Histogram::default();
        let mut cumulative = 0;
        histogram.set_bucket(
            bounds
                .iter()
                .zip(counts)
                .map(|(bound, n)| {
                    cumulative += n;
                    let mut bucket = Bucket::default();
                    bucket.set_upper_bound(*bound);
                    bucket.set_cumulative_count(cumulative);
                    bucket
                })
                .collect(),
        );
        histogram.set_sample_sum(sum);
        histogram.set_sample_count(count);
        metric.set_histogram(histogram);
        self.family(name, help, MetricType::HISTOGRAM).mut_metric().push(metric);
    }

    pub fn into_vec(self) -> Vec<MetricFamily> {
        self.families
    }
}
