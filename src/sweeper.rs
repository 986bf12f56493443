//! The sweeper: expires unpaid holds and lapsed waitlist offers once their deadline passes, so
//! their seats go to the next person waiting or back on sale, and forgets idempotency keys
//! after their 24 hours and organiser sign-in attempts no limit counts any more. Runs in `serve`
//! (unless `bookings.sweeper_in_serve` is off) and in `masterclass worker`; several may run at
//! once, as each expiry re-checks its row under the session's lock.

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
    /// Overdue invoices chased.
    pub invoices_reminded: usize,
    /// Organiser sign-in attempts and reset requests older than any limit's window.
    pub sign_in_attempts_forgotten: usize,
    /// Card payments looked up at Stripe, settled and refunded by the reconciler.
    pub payments: crate::payments::Reconciled,
}

/// One pass over everything due at `clock.now()`: payments first, then bookings. Blocking.
pub fn sweep(
    db: &Db,
    issuer: &Issuer,
    payments: &Payments,
    clock: &Clock,
) -> anyhow::Result<Swept> {
    let payments = crate::payments::reconcile(db, payments, clock)?;
    let mut swept = sweep_bookings(db, issuer, clock)?;
    swept.payments = payments;
    Ok(swept)
}

/// Expired holds and offers, forgotten idempotency keys and sign-in attempts.
fn sweep_bookings(db: &Db, issuer: &Issuer, clock: &Clock) -> anyhow::Result<Swept> {
    let mut conn = db.conn()?;
    let now = clock.now();
    let holds_expired = bookings::expire_holds(&mut conn, issuer, now)?;
    let offers_lapsed = waitlist::expire_offers(&mut conn, issuer, now)?;
    let keys_forgotten = crate::idempotency::purge(&mut conn, now)?;
    let invoices_reminded = crate::payments::invoices::remind_overdue(&mut conn, now)?;
    let sign_in_attempts_forgotten = crate::organisers::sign_in_limits::forget_old(&mut conn, now)?;
    Ok(Swept {
        holds_expired,
        offers_lapsed,
        keys_forgotten,
        invoices_reminded,
        sign_in_attempts_forgotten,
        payments: crate::payments::Reconciled::default(),
    })
}

type Stop = Arc<(Mutex<bool>, Condvar)>;

/// The sweeper's threads: one for bookings, and one for payments when cards are offered (Stripe
/// being slow never holds up expiring holds). They stop when dropped or told to.
pub struct Sweeper {
    stop: Stop,
    threads: Vec<JoinHandle<()>>,
}

impl Sweeper {
    pub fn start(
        db: Db,
        issuer: Arc<Issuer>,
        payments: Arc<Payments>,
        clock: Clock,
        every: Duration,
    ) -> Self {
        let stop: Stop = Arc::new((Mutex::new(false), Condvar::new()));
        let mut threads = Vec::new();
        {
            let (db, clock) = (db.clone(), clock.clone());
            threads.extend(repeat(
                "sweeper",
                every,
                &stop,
                move || match sweep_bookings(&db, &issuer, &clock) {
                    Ok(swept) if swept != Swept::default() => tracing::info!(
                        holds_expired = swept.holds_expired,
                        offers_lapsed = swept.offers_lapsed,
                        keys_forgotten = swept.keys_forgotten,
                        invoices_reminded = swept.invoices_reminded,
                        sign_in_attempts_forgotten = swept.sign_in_attempts_forgotten,
                        "swept"
                    ),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "sweep failed; trying again")
                    }
                },
            ));
        }
        if payments.cards_offered() {
            threads.extend(repeat("reconciler", every, &stop, move || {
                match crate::payments::reconcile(&db, &payments, &clock) {
                    Ok(done) if done != crate::payments::Reconciled::default() => {
                        tracing::info!(
                            checked = done.checked,
                            settled = done.settled,
                            cancelled = done.cancelled,
                            refunds_sent = done.refunds_sent,
                            refunds_updated = done.refunds_updated,
                            "payments reconciled"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(
                        error = %format!("{e:#}"),
                        "reconciling payments failed; trying again"
                    ),
                }
            }));
        }
        Self { stop, threads }
    }

    /// Stops the threads after the pass in progress, if any.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("a sweeper thread panicked");
            }
        }
    }
}

/// Runs `pass` every `every` on a thread named `name` until `stop` is set.
fn repeat(
    name: &str,
    every: Duration,
    stop: &Stop,
    mut pass: impl FnMut() + Send + 'static,
) -> Option<JoinHandle<()>> {
    let stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || loop {
            pass();
            let (lock, wake) = &*stop;
            let stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
            let (stopped, _) = wake
                .wait_timeout_while(stopped, every, |stopped| !*stopped)
                .unwrap_or_else(PoisonError::into_inner);
            if *stopped {
                break;
            }
        });
    match thread {
        Ok(thread) => Some(thread),
        Err(e) => {
            tracing::error!(thread = name, error = %e, "cannot start a sweeper thread; what it does will not happen");
            None
        }
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.halt();
    }
}
