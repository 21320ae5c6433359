//! When acknowledged writes reach the disk: the durability modes and the periodic sync.

use super::*;

/// When an acknowledged write is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `fsync` before a write returns (concurrent writers share fsyncs). The default.
    #[default]
    Fsync,
    /// Writes return once in the OS page cache; the log is fsynced every interval (and at
    /// seal, flush and close). A crash of the machine may lose the last interval of writes; a
    /// crash of the process loses nothing.
    Periodic(Duration),
}

impl Collection {
    /// Makes every write so far durable (for `Durability::Periodic`).
    pub fn sync(&self) -> Result<()> {
        match self.wal.sync_all() {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }
}

pub(super) fn spawn_periodic_sync(collection: std::sync::Weak<Collection>, every: Duration) {
    std::thread::Builder::new()
        .name("quiver-wal-sync".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let Some(c) = collection.upgrade() else {
                    return;
                };
                if c.dropped.load(Ordering::Acquire) {
                    return;
                }
                if let Err(e) = c.sync() {
                    log::error!("periodic WAL sync of `{}` failed: {e}", c.name);
                    return;
                }
            }
        })
        .map(|_| ())
        .unwrap_or_else(|e| log::error!("cannot start the periodic WAL sync thread: {e}"));
}
