//! `/processes`: PM2 apps and systemd units with state, uptime, CPU, memory and restarts.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::{Meta, PageError, chart, fmt_bytes, fmt_duration, state_class};
use crate::daemon::state::AppState;
use crate::store::rollups::FIVE_MINUTES_MS;
use crate::store::series::{self, PM2_RESTARTS, SYSTEMD_RESTARTS};
use crate::store::{Point, now_ms};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
/// The crash-loop rule's window and count (PRODUCT.md: > 5 restarts within 5 min).
const CRASH_LOOP_WINDOW_MS: i64 = 5 * 60_000;
const CRASH_LOOP_RESTARTS: f64 = 5.0;

/// One process as the pages show it.
pub struct ProcessRow {
    pub kind: &'static str,
    pub name: String,
    pub state: String,
    pub state_class: &'static str,
    pub pid: String,
    pub uptime: String,
    pub cpu: String,
    pub memory: String,
    pub restarts_total: String,
    pub restarts_hour: i64,
    /// Restarts per hour over the last 24 hours.
    pub spark: String,
    pub crash_loop: bool,
}

impl ProcessRow {
    /// Down, crash-looping or restarted within the hour: the overview lists it.
    pub fn needs_attention(&self) -> bool {
        self.crash_loop || self.restarts_hour > 0 || self.state_class != "ok"
    }
}

/// What one read of a restart counter's last 24 hours says.
struct Restarts {
    /// Per hour, oldest first; `None` where nothing was sampled.
    hourly: Vec<Option<f64>>,
    last_hour: f64,
    /// Within about the last 5 minutes (points are 5 minutes wide up to the roll-up's
    /// cursor, a minute after it).
    recent: f64,
}

impl Restarts {
    fn crash_loop(&self) -> bool {
        self.recent > CRASH_LOOP_RESTARTS
    }

    /// What the row's state says: a crash loop over the manager's own word.
    fn state(&self, managers_word: &str) -> String {
        if self.crash_loop() {
            "crash loop".to_owned()
        } else {
            managers_word.to_owned()
        }
    }

    fn spark(&self) -> String {
        chart::spark_bars(&self.hourly, "restarts per hour, last 24 h")
    }
}

/// Restarts from a restart counter's points over the last 24 hours, oldest first; a drop in
/// the counter is a reset, counted from zero.
fn restarts(points: &[Point], now: i64) -> Restarts {
    let since = now - 24 * HOUR_MS;
    let mut out = Restarts {
        hourly: vec![None; 24],
        last_hour: 0.0,
        recent: 0.0,
    };
    let mut prev: Option<f64> = None;
    for p in points {
        let h = ((p.at_ms - since) / HOUR_MS).clamp(0, 23) as usize;
        let mut inc = p.max - p.min;
        if let Some(prev) = prev {
            inc += if p.min >= prev { p.min - prev } else { p.min };
        }
        *out.hourly[h].get_or_insert(0.0) += inc;
        if p.at_ms >= now - HOUR_MS {
            out.last_hour += inc;
        }
        if p.at_ms >= now - CRASH_LOOP_WINDOW_MS {
            out.recent += inc;
        }
        prev = Some(p.max);
    }
    out
}

/// The last 24 hours of every restart counter named `prefix…`, keyed by name. One read for
/// all of them (5-minute roll-ups, then the raw samples of the last minutes a minute apart)
/// while `[history] five_minute` keeps a day; with a shorter retention, one read per counter
/// that picks whichever tier covers the day.
async fn restart_points(
    app: &AppState,
    prefix: &str,
    names: &[String],
    now: i64,
) -> anyhow::Result<HashMap<String, Vec<Point>>> {
    // From a 5-minute boundary: a roll-up bucket is read whole or not at all.
    let since = (now - 24 * HOUR_MS).div_euclid(FIVE_MINUTES_MS) * FIVE_MINUTES_MS;
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    if app.config.history.five_minute.as_millis_i64() >= 24 * HOUR_MS + FIVE_MINUTES_MS {
        return app
            .store
            .series_points_by_prefix(prefix, since, now + 1, MINUTE_MS)
            .await;
    }
    let mut out = HashMap::new();
    for name in names {
        out.insert(
            name.clone(),
            app.store.query_series(name, since, now + 1).await?,
        );
    }
    Ok(out)
}

