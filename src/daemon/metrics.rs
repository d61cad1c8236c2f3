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

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
            let _ = writeln!(out, "# metrics could not be encoded");
        }
        out
    }
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
