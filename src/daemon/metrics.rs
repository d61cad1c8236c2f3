//! Prometheus metrics of opswatch itself: one registry, the families every part fills, and
//! the standard `process_*` metrics read from /proc at scrape time.

use std::fmt::Write as _;

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    pub check: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    pub channel: String,
    pub severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    /// The matched route pattern (`/api/v1/checks/{name}/results`), never the raw path, so a
    /// client cannot create unbounded series.
    pub route: String,
    pub status: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn check_duration_histogram() -> Histogram {
    // 1 ms … ~16 s: from a local /proc read to an HTTP probe that hits its timeout.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

fn request_duration_histogram() -> Histogram {
    // 100 µs … ~3 s: /health answers in microseconds, a year-long chart in milliseconds.
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

/// Every metric opswatch exports. Cheap to share behind the app state's `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// 1 while the store takes writes.
    pub store_up: Gauge,
    /// 1 while the scheduler's heartbeat is fresh.
    pub scheduler_up: Gauge,
    pub check_duration: HistogramFamily<CheckLabels>,
    /// 1 up, 0 down, per check.
    pub check_up: Family<CheckLabels, Gauge>,
    /// Alerts waiting to be delivered, per channel.
    pub outbox_depth: Family<ChannelLabels, Gauge>,
    /// 1 while a channel accepts messages (0 after 401, blocked, chat not found).
    pub channel_up: Family<ChannelLabels, Gauge>,
    pub alerts_sent: Family<AlertLabels, Counter>,
    pub http_requests: HistogramFamily<RouteLabels>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        registry.register(
            "opswatch_build",
            "opswatch build information",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let store_up = Gauge::default();
        registry.register(
            "opswatch_store_up",
            "Whether the store takes writes (1) or not (0)",
            store_up.clone(),
        );
        let scheduler_up = Gauge::default();
        registry.register(
            "opswatch_scheduler_up",
            "Whether the scheduler heartbeat is fresh (1) or stalled (0)",
            scheduler_up.clone(),
        );
        let check_duration: HistogramFamily<CheckLabels> =
            Family::new_with_constructor(check_duration_histogram);
        registry.register(
            "opswatch_check_duration_seconds",
            "How long each check run took",
            check_duration.clone(),
        );
        let check_up = Family::<CheckLabels, Gauge>::default();
        registry.register(
            "opswatch_check_up",
            "Whether each check is up (1) or down (0)",
            check_up.clone(),
        );
        let outbox_depth = Family::<ChannelLabels, Gauge>::default();
        registry.register(
            "opswatch_outbox_depth",
            "Alerts waiting in the outbox per channel",
            outbox_depth.clone(),
        );
        let channel_up = Family::<ChannelLabels, Gauge>::default();
        registry.register(
            "opswatch_channel_up",
            "Whether a notification channel accepts messages (1) or not (0)",
            channel_up.clone(),
        );
        let alerts_sent = Family::<AlertLabels, Counter>::default();
        registry.register(
            "opswatch_alerts_sent",
            "Alerts delivered, per channel and severity",
            alerts_sent.clone(),
        );
        let http_requests: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(request_duration_histogram);
        registry.register(
            "opswatch_http_request_duration_seconds",
            "HTTP requests served by opswatch, by route and status",
            http_requests.clone(),
        );
        registry.register_collector(Box::new(ProcessCollector::new()));
        Self {
            registry,
            store_up,
            scheduler_up,
            check_duration,
            check_up,
            outbox_depth,
            channel_up,
            alerts_sent,
            http_requests,
        }
    }

    /// Every metric in `format`.
    pub fn render(&self, format: Exposition) -> String {
        let mut out = String::with_capacity(8 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
            let _ = writeln!(out, "# metrics could not be encoded");
        }
        match format {
            Exposition::OpenMetrics => out,
            Exposition::Prometheus => openmetrics_to_prometheus(&out),
        }
    }
}

/// The two text formats `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    /// The Prometheus text format 0.0.4: what `curl`, `promtool check metrics` and older
    /// scrapers read.
    Prometheus,
    /// OpenMetrics 1.0.0, for scrapers that ask for it.
    OpenMetrics,
}

