//! `/host`: disk per mount, inodes, memory, swap and load over a chosen range, with their
//! thresholds, and the top processes now. Also the gauges the overview shows.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::chart::{Chart, Level, Line, Point, Threshold, Unit};
use super::{
    ChartView, Meta, PageError, RangeLink, fmt_bytes, fmt_duration, parse_range, path_segment,
    range_links,
};
use crate::checks::system::HostSnapshot;
use crate::config::SystemConfig;
use crate::daemon::state::AppState;
use crate::store::{now_ms, series};

const HOST_RANGES: &[&str] = &["1h", "6h", "24h", "7d", "30d", "90d", "1y"];

/// One gauge: a value now against its thresholds.
pub struct Gauge {
    pub label: String,
    pub value: f64,
    pub max: f64,
    pub warn: f64,
    pub crit: f64,
    pub text: String,
    pub state: &'static str,
    pub state_class: &'static str,
}

fn gauge(label: String, value: f64, max: f64, warn: f64, crit: f64, text: String) -> Gauge {
    let (state, state_class) = if value > crit {
        ("critical", "bad")
    } else if value > warn {
        ("warning", "warn")
    } else {
        ("ok", "ok")
    };
    Gauge {
        label,
        value,
        max: max.max(value),
        warn,
        crit,
        text,
        state,
        state_class,
    }
}

/// Disk per mount, memory, swap and load as the last reading saw them.
pub fn gauges(cfg: &SystemConfig, snap: &HostSnapshot) -> Vec<Gauge> {
    let mut out = Vec::new();
    for m in &snap.mounts {
        let over = cfg.mounts.get(&m.mount);
        if over.is_some_and(|o| o.ignore) {
            continue;
        }
        let warn = over.and_then(|o| o.disk_warn).unwrap_or(cfg.disk_warn);
        let crit = over.and_then(|o| o.disk_crit).unwrap_or(cfg.disk_crit);
        out.push(gauge(
            format!("Disk {}", m.mount),
            m.used_pct,
            100.0,
            warn,
            crit,
            format!(
                "{:.0} % used, {} free of {}",
                m.used_pct,
                fmt_bytes(m.avail_bytes),
                fmt_bytes(m.total_bytes)
            ),
        ));
    }
    out.push(gauge(
        "Memory".to_owned(),
        snap.memory.used_pct,
        100.0,
        cfg.memory_warn,
        cfg.memory_crit,
        format!(
            "{:.0} % used, {} available of {}",
            snap.memory.used_pct,
            fmt_bytes(snap.memory.available_bytes),
            fmt_bytes(snap.memory.total_bytes)
        ),
    ));
    if let Some(s) = &snap.swap {
        out.push(gauge(
            "Swap".to_owned(),
            s.used_pct,
            100.0,
            cfg.swap_warn,
            cfg.swap_crit,
            format!(
                "{:.0} % used, {} of {}",
                s.used_pct,
                fmt_bytes(s.used_bytes),
                fmt_bytes(s.total_bytes)
            ),
        ));
    }
    let (warn, crit) = load_thresholds(cfg, snap.cpus);
    out.push(gauge(
        "Load (1 min)".to_owned(),
        snap.load.one,
        crit * 1.25,
        warn,
        crit,
        format!(
            "{:.2} / {:.2} / {:.2} (1, 5, 15 min) on {} cores",
            snap.load.one, snap.load.five, snap.load.fifteen, snap.cpus
        ),
    ));
    out
}

/// Load thresholds as absolute numbers (per core when the config says so).
fn load_thresholds(cfg: &SystemConfig, cpus: usize) -> (f64, f64) {
    let k = if cfg.load_per_core {
        cpus.max(1) as f64
    } else {
        1.0
    };
    (cfg.load_warn * k, cfg.load_crit * k)
}

fn thresholds(warn: f64, crit: Option<f64>) -> Vec<Threshold> {
    let mut t = vec![Threshold {
        level: Level::Warning,
        value: warn,
    }];
    if let Some(c) = crit {
        t.push(Threshold {
            level: Level::Critical,
            value: c,
        });
    }
    t
}

struct TopProcess {
    name: String,
    pid: i64,
    cpu: String,
    memory: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "host.html")]
pub struct HostPage {
    meta: Meta,
    ranges: Vec<RangeLink>,
    range: &'static str,
    gauges: Vec<Gauge>,
    reading: String,
    charts: Vec<ChartView>,
    top_cpu: Vec<TopProcess>,
    top_memory: Vec<TopProcess>,
}

#[derive(Debug, Deserialize)]
pub struct RangeQuery {
    range: Option<String>,
}

fn points(p: Vec<crate::store::Point>) -> Vec<Point> {
    p.into_iter()
        .map(|p| Point {
            at_ms: p.at_ms,
            lo: p.min,
            mid: p.avg,
            hi: p.max,
        })
        .collect()
}

