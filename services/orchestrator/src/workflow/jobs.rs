//! The jobs over all shipments: processing (drives every due shipment, a bounded number at
//! once) and cleanup (completed shipments past their retention, vault keys first). The cron
//! loops that run them are in `crate::scheduler`.

use std::sync::Arc;

use fpr_domain::model::State;
use tracing::{info, warn};

use super::{Outcome, Workflow, now};
use crate::Error;

// === impl Workflow ===

impl Workflow {
    /// The processing job: every due ongoing shipment, `concurrency` at a time. Never two
    /// runs at once: a second caller waits for the first.
    pub async fn process(
        self: &Arc<Self>,
    ) -> Result<fpr_proto::v1::ProcessShipmentsResponse, Error> {
        use futures_util::StreamExt as _;
        let _running = self.process_lock.lock().await;
        let due = self.store.due(now())?;
        let mut out = fpr_proto::v1::ProcessShipmentsResponse {
            examined: due.len() as u32,
            ..Default::default()
        };
        let results: Vec<Result<Outcome, Error>> = futures_util::stream::iter(due)
            .map(|id| {
                let wf = self.clone();
                async move { wf.drive(&id).await }
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let mut first_error = None;
        for r in results {
            match r {
                Ok(Outcome::Advanced) => out.advanced += 1,
                Ok(Outcome::Completed) => {
                    out.advanced += 1;
                    out.completed += 1;
                }
                Ok(Outcome::Errored) => out.errored += 1,
                Ok(Outcome::Deferred) => out.deferred += 1,
                Ok(Outcome::Waiting | Outcome::Idle) => {}
                Err(e) => {
                    warn!(error = %e, "A shipment could not be driven");
                    first_error.get_or_insert(e);
                }
            }
        }
        info!(
            job = "process",
            examined = out.examined,
            completed = out.completed,
            errored = out.errored,
            deferred = out.deferred,
            "Processing run done"
        );
        match first_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Removes completed shipments last changed before `cutoff` (unix seconds) and purges
    /// their vault keys first. Records of other states are kept whatever their age.
    pub async fn cleanup_before(&self, cutoff: i64) -> Result<u32, Error> {
        let mut n = 0;
        for r in self.store.all()? {
            if r.state == State::Complete && r.updated_at < cutoff {
                self.vault.purge(&r.id).await.map_err(Error::Vault)?;
                self.store.delete(&r.id)?;
                n += 1;
            }
        }
        info!(job = "cleanup", removed = n, "Cleanup run done");
        Ok(n)
    }
}