impl Exposition {
    /// Picks the format as the Prometheus client libraries do: OpenMetrics only when the
    /// `Accept` header lists `application/openmetrics-text` with a weight at least that of
    /// `text/plain`; the text format otherwise (no header, `*/*`, anything else).
    pub fn negotiate(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return Self::Prometheus;
        };
        let (mut openmetrics, mut text) = (0.0_f32, 0.0_f32);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let q = parts
                .find_map(|p| p.strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => openmetrics = openmetrics.max(q),
                "text/plain" => text = text.max(q),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Self::OpenMetrics
        } else {
            Self::Prometheus
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Rewrites prometheus-client's OpenMetrics text as the Prometheus text format 0.0.4, which
/// has no `info` type, no `# UNIT` and no `# EOF`, and names a counter's family after its
/// `_total` sample. Samples and histograms are written the same way in both.
fn openmetrics_to_prometheus(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // Families whose HELP/TYPE names gain a suffix, found from their TYPE line. HELP comes
    // before TYPE, so the lines of one family are held until its TYPE is known.
    let mut held: Option<(&str, &str)> = None; // (name, help text)
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            held = Some((name, help));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gaugehistogram" | "stateset" | "unknown" => (name.to_owned(), "untyped"),
                other => (name.to_owned(), other),
            };
            if let Some((help_name, help)) = held.take()
                && help_name == rest.split(' ').next().unwrap_or_default()
            {
                let _ = writeln!(out, "# HELP {name} {help}");
            }
            let _ = writeln!(out, "# TYPE {name} {kind}");
            continue;
        }
        if let Some((name, help)) = held.take() {
            let _ = writeln!(out, "# HELP {name} {help}");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `process_*` metrics in the shape of the Prometheus client libraries' process collector.
#[derive(Debug)]
struct ProcessCollector {
    start_time_s: f64,
}

impl ProcessCollector {
    fn new() -> Self {
        let start_time_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Self { start_time_s }
    }
}

/// Linux reports CPU time in USER_HZ ticks, fixed at 100 on every architecture we run on.
const USER_HZ: f64 = 100.0;

impl prometheus_client::collector::Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // Fields after the parenthesised command name, which may itself contain spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of stat(5), i.e. 11 and 12 after the name.
        let cpu = ConstCounter::new((field(11) + field(12)) / USER_HZ);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse::<i64>().ok())
                .unwrap_or(0)
        };
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                kib("VmRSS:") * 1024,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                kib("VmSize:") * 1024,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as i64),
            ),
            ("process_threads", "Number of OS threads", kib("Threads:")),
        ] {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        let start = ConstGauge::new(self.start_time_s);
        start.encode(encoder.encode_descriptor(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            None,
            start.metric_type(),
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_only_when_the_scraper_asks_for_it() {
        use Exposition::*;
        for (accept, want) in [
            (None, Prometheus),
            (Some("*/*"), Prometheus),
            (Some("text/plain"), Prometheus),
            (Some("application/openmetrics-text"), OpenMetrics),
            (
                // What Prometheus 2.x sends.
                Some(
                    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                     version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                ),
                OpenMetrics,
            ),
            (
                Some("text/plain;version=0.0.4,application/openmetrics-text;q=0.5"),
                Prometheus,
            ),
            (Some("application/openmetrics-text;q=0"), Prometheus),
        ] {
            assert_eq!(Exposition::negotiate(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn the_text_format_has_no_info_type_unit_or_eof_and_names_counters_by_their_samples() {
        let om = "# HELP b opswatch build information.\n# TYPE b info\nb_info{version=\"1\"} 1\n\
                  # HELP c Alerts.\n# TYPE c counter\n# UNIT c alerts\nc_total{x=\"y\"} 2\n\
                  # HELP g A gauge.\n# TYPE g gauge\ng 1\n# EOF\n";
        assert_eq!(
            openmetrics_to_prometheus(om),
            "# HELP b_info opswatch build information.\n# TYPE b_info gauge\n\
             b_info{version=\"1\"} 1\n# HELP c_total Alerts.\n# TYPE c_total counter\n\
             c_total{x=\"y\"} 2\n# HELP g A gauge.\n# TYPE g gauge\ng 1\n"
        );
    }
}
