//! The disk phase: the orchestrator's store on a small tmpfs that fills up and goes read-only (root only).

use super::*;

/// What the disk phase found.
#[derive(Debug, Default, Clone)]
pub struct DiskReport {
    /// Why it did not run (no tmpfs can be mounted here), if it did not.
    pub skipped: Option<String>,
    /// Orders fpr acknowledged before the disk filled up.
    pub acknowledged: usize,
    /// Orders refused with UNAVAILABLE naming the full disk.
    pub refused_full: usize,
    /// Other answers while the disk was full (each listed in `notes`).
    pub unclear: usize,
    /// Whether the orchestrator refused to start on a read-only store, and what it said.
    pub read_only_refused: Option<String>,
    /// Acknowledged orders missing after the disk had room again and the store was reopened.
    pub missing: usize,
    /// Orders acknowledged after the store was reopened with room (should be all asked).
    pub after: usize,
    /// Details.
    pub notes: Vec<String>,
}

/// Unmounts a tmpfs when dropped.
pub(super) struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

pub(super) fn mount(args: &[&str], at: &Path) -> bool {
    Command::new("mount")
        .args(args)
        .arg(at)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The disk phase: the orchestrator's store on a small tmpfs that fills up, then goes
/// read-only, then gets room again. Needs root (to mount); otherwise it says so and skips.
pub async fn disk_phase(exe: &Path) -> anyhow::Result<DiskReport> {
    let mut r = DiskReport::default();
    let mnt = tempfile::tempdir()?;
    if !mount(&["-t", "tmpfs", "-o", "size=1m", "tmpfs"], mnt.path()) {
        r.skipped = Some("cannot mount a tmpfs here (needs root)".into());
        return Ok(r);
    }
    let _mounted = Mounted(mnt.path().to_owned());
    let store = mnt.path().join("store");
    let stack = start_in(exe, Clock::Manual, 600, Some(&store), &|_| {}).await?;
    let users = stack.users(600).await?;
    let mut acked = Vec::new();
    let mut refusals_in_a_row = 0;
    for (i, u) in users.iter().enumerate() {
        let mut c = stack.client()?;
        match c
            .create_shipment(order_request(&format!("disk-{i}"), u))
            .await
        {
            Ok(resp) => {
                acked.push(resp.into_inner().shipment_id);
                refusals_in_a_row = 0;
            }
            Err(e) if e.code() == tonic::Code::Unavailable && e.message().contains("full") => {
                r.refused_full += 1;
                refusals_in_a_row += 1;
            }
            Err(e) => {
                r.unclear += 1;
                r.notes.push(format!("{:?}: {}", e.code(), e.message()));
                refusals_in_a_row += 1;
                if e.code() == tonic::Code::Unknown || e.code() == tonic::Code::Unavailable {
                    // The process may have died: bring it back as a supervisor would.
                    stack.kill_orchestrator();
                    if let Err(err) = stack.start_orchestrator(None) {
                        r.notes.push(format!("restart on the full disk: {err:#}"));
                    }
                }
            }
        }
        if refusals_in_a_row >= 5 {
            break;
        }
    }
    r.acknowledged = acked.len();
    stack.kill_orchestrator();
    if mount(&["-o", "remount,ro"], mnt.path()) {
        let (status, said) = stack.start_orchestrator_failing()?;
        if !status.success() {
            r.read_only_refused = Some(said);
        }
    }
    if !mount(&["-o", "remount,rw,size=256m"], mnt.path()) {
        bail!("could not give the tmpfs room again");
    }
    stack.start_orchestrator(None)?;
    let mut c = stack.client()?;
    for id in &acked {
        let found = c
            .get_shipment(pb::GetShipmentRequest {
                shipment_id: id.clone(),
            })
            .await;
        if found.is_err() {
            r.missing += 1;
            r.notes.push(format!("acknowledged {id} missing"));
        }
    }
    for (i, u) in users.iter().enumerate().skip(acked.len() + 50).take(5) {
        if c.create_shipment(order_request(&format!("disk-after-{i}"), u))
            .await
            .is_ok()
        {
            r.after += 1;
        }
    }
    Ok(r)
}
