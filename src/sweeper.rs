//! The sweeper: expires unpaid holds and lapsed waitlist offers once their deadline passes, so
//! their seats go to the next person waiting or back on sale, and forgets idempotency keys
//! after their 24 hours. Runs in `serve` (unless
//! `bookings.sweeper_in_serve` is off) and in `masterclass worker`; several may run at once, as
//! each expiry re-checks its row under the session's lock.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::bookings::{self, Issuer};
use crate::clock::Clock;
use crate::db::Db;
use crate::payments::Payments;
use crate::waitlist;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub holds_expired: usize,
    pub offers_lapsed: usize,
    /// Idempotency keys past their 24 hours.
    pub keys_forgotten: usize,
    /// Card payments looked up at Stripe, settled and refunded by the reconciler.
    pub payments: crate::payments::Reconciled,
}

/// One pass over everything due at `clock.now()`. Blocking.
pub fn sweep(
    db: &Db,
    issuer: &Issuer,
    payments: &Payments,
    clock: &Clock,
) -> anyhow::Result<Swept> {
    let now = clock.now();
    // Payments first: one that succeeded just before its hold ran out confirms the booking
    // rather than letting the hold expire.
    let payments = crate::payments::reconcile(db, payments, now)?;
    let mut conn = db.conn()?;
    let holds_expired = bookings::expire_holds(&mut conn, issuer, now)?;
    let offers_lapsed = waitlist::expire_offers(&mut conn, issuer, now)?;
    let keys_forgotten = crate::idempotency::purge(&mut conn, now)?;
    Ok(Swept {
        holds_expired,
        offers_lapsed,
        keys_forgotten,
        payments,
    })
}

/// The sweeper thread; stops when dropped or told to.
pub struct Sweeper {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Sweeper {
    pub fn start(
        db: Db,
        issuer: Arc<Issuer>,
        payments: Arc<Payments>,
        clock: Clock,
        every: Duration,
    ) -> Self {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("sweeper".to_owned())
                .spawn(move || loop {
                    match sweep(&db, &issuer, &payments, &clock) {
                        Ok(swept) if swept != Swept::default() => {
                            tracing::info!(
                                holds_expired = swept.holds_expired,
                                offers_lapsed = swept.offers_lapsed,
                                keys_forgotten = swept.keys_forgotten,
                                payments_checked = swept.payments.checked,
                                payments_settled = swept.payments.settled,
                                refunds_sent = swept.payments.refunds_sent,
                                "swept"
                            );
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %format!("{e:#}"), "sweep failed; trying again")
                        }
                    }
                    let (lock, wake) = &*stop;
                    let stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
                    let (stopped, _) = wake
                        .wait_timeout_while(stopped, every, |stopped| !*stopped)
                        .unwrap_or_else(PoisonError::into_inner);
                    if *stopped {
                        break;
                    }
                })
                .ok()
        };
        if thread.is_none() {
            tracing::error!("cannot start the sweeper thread; holds and offers will not expire");
        }
        Self { stop, thread }
    }

    /// Stops the thread after the sweep in progress, if any.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the sweeper thread panicked");
            }
        }
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.halt();
    }
}
