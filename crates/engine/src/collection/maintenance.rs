//! Background maintenance: one thread per collection seals frozen segments and runs the merge
//! policy, so no write waits for a graph build. Writers wait only when [`MAX_FROZEN`] segments
//! are already waiting for their seal (backpressure).

use super::seal::MAX_FROZEN;
use super::*;
use parking_lot::Condvar;
use std::sync::Weak;
use std::sync::atomic::AtomicUsize;

/// How the collection and its maintenance thread talk.
#[derive(Default)]
pub(crate) struct Signal {
    flags: Mutex<Flags>,
    /// Wakes the maintenance thread.
    wake: Condvar,
    /// Wakes writers waiting for room (a seal finished, or the collection failed).
    room: Condvar,
    /// Frozen segments not yet sealed (mirrors `State::frozen`, read without the state lock).
    pub(super) frozen: AtomicUsize,
    /// Set while the thread holds the collection (a round of maintenance).
    working: AtomicBool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Default)]
struct Flags {
    pending: bool,
    stop: bool,
}

impl Signal {
    pub(super) fn wake(&self) {
        self.flags.lock().pending = true;
        self.wake.notify_one();
    }

    pub(super) fn stop(&self) {
        self.flags.lock().stop = true;
        self.wake.notify_one();
        self.room.notify_all();
    }

    /// Whether a round of maintenance is running now.
    pub(super) fn working(&self) -> bool {
        self.working.load(Ordering::Acquire)
    }

    pub(super) fn drained(&self) {
        let _flags = self.flags.lock();
        self.room.notify_all();
    }

    /// Waits until work is asked for; `false` when the thread should stop.
    fn wait_for_work(&self) -> bool {
        let mut flags = self.flags.lock();
        while !flags.pending && !flags.stop {
            self.wake.wait(&mut flags);
        }
        flags.pending = false;
        !flags.stop
    }
}

/// Starts the maintenance thread of a collection. It holds the collection only while it works,
/// so dropping the last handle stops it (a seal in progress finishes first).
pub(super) fn spawn(collection: Weak<Collection>, signal: Arc<Signal>, name: &str) -> Result<()> {
    let thread_signal = Arc::clone(&signal);
    let handle = std::thread::Builder::new()
        .name(format!("quiver-maint-{name}"))
        .spawn(move || {
            let signal = thread_signal;
            while signal.wait_for_work() {
                signal.working.store(true, Ordering::Release);
                let Some(c) = collection.upgrade() else {
                    return;
                };
                c.maintain();
                drop(c);
                signal.working.store(false, Ordering::Release);
            }
        })
        .map_err(|e| Error::Unavailable {
            collection: name.to_string(),
            reason: format!("cannot start its maintenance thread: {e}"),
        })?;
    *signal.thread.lock() = Some(handle);
    Ok(())
}

impl Collection {
    /// Called by the database as it closes, with its own handle: if no one else holds the
    /// collection (the maintenance thread aside), stops the maintenance thread and waits for
    /// it, so the directory lock is free when the database is gone. A seal in progress
    /// finishes first.
    pub(crate) fn close_if_unshared(self: Arc<Self>) {
        let working = usize::from(self.signal.working.load(Ordering::Acquire));
        if Arc::strong_count(&self) > 1 + working {
            return;
        }
        let signal = Arc::clone(&self.signal);
        signal.stop();
        drop(self);
        let handle = signal.thread.lock().take();
        if let Some(handle) = handle
            && handle.thread().id() != std::thread::current().id()
            && handle.join().is_err()
        {
            log::error!("a maintenance thread panicked");
        }
    }

    /// One round of maintenance: seal what is frozen, then merge per the policy. A failure
    /// marks the collection failed (the next write reports it) and wakes waiting writers.
    fn maintain(&self) {
        if self.check_usable().is_err() {
            return;
        }
        let mut published = self.maintenance.lock();
        if self.signal.flags.lock().stop {
            return;
        }
        let result = self
            .seal_frozen(&mut published)
            .and_then(|()| self.compact_by_policy(&mut published).map(|_| ()));
        if let Err(e) = result {
            log::error!(
                "collection `{}`: background maintenance failed: {e}",
                self.name
            );
            let _ = self.fail::<()>(e);
            self.signal.drained();
        }
    }

    /// Backpressure: waits while [`MAX_FROZEN`] segments await their seal.
    pub(super) fn wait_for_room(&self) -> Result<()> {
        let mut flags = self.signal.flags.lock();
        while self.signal.frozen.load(Ordering::Acquire) >= MAX_FROZEN {
            self.check_usable()?;
            if flags.stop {
                break;
            }
            self.signal
                .room
                .wait_for(&mut flags, Duration::from_millis(100));
        }
        Ok(())
    }
}
