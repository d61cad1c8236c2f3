//! The scheduled reports, the daily certificate-expiry check and the scheduled restart.

use std::time::Duration;

use super::job;
use crate::daemon::scheduler::{Scheduler, Trigger};
use crate::daemon::state::AppState;
use crate::reports::{Kind, daily, security, weekly};

/// A report may read a week of logs or wait on `apt-get`: generous, but bounded.
const REPORT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Adds every report job the config asks for.
pub fn add(s: &mut Scheduler, app: &AppState) {
    let r = &app.config.reports;
    for (kind, enabled, schedule) in [
        (Kind::Daily, r.daily.enabled, &r.daily.schedule),
        (Kind::Weekly, r.weekly.enabled, &r.weekly.schedule),
        (Kind::Security, r.security.enabled, &r.security.schedule),
    ] {
        if !enabled {
            continue;
        }
        s.add(job(
            format!("report:{}", kind.as_str()),
            Trigger::Cron(Box::new(schedule.clone())),
            REPORT_TIMEOUT,
            move |app| async move { run_scheduled(&app, kind).await },
        ));
    }
    if r.security.enabled
        && app
            .config
            .http
            .iter()
            .any(|h| h.url.starts_with("https://"))
    {
        s.add(job(
            "tls:expiry".to_owned(),
            Trigger::Cron(Box::new(r.security.tls_schedule.clone())),
            Duration::from_secs(60),
            |app| async move { security::check_tls_expiry(&app).await },
        ));
    }
    if app.config.restart.enabled {
        s.add(job(
            "restart".to_owned(),
            Trigger::Cron(Box::new(app.config.restart.schedule.clone())),
            app.config.restart.verify_after.get() + Duration::from_secs(10 * 60),
            |app| async move { super::restart::run(&app).await.map(|_| ()) },
        ));
    }
}

/// Produces, stores and sends one report for the occurrence that is firing now.
async fn run_scheduled(app: &AppState, kind: Kind) -> anyhow::Result<()> {
    let occurrence = crate::daemon::job_run::current_occurrence();
    let report = produce(app, kind, true).await?;
    crate::reports::publish(app, &report.report, occurrence, true).await?;
    if let Some(e) = report.failure {
        anyhow::bail!(e);
    }
    Ok(())
}

/// A rendered report, and what went wrong while gathering it (the report still goes out).
pub struct Produced {
    pub report: crate::reports::Report,
    /// `Some` when part of it could not be gathered (the app database was unreachable).
    pub failure: Option<String>,
}

/// Gathers and renders one report now. Only a `scheduled` report moves what reports
/// remember (where the log scan stopped, addresses and ports already seen): a report run by
/// hand shows the same as the next scheduled one would, and takes nothing away from it.
pub async fn produce(app: &AppState, kind: Kind, scheduled: bool) -> anyhow::Result<Produced> {
    let now = crate::store::now_ms();
    Ok(match kind {
        Kind::Daily => {
            let d = daily::gather(app, now).await?;
            let failure = match &d.stats {
                daily::Stats::Unreachable { error } => {
                    Some(format!("the app database cannot be reached: {error}"))
                }
                _ => None,
            };
            Produced {
                report: daily::render(&d, &app.config),
                failure,
            }
        }
        Kind::Weekly => Produced {
            report: weekly::render(&weekly::gather(app, now, scheduled).await?),
            failure: None,
        },
        Kind::Security => Produced {
            report: security::render_with(
                &security::gather(app, now, scheduled).await?,
                app.config.reports.security.tls_warn_days,
            ),
            failure: None,
        },
    })
}
