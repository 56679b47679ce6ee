//! The jobs over all shipments: processing (drives every due shipment, a bounded number at
//! once), cleanup (completed shipments past their retention, vault keys first), and the
//! dependency checks of GetStatus. The cron loops that run the jobs are in `crate::scheduler`.

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
        let started = std::time::Instant::now();
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
        let outcome = if first_error.is_some() {
            "failed"
        } else {
            "ok"
        };
        metrics::counter!("fpr_process_runs_total", "outcome" => outcome).increment(1);
        metrics::histogram!("fpr_process_run_duration_seconds")
            .record(started.elapsed().as_secs_f64());
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
                self.vault
                    .purge(&r.vault_ref())
                    .await
                    .map_err(Error::Vault)?;
                self.store.delete(&r.id).await?;
                n += 1;
            }
        }
        info!(job = "cleanup", removed = n, "Cleanup run done");
        Ok(n)
    }

    /// The health of what the workflow depends on, each as a detail or the reason it is not
    /// healthy: the store, the vault (key store and Yubico keys), YubiEnterprise and Graph.
    pub async fn dependencies(&self) -> Vec<(&'static str, Result<String, String>)> {
        let store = self
            .store
            .count()
            .map(|n| format!("{n} shipments"))
            .map_err(|e| e.to_string());
        let vault = self
            .vault
            .status()
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| {
                let ks = r.key_store.unwrap_or_default();
                let t = r.transport_jwks.unwrap_or_default();
                if ks.healthy && !t.kids.is_empty() {
                    Ok(format!(
                        "vault {}, {} sealed keys",
                        r.version, ks.sealed_keys
                    ))
                } else {
                    Err("key store or Yubico keys not ready".into())
                }
            });
        let yubienterprise = self
            .yubienterprise
            .ping()
            .await
            .map(|()| "reachable".to_owned())
            .map_err(|e| e.to_string());
        let entra = self
            .entra()
            .ping()
            .await
            .map(|()| "token issued".to_owned())
            .map_err(|e| e.to_string());
        let (minutes, warning) = &self.settings.entra_challenge;
        let challenge = match warning {
            Some(w) => Err(w.clone()),
            None => Ok(format!("challenges live {minutes} minutes")),
        };
        vec![
            ("store", store),
            ("vault", vault),
            ("yubienterprise", yubienterprise),
            ("entra", entra),
            ("entra challenge lifetime", challenge),
        ]
    }
}
