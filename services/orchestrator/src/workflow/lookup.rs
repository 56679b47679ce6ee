//! Okta users looked up together. CreateShipment needs the Okta profile of each row it
//! checks, and `fpr batch` checks its rows 32 at a time: one `GET /api/v1/users/{id}` each
//! spent Okta's rate limit (600 a minute on many orgs) once a row, so a batch of thousands
//! waited on the limit, not on work. Here a look-up that finds none under way waits
//! [`GATHER`] for others to join it; those that arrive while a call is under way wait for it;
//! each group goes out as one search ([`fpr_okta::Client::users`], at most
//! [`fpr_okta::MAX_SEARCH`] at a time). A group is formed only once the rate limit lets a call
//! go ([`fpr_okta::Client::ready`]): while the window is spent, look-ups gather, and the call
//! that ends the wait carries them all instead of one.

use std::sync::{Arc, Mutex, PoisonError};

use fpr_okta::User;
use fpr_upstream::Error as UpstreamError;
use tokio::sync::oneshot;

use super::VaultError;
use crate::Error;

type Answer = Result<Option<User>, UpstreamError>;

/// How long a look-up that finds none under way waits for others to go out with it: a batch's
/// rows arrive a few at a time, and one that went alone at once cost a call for one user (half
/// the calls of a batch's check). Small beside an Okta call's own time.
const GATHER: std::time::Duration = std::time::Duration::from_millis(2);

/// Look-ups waiting for the one under way, and whether one is.
#[derive(Default)]
struct Queue {
    waiting: Vec<(String, oneshot::Sender<Answer>)>,
    running: bool,
}

/// Coalesces concurrent Okta user look-ups (see the module docs).
pub(crate) struct Lookups {
    client: Arc<fpr_okta::Client>,
    queue: Mutex<Queue>,
}

impl Lookups {
    pub(crate) fn new(client: Arc<fpr_okta::Client>) -> Arc<Self> {
        Arc::new(Self {
            client,
            queue: Mutex::new(Queue::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The user `key` (an id or a login) names; None when no user has it.
    pub(crate) async fn user(self: &Arc<Self>, key: &str) -> Answer {
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut q = self.lock();
            q.waiting.push((key.to_owned(), tx));
            !std::mem::replace(&mut q.running, true)
        };
        if lead {
            // Its own task: the caller may go away (its RPC cancelled) while others wait.
            tokio::spawn(self.clone().drain());
        }
        rx.await.unwrap_or_else(|_| {
            Err(UpstreamError::Transient {
                upstream: "okta",
                reason: "the look-up was dropped".into(),
                retry_after: None,
                maybe_applied: false,
            })
        })
    }

    /// Answers every waiting look-up, a group at a time, until none waits.
    async fn drain(self: Arc<Self>) {
        tokio::time::sleep(GATHER).await;
        loop {
            self.client.ready().await;
            let group: Vec<(String, oneshot::Sender<Answer>)> = {
                let mut q = self.lock();
                if q.waiting.is_empty() {
                    q.running = false;
                    return;
                }
                let n = q.waiting.len().min(fpr_okta::MAX_SEARCH);
                q.waiting.drain(..n).collect()
            };
            let keys: Vec<String> = group.iter().map(|(k, _)| k.clone()).collect();
            let answers = self.client.users(&keys).await;
            for ((_, tx), answer) in group.into_iter().zip(answers) {
                let _ = tx.send(answer);
            }
        }
    }
}

// === impl Workflow ===

impl super::Workflow {
    /// An Okta user's profile attributes, for filling a request's empty shipping fields; an
    /// unknown user is an invalid `user_id`.
    pub async fn okta_profile(
        &self,
        user_id: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, Error> {
        if self.lookups.is_none() {
            return Err(Error::Invalid(vec![fpr_domain::Violation::new(
                "idp",
                "Okta is not configured on this fpr",
            )]));
        }
        match self.okta_user(user_id).await {
            Ok(u) => Ok(u.profile),
            Err(UpstreamError::NotFound { .. }) => {
                Err(Error::Invalid(vec![fpr_domain::Violation::new(
                    "user_id",
                    "no such Okta user",
                )]))
            }
            Err(e) => Err(Error::Upstream(e)),
        }
    }

    /// The Okta user `key` (an id or a login) names. A user found in the last two minutes is
    /// reused (a batch checks each row, orders it, and processing enrolls it, within
    /// seconds); look-ups under way together go out together ([`lookup`]).
    pub(crate) async fn okta_user(&self, key: &str) -> Result<fpr_okta::User, UpstreamError> {
        let Some(lookups) = &self.lookups else {
            return Err(UpstreamError::Rejected {
                upstream: "okta",
                status: 400,
                code: "not_configured".into(),
                message: "Okta is not configured on this fpr".into(),
            });
        };
        if let Some(u) = self.profiles.get(key) {
            return Ok(u);
        }
        match lookups.user(key).await? {
            Some(u) => {
                self.profiles.put(key.to_owned(), u.clone());
                Ok(u)
            }
            None => Err(UpstreamError::NotFound {
                upstream: "okta",
                message: format!("User {key}"),
            }),
        }
    }

    /// Whether the vault's PIN recipient policy allows `recipients`; an allowed list is
    /// remembered for two minutes (the vault checks again when it seals).
    pub async fn check_recipients(&self, recipients: &[String]) -> Result<(), VaultError> {
        let key = recipients.join("\n");
        if self.recipients_allowed.get(&key).is_some() {
            return Ok(());
        }
        self.vault.check_recipients(recipients).await?;
        self.recipients_allowed.put(key, ());
        Ok(())
    }
}