pub async fn page(
    State(app): State<AppState>,
    Query(q): Query<RangeQuery>,
) -> Result<HostPage, PageError> {
    let now = now_ms();
    let (range, span) = parse_range(q.range.as_deref(), "24h", HOST_RANGES)?;
    let (since, until) = (now - span, now + 1);
    let cfg = &app.config.system;
    let snapshot = app.live.host.read().ok().and_then(|h| h.clone());
    let cpus = snapshot.as_ref().map_or(1, |s| s.cpus);
    let pct_chart = |id: String, title: String, pts: Vec<crate::store::Point>, th| Chart {
        id,
        title,
        unit: Unit::Percent,
        since_ms: since,
        until_ms: now,
        lines: vec![Line {
            label: String::new(),
            points: points(pts),
        }],
        thresholds: th,
        y_min: Some(0.0),
        y_max: Some(100.0),
        band_label: "min–max",
        line_label: "average",
    };
    let json = |family: &str| format!("/api/v1/metrics/{family}?range={range}");
    // Every series the page draws, read side by side; the charts below take theirs by name.
    let disks: Vec<String> = app
        .store
        .list_series(series::DISK_USED_PCT)
        .await?
        .into_iter()
        .filter(|name| {
            let mount = &name[series::DISK_USED_PCT.len()..];
            !cfg.mounts.get(mount).is_some_and(|o| o.ignore)
        })
        .collect();
    let inodes = app.store.list_series(series::DISK_INODE_PCT).await?;
    const LOADS: [(&str, &str); 3] = [
        (series::LOAD_1, "1 min"),
        (series::LOAD_5, "5 min"),
        (series::LOAD_15, "15 min"),
    ];
    let mut names = disks.clone();
    names.extend(inodes.iter().cloned());
    names.extend([series::MEMORY_USED_PCT, series::SWAP_USED_PCT].map(String::from));
    names.extend(LOADS.map(|(name, _)| name.to_owned()));
    let mut read: std::collections::HashMap<String, Vec<crate::store::Point>> = app
        .store
        .query_many_series(names, since, until)
        .await?
        .into_iter()
        .collect();
    let mut take = |name: &str| read.remove(name).unwrap_or_default();
    let mut charts = Vec::new();
    for (i, name) in disks.into_iter().enumerate() {
        let mount = name[series::DISK_USED_PCT.len()..].to_owned();
        let over = cfg.mounts.get(&mount);
        let warn = over.and_then(|o| o.disk_warn).unwrap_or(cfg.disk_warn);
        let crit = over.and_then(|o| o.disk_crit).unwrap_or(cfg.disk_crit);
        let pts = take(&name);
        let chart = pct_chart(
            format!("disk{i}"),
            format!("Disk {mount} used"),
            pts,
            thresholds(warn, Some(crit)),
        );
        charts.push(ChartView::of(&chart).with_json(format!(
            "/api/v1/metrics/{}?range={range}",
            path_segment(&name)
        )));
    }
    let mut inode_lines = Vec::new();
    for name in inodes {
        let pts = take(&name);
        inode_lines.push(Line {
            label: name[series::DISK_INODE_PCT.len()..].to_owned(),
            points: points(pts),
        });
    }
    if !inode_lines.is_empty() {
        let mut chart = pct_chart(
            "inodes".to_owned(),
            "Inodes used, per mount".to_owned(),
            Vec::new(),
            thresholds(cfg.inode_warn, None),
        );
        chart.lines = inode_lines;
        charts.push(ChartView::of(&chart).with_json(json("inodes")));
    }
    let memory = take(series::MEMORY_USED_PCT);
    charts.push(
        ChartView::of(&pct_chart(
            "memory".to_owned(),
            "Memory used".to_owned(),
            memory,
            thresholds(cfg.memory_warn, Some(cfg.memory_crit)),
        ))
        .with_json(json("memory")),
    );
    let swap = take(series::SWAP_USED_PCT);
    charts.push(
        ChartView::of(&pct_chart(
            "swap".to_owned(),
            "Swap used".to_owned(),
            swap,
            thresholds(cfg.swap_warn, Some(cfg.swap_crit)),
        ))
        .with_json(json("swap")),
    );
    let (lw, lc) = load_thresholds(cfg, cpus);
    let mut load_lines = Vec::new();
    for (name, label) in LOADS {
        load_lines.push(Line {
            label: label.to_owned(),
            points: points(take(name)),
        });
    }
    let mut load_th = thresholds(lw, Some(lc));
    load_th.push(Threshold {
        level: Level::Reference,
        value: cpus as f64,
    });
    let load = Chart {
        id: "load".to_owned(),
        title: "Load average".to_owned(),
        unit: Unit::Plain,
        since_ms: since,
        until_ms: now,
        lines: load_lines,
        thresholds: load_th,
        y_min: Some(0.0),
        y_max: None,
        band_label: "min–max",
        line_label: "average",
    };
    charts.push(ChartView::of(&load).with_json(json("load")));

    let top = |list: &[crate::checks::system::ProcessUsage]| -> Vec<TopProcess> {
        list.iter()
            .map(|p| TopProcess {
                name: p.name.clone(),
                pid: p.pid,
                cpu: format!("{:.1} %", p.cpu_pct),
                memory: fmt_bytes(p.rss_bytes),
            })
            .collect()
    };
    let (gauges, reading, top_cpu, top_memory) = match &snapshot {
        Some(s) => (
            gauges(cfg, s),
            format!(
                "Last reading {} ago; up {}.",
                fmt_duration(now - s.at_ms),
                fmt_duration((s.uptime_s * 1000.0) as i64)
            ),
            top(&s.top_cpu),
            top(&s.top_memory),
        ),
        None => (
            Vec::new(),
            if cfg.enabled {
                "No reading yet: the first host sample is taken within a minute of start."
                    .to_owned()
            } else {
                "Host metrics are off ([system] enabled = false).".to_owned()
            },
            Vec::new(),
            Vec::new(),
        ),
    };
    Ok(HostPage {
        meta: Meta::new("/host", json("memory"), now),
        ranges: range_links("/host", HOST_RANGES, range),
        range,
        gauges,
        reading,
        charts,
        top_cpu,
        top_memory,
    })
}
