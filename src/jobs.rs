//! Which jobs a running opswatch has, built from the config: one registration per job kind.

use std::sync::Arc;
use std::time::Duration;

use crate::app::AppState;
use crate::checks::http::HttpProbe;
use crate::metrics::CheckLabels;
use crate::scheduler::{Job, Scheduler, Trigger};

/// The scheduler with every job the config asks for.
pub fn scheduler(app: &AppState) -> anyhow::Result<Scheduler> {
    let mut s = Scheduler::default();
    for cfg in &app.config.http {
        s.add(http_check(HttpProbe::new(cfg.clone())?));
    }
    Ok(s)
}

fn http_check(probe: HttpProbe) -> Job {
    let probe = Arc::new(probe);
    let every = probe.config.every.get();
    // The probe has its own timeout; this one only guards against the store hanging.
    let timeout = probe.config.timeout.get() + Duration::from_secs(30);
    Job {
        name: format!("http:{}", probe.name()),
        trigger: Trigger::Every(every),
        timeout,
        run: Arc::new(move |app: AppState| {
            let probe = probe.clone();
            Box::pin(async move {
                let result = probe.probe().await;
                app.metrics
                    .check_duration
                    .get_or_create(&CheckLabels {
                        check: probe.name().to_owned(),
                        kind: "http".to_owned(),
                    })
                    .observe(result.latency_ms.unwrap_or_default() as f64 / 1000.0);
                crate::rules::http::process(&app, &probe, &result).await?;
                Ok(())
            })
        }),
    }
}
