//! The two scheduled jobs (processing, cleanup) on cron expressions with seconds. A job never
//! runs twice at once: processing takes the service's processing lock. Processing also runs
//! when the workflow wakes it (a shipment accepted without its order).

use std::str::FromStr as _;
use std::sync::Arc;

use tracing::{Instrument as _, info_span, warn};

use crate::service::ShipmentService;
use crate::workflow::Workflow;

/// A processing run waits for this long a gap in acceptances…
const QUIET_GAP: std::time::Duration = std::time::Duration::from_millis(250);
/// …but no longer than this.
const QUIET_AT_MOST: std::time::Duration = std::time::Duration::from_secs(30);

/// Spawns a loop that runs `job` at each time of `expr` (UTC), and also, with `wake`, each
/// time the workflow asks for a run ahead of the schedule.
fn spawn(
    name: &'static str,
    expr: &str,
    wake: Option<Arc<Workflow>>,
    job: impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + 'static,
) -> Option<tokio::task::JoinHandle<()>> {
    let schedule = match cron::Schedule::from_str(expr) {
        Ok(s) => s,
        Err(e) => {
            warn!(job = name, error = %e, "Bad schedule; job not started");
            return None;
        }
    };
    Some(tokio::spawn(
        async move {
            loop {
                let Some(next) = schedule.upcoming(chrono::Utc).next() else {
                    return;
                };
                let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
                match &wake {
                    Some(wf) => tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = wf.woken() => {}
                    },
                    None => tokio::time::sleep(wait).await,
                }
                if let Some(wf) = &wake {
                    wf.quiet(QUIET_GAP, QUIET_AT_MOST).await;
                }
                job().await;
            }
        }
        .instrument(info_span!("scheduler", job = name)),
    ))
}

/// Starts both jobs.
pub fn start(
    service: ShipmentService,
    process: &str,
    cleanup: &str,
    cleanup_days: u32,
) -> Vec<tokio::task::JoinHandle<()>> {
    let wake = Some(service.workflow().clone());
    let p = service.clone();
    let c = service;
    [
        spawn("process_shipments", process, wake, move || {
            let s = p.clone();
            Box::pin(async move {
                if let Err(e) = s.process().await {
                    warn!(error = %e, "Processing run failed");
                }
            })
        }),
        spawn("data_cleanup", cleanup, None, move || {
            let s = c.clone();
            Box::pin(async move {
                if let Err(e) = s.cleanup(cleanup_days).await {
                    warn!(error = %e, "Cleanup run failed");
                }
            })
        }),
    ]
    .into_iter()
    .flatten()
    .collect()
}
