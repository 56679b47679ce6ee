//! Short-lived answers of upstream look-ups that are repeated: `fpr batch` checks every row
//! (`validate_only`), then orders it seconds later, and processing enrolls it at Okta right
//! after; all three need the same Okta user, and both calls the same answer of the vault's
//! recipient policy. Remembered for a short while, the second call only records, and Okta's
//! rate limit is spent once a row (less: see `lookup`).
//!
//! Only answers that let an order through are remembered (a refusal is asked again), and
//! whatever they let through is checked again where it matters: the vault checks recipients
//! again when it seals, and the order's shipping fields are validated whatever filled them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an answer is reused.
pub(crate) const TTL: Duration = Duration::from_secs(120);

/// At most this many answers are held; when full, the expired ones go, and if none has
/// expired, all of them.
const CAPACITY: usize = 50_000;

/// Answers by key, each reused for [`TTL`].
pub(crate) struct Memo<V> {
    ttl: Duration,
    map: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> Memo<V> {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, V)>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The answer for `key`, if one younger than the TTL is held.
    pub(crate) fn get(&self, key: &str) -> Option<V> {
        let mut map = self.lock();
        match map.get(key) {
            Some((at, v)) if at.elapsed() < self.ttl => Some(v.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Holds `v` as the answer for `key`.
    pub(crate) fn put(&self, key: String, v: V) {
        let mut map = self.lock();
        if map.len() >= CAPACITY {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(key, (Instant::now(), v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_reused_until_they_expire() {
        let m = Memo::new(Duration::from_millis(50));
        assert_eq!(m.get("a"), None::<u32>);
        m.put("a".into(), 1);
        assert_eq!(m.get("a"), Some(1));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(m.get("a"), None);
    }

    #[test]
    fn a_full_memo_makes_room() {
        let m = Memo::new(Duration::from_secs(60));
        for i in 0..CAPACITY + 1 {
            m.put(i.to_string(), i);
        }
        assert_eq!(m.get(&CAPACITY.to_string()), Some(CAPACITY));
        assert!(m.lock().len() <= CAPACITY);
    }
}