/// Every watched process with its restarts; the live readings say what runs now.
pub async fn process_rows(
    app: &AppState,
    now: i64,
) -> anyhow::Result<(Vec<ProcessRow>, Vec<String>)> {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let pm2 = app.live.pm2.read().ok().and_then(|r| r.clone());
    if let Some(reading) = pm2 {
        if let Some(e) = &reading.error {
            notes.push(format!("PM2: {e}"));
        }
        let names: Vec<String> = reading
            .items
            .iter()
            .map(|a| series::of(PM2_RESTARTS, &series::pm2_instance(&a.name, a.pm_id)))
            .collect();
        let points = restart_points(app, PM2_RESTARTS, &names, now).await?;
        for (a, series) in reading.items.into_iter().zip(&names) {
            let r = restarts(points.get(series).map_or(&[], Vec::as_slice), now);
            let crash_loop = r.crash_loop();
            let state = r.state(&a.status);
            rows.push(ProcessRow {
                kind: "pm2",
                name: format!("{} #{}", a.name, a.pm_id),
                state_class: state_class(&state),
                state,
                pid: a.pid.map(|p| p.to_string()).unwrap_or_default(),
                uptime: a.uptime_ms.map(fmt_duration).unwrap_or_default(),
                cpu: format!("{:.1} %", a.cpu_pct),
                memory: fmt_bytes(a.memory_bytes),
                restarts_total: a.restarts.to_string(),
                restarts_hour: r.last_hour.round() as i64,
                spark: r.spark(),
                crash_loop,
            });
        }
    }
    let systemd = app.live.systemd.read().ok().and_then(|r| r.clone());
    if let Some(reading) = systemd {
        if let Some(e) = &reading.error {
            notes.push(format!("systemd: {e}"));
        }
        let names: Vec<String> = reading
            .items
            .iter()
            .map(|u| series::of(SYSTEMD_RESTARTS, &u.unit))
            .collect();
        let points = restart_points(app, SYSTEMD_RESTARTS, &names, now).await?;
        for (u, series) in reading.items.into_iter().zip(&names) {
            let r = restarts(points.get(series).map_or(&[], Vec::as_slice), now);
            let crash_loop = r.crash_loop();
            let state = r.state(&u.active_state);
            rows.push(ProcessRow {
                kind: "systemd",
                name: u.unit.clone(),
                state_class: state_class(&state),
                state: if u.sub_state.is_empty() || crash_loop {
                    state
                } else {
                    format!("{state} ({})", u.sub_state)
                },
                pid: u
                    .main_pid
                    .filter(|p| *p > 0)
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                uptime: u
                    .active_enter_ms
                    .filter(|_| u.active_state == "active")
                    .map(|t| fmt_duration(now - t))
                    .unwrap_or_default(),
                cpu: String::new(),
                memory: u.memory_bytes.map(fmt_bytes).unwrap_or_default(),
                restarts_total: u.n_restarts.map(|n| n.to_string()).unwrap_or_default(),
                restarts_hour: r.last_hour.round() as i64,
                spark: r.spark(),
                crash_loop,
            });
        }
    }
    let failed = app
        .live
        .systemd_failed
        .read()
        .map(|f| f.clone())
        .unwrap_or_default();
    if !failed.is_empty() {
        notes.push(format!("Failed units on this host: {}", failed.join(", ")));
    }
    Ok((rows, notes))
}

#[derive(Template, WebTemplate)]
#[template(path = "processes.html")]
pub struct ProcessesPage {
    meta: Meta,
    procs: Vec<ProcessRow>,
    notes: Vec<String>,
}

pub async fn page(State(app): State<AppState>) -> Result<ProcessesPage, PageError> {
    let now = now_ms();
    let (procs, notes) = process_rows(&app, now).await?;
    Ok(ProcessesPage {
        meta: Meta::new("/processes", "/api/v1/processes", now),
        procs,
        notes,
    })
}
