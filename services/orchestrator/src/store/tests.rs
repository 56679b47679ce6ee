use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use fpr_domain::model::Step;
use fpr_store::{Batch, Entry, Tree};

use super::*;

/// An in-memory tree whose writes start failing (as a full disk, or a process that died)
/// after `ok` of them.
struct Failing {
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    ok: AtomicUsize,
}

impl Failing {
    fn write(&self) -> fpr_store::Result<()> {
        match self
            .ok
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        {
            Ok(_) => Ok(()),
            Err(_) => Err(fpr_store::Error::Io(sled::Error::Io(std::io::Error::from(
                std::io::ErrorKind::StorageFull,
            )))),
        }
    }
}

impl Tree for Failing {
    fn get(&self, key: &[u8]) -> fpr_store::Result<Option<Vec<u8>>> {
        Ok(self.map.lock().unwrap().get(key).cloned())
    }
    fn apply(&self, batch: Batch) -> fpr_store::Result<()> {
        self.write()?;
        let mut m = self.map.lock().unwrap();
        for (k, v) in batch.into_ops() {
            match v {
                Some(v) => m.insert(k, v),
                None => m.remove(&k),
            };
        }
        Ok(())
    }
    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> fpr_store::Result<()> {
        self.write()?;
        let mut m = self.map.lock().unwrap();
        if m.get(key).map(Vec::as_slice) != expected {
            return Err(fpr_store::Error::Conflict);
        }
        match new {
            Some(v) => m.insert(key.to_vec(), v.to_vec()),
            None => m.remove(key),
        };
        Ok(())
    }
    fn apply_if_absent(&self, guard: &[u8], batch: Batch) -> fpr_store::Result<()> {
        if self.map.lock().unwrap().contains_key(guard) {
            return Err(fpr_store::Error::Conflict);
        }
        self.apply(batch)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> fpr_store::Result<Vec<Entry>> {
        Ok(self
            .map
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    fn scan_page(
        &self,
        prefix: &[u8],
        _after: Option<&[u8]>,
        limit: usize,
    ) -> fpr_store::Result<Vec<Entry>> {
        let mut all = self.scan_prefix(prefix)?;
        all.truncate(limit);
        Ok(all)
    }
    fn flush(&self) -> fpr_store::Result<()> {
        Ok(())
    }
}

fn record(id: &str, key: &str) -> Record {
    serde_json::from_value(serde_json::json!({
        "id": id, "idempotency_key": key, "idp": "entra", "user_id": "u", "state": "ongoing",
        "step": "accepted", "pin_length": 8, "force_change": false, "shipping": {},
        "created_at": 0, "updated_at": 0
    }))
    .unwrap()
}

/// Whatever write fails (the disk fills up, the process dies), a create leaves either its
/// key and its record or neither: a replay never finds a key whose record is missing.
#[tokio::test]
async fn a_create_cut_at_any_write_leaves_all_or_nothing() {
    for ok in 0..3 {
        let tree = Arc::new(Failing {
            map: Mutex::new(BTreeMap::new()),
            ok: AtomicUsize::new(ok),
        });
        let store = Shipments { tree: tree.clone() };
        let first = store.create(&record("shp_1", "k")).await;
        tree.ok.store(usize::MAX, Ordering::SeqCst);
        match store.by_idempotency_key("k").unwrap() {
            Some(id) => {
                assert!(first.is_ok(), "ok={ok}: acknowledged only once stored");
                assert!(
                    store.get(&id).unwrap().is_some(),
                    "ok={ok}: key without record"
                );
            }
            None => {
                let err = first.unwrap_err();
                assert!(
                    matches!(&err, Error::Store(s) if s.disk_refused().is_some()),
                    "ok={ok}: {err}"
                );
                assert!(
                    store.all().unwrap().is_empty(),
                    "ok={ok}: a record without its key"
                );
                // Once there is room again, the same create goes through.
                assert_eq!(store.create(&record("shp_2", "k")).await.unwrap(), "shp_2");
            }
        }
    }
}

/// A store an earlier fpr kept in sled (no index) is taken over at open: every record
/// and idempotency key, the index built, the old files moved aside; a second open finds
/// the same.
#[tokio::test]
async fn a_sled_store_of_an_earlier_fpr_is_taken_over() {
    use fpr_store::Store as _;
    let dir = tempfile::tempdir().unwrap();
    {
        let old = fpr_store::SledStore::open(dir.path()).unwrap();
        let t = old.tree("shipments").unwrap();
        let mut b = Batch::default();
        for (id, key, state) in [("shp_1", "k1", "ongoing"), ("shp_2", "k2", "complete")] {
            let mut r = record(id, key);
            r.state = serde_json::from_value(serde_json::json!(state)).unwrap();
            b.insert(&rec_key(id), &serde_json::to_vec(&r).unwrap());
            b.insert(&idem_key(key), id.as_bytes());
        }
        t.apply(b).unwrap();
        t.flush().unwrap();
    }
    for _ in 0..2 {
        let s = Shipments::open_dir(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.all().unwrap().len(), 2);
        assert_eq!(
            s.by_idempotency_key("k2").unwrap().as_deref(),
            Some("shp_2")
        );
        let due: Vec<String> = s.due(0).unwrap().iter().map(|i| i.to_string()).collect();
        assert_eq!(due, ["shp_1"]);
        assert!(!dir.path().join("db").exists());
        assert!(dir.path().join(SLED_MOVED).join("db").exists());
    }
}

/// A record's own part is stored plain while it is ongoing and deflated once it is not, its
/// large parts deflated from their first write, and it reads back equal either way; a plain
/// JSON record (as versions before the deflate wrote, and as a
/// taken-over sled store holds) still reads; a value that is neither is reported as corrupt,
/// naming the key.
#[tokio::test]
async fn records_are_stored_deflated_and_plain_ones_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let s = Shipments::open_dir(dir.path(), 1 << 20).unwrap();
    let mut r = record("shp_1", "k1");
    r.shipping = serde_json::json!({"recipient": {"recipient_email": "pat@contoso.test"},
        "mailing_address": {"street_line1": "7788 Foxrun Street", "city": "Dedham"}});
    r.pin_response_jwe = Some("eyJlbmMiOiJBMjU2R0NNIn0.".repeat(40));
    s.create(&r).await.unwrap();
    let raw = s.tree.get(&rec_key("shp_1")).unwrap().unwrap();
    assert_eq!(raw[0], b'{', "a new record's own part is plain JSON");
    assert_eq!(
        serde_json::to_value(s.get("shp_1").unwrap().unwrap()).unwrap(),
        serde_json::to_value(&r).unwrap()
    );
    assert_eq!(r.state, State::Ongoing);
    s.put(&r).await.unwrap();
    let raw = s.tree.get(&rec_key("shp_1")).unwrap().unwrap();
    let pin = s.tree.get(&pin_key("shp_1")).unwrap().unwrap();
    assert_eq!(
        (raw[0], pin[0]),
        (b'{', DEFLATED),
        "ongoing: own part plain"
    );
    assert_eq!(
        serde_json::to_value(s.get("shp_1").unwrap().unwrap()).unwrap(),
        serde_json::to_value(&r).unwrap()
    );
    r.state = State::Complete;
    s.put(&r).await.unwrap();
    let raw = s.tree.get(&rec_key("shp_1")).unwrap().unwrap();
    let pin = s.tree.get(&pin_key("shp_1")).unwrap().unwrap();
    let json = serde_json::to_vec(&r).unwrap();
    assert_eq!((raw[0], pin[0]), (DEFLATED, DEFLATED));
    assert!(
        raw.len() + pin.len() < json.len() / 2,
        "{} + {} of {}",
        raw.len(),
        pin.len(),
        json.len()
    );
    assert!(s.tree.get(&bulk_key("shp_1")).unwrap().is_none());
    assert_eq!(
        serde_json::to_value(s.get("shp_1").unwrap().unwrap()).unwrap(),
        serde_json::to_value(&r).unwrap()
    );

    let mut b = Batch::default();
    b.insert(
        &rec_key("shp_2"),
        &serde_json::to_vec(&record("shp_2", "k2")).unwrap(),
    );
    b.insert(&rec_key("shp_3"), &[DEFLATED, 0xff, 0x00]);
    s.tree.apply(b).unwrap();
    assert_eq!(s.get("shp_2").unwrap().unwrap().idempotency_key, "k2");
    match s.get("shp_3") {
        Err(Error::Corrupt(what)) => assert!(what.contains("shp_3"), "{what}"),
        other => panic!("{other:?}"),
    }
}

/// The large parts live apart while a step needs them, are written only when they change,
/// and leave with the step that drops them or with the record; get and all join them back.
#[tokio::test]
async fn large_parts_live_apart_and_leave_with_their_step() {
    let dir = tempfile::tempdir().unwrap();
    let s = Shipments::open_dir(dir.path(), 1 << 20).unwrap();
    let mut r = record("shp_1", "k1");
    r.creation_options = Some(serde_json::json!({"challenge": "x".repeat(300)}));
    r.credential_request_jwe = Some("c".repeat(900));
    r.pin_request_jwe = Some("p".repeat(700));
    s.create(&r).await.unwrap();
    let bulk = s.tree.get(&bulk_key("shp_1")).unwrap().unwrap();
    let own = s.tree.get(&rec_key("shp_1")).unwrap().unwrap();
    for part in ["x".repeat(300), "c".repeat(900), "p".repeat(700)] {
        assert!(!own.windows(part.len()).any(|w| w == part.as_bytes()));
    }
    let same = |a: &Record, b: &Record| {
        serde_json::to_value(a).unwrap() == serde_json::to_value(b).unwrap()
    };
    assert!(same(&s.get("shp_1").unwrap().unwrap(), &r));
    assert!(same(&s.all().unwrap()[0], &r));

    // A step that leaves the large parts as they are does not write them again.
    r.attempts = 1;
    let mut b = Batch::default();
    write(Some(&*s.tree), &mut b, &r).unwrap();
    assert!(b.into_ops().iter().all(|(k, _)| !k.starts_with(b"bulk/")));
    s.put(&r).await.unwrap();
    assert_eq!(s.tree.get(&bulk_key("shp_1")).unwrap().unwrap(), bulk);

    // Ordered: the requests go; registered: the rest, and the PIN response arrives.
    r.reach(Step::Ordered, 1);
    s.put(&r).await.unwrap();
    assert!(same(&s.get("shp_1").unwrap().unwrap(), &r));
    r.pin_response_jwe = Some("eyJ".repeat(300));
    r.reach(Step::Registered, 2);
    s.put(&r).await.unwrap();
    assert!(s.tree.get(&bulk_key("shp_1")).unwrap().is_none());
    assert!(s.tree.get(&pin_key("shp_1")).unwrap().is_some());
    assert!(same(&s.all().unwrap()[0], &r));
    s.delete("shp_1").await.unwrap();
    assert!(s.tree.scan_prefix(b"").unwrap().iter().all(|(k, _)| {
        !(k.starts_with(b"rec/") || k.starts_with(b"pin/") || k.starts_with(b"bulk/"))
    }));
}

/// A listing page: newest first, only the ongoing ones from the index when asked, cut at
/// `size` with "more" told, continued below the last id, and filtered by `keep`.
#[tokio::test]
async fn pages_list_newest_first_and_continue_below_the_last_id() {
    let dir = tempfile::tempdir().unwrap();
    let s = Shipments::open_dir(dir.path(), 1 << 20).unwrap();
    for i in 1..=5 {
        let mut r = record(&format!("shp_{i}"), &format!("k{i}"));
        if i % 2 == 0 {
            r.state = State::Complete;
        }
        s.create(&r).await.unwrap();
    }
    let ids = |p: &(Vec<Record>, bool)| (p.0.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), p.1);
    let first = s.page(true, None, 2, |_| true).unwrap();
    assert_eq!(ids(&first), (vec!["shp_5".into(), "shp_3".into()], true));
    let next = s.page(true, Some("shp_3"), 2, |_| true).unwrap();
    assert_eq!(ids(&next), (vec!["shp_1".into()], false));
    let done = s
        .page(false, None, 10, |r| r.state == State::Complete)
        .unwrap();
    assert_eq!(ids(&done), (vec!["shp_4".into(), "shp_2".into()], false));
    let all = s.page(false, Some("shp_4"), 2, |_| true).unwrap();
    assert_eq!(ids(&all), (vec!["shp_3".into(), "shp_2".into()], true));
}

#[tokio::test]
async fn a_shipment_is_found_by_its_yubienterprise_id_until_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let s = Shipments::open_dir(dir.path(), 1 << 20).unwrap();
    let mut r = record("shp_1", "k1");
    s.create(&r).await.unwrap();
    assert_eq!(s.by_ye_id("ye-1").unwrap(), None);
    r.ye_shipment_id = Some("ye-1".into());
    s.put(&r).await.unwrap();
    assert_eq!(s.by_ye_id("ye-1").unwrap().as_deref(), Some("shp_1"));
    s.delete("shp_1").await.unwrap();
    assert_eq!(s.by_ye_id("ye-1").unwrap(), None);
}

#[tokio::test]
async fn the_oldest_ongoing_shipment_is_found_from_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let s = Shipments::open_dir(dir.path(), 1 << 20).unwrap();
    assert_eq!(s.oldest_ongoing_created_at().unwrap(), None);
    for (i, created) in [(1, 100), (2, 200), (3, 300)] {
        let mut r = record(&format!("shp_{i}"), &format!("k{i}"));
        r.created_at = created;
        if i == 1 {
            r.state = State::Complete;
        }
        s.create(&r).await.unwrap();
    }
    assert_eq!(s.oldest_ongoing_created_at().unwrap(), Some(200));
}
