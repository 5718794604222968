//! Compaction leases kept in this process's memory, for backends whose data
//! only one process can open (the embedded store) or that live in memory.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// doc -> (holder, expiry). A lease is free when absent or expired.
#[derive(Default)]
pub(crate) struct LocalLeases(Mutex<HashMap<String, (String, Instant)>>);

impl LocalLeases {
    pub(crate) fn try_take(&self, doc: &str, holder: &str, ttl: Duration) -> bool {
        let mut leases = self.0.lock();
        let now = Instant::now();
        match leases.get(doc) {
            Some((h, until)) if h != holder && *until > now => false,
            _ => {
                leases.insert(doc.to_owned(), (holder.to_owned(), now + ttl));
                true
            }
        }
    }

    pub(crate) fn release(&self, doc: &str, holder: &str) {
        let mut leases = self.0.lock();
        if leases.get(doc).is_some_and(|(h, _)| h == holder) {
            leases.remove(doc);
        }
    }

    pub(crate) fn forget(&self, doc: &str) {
        self.0.lock().remove(doc);
    }
}
