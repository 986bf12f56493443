//! Where the service reads the time for its deadlines (holds, offers): the system clock, or a
//! clock that tests set and move by hand, so expiry is tested without sleeping.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, DurationRound, Utc};

#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stands still at `start` until moved.
    pub fn manual(start: DateTime<Utc>) -> Self {
        Self {
            manual: Some(Arc::new(Mutex::new(start))),
        }
    }

    /// Now, to the microsecond (what both databases store).
    pub fn now(&self) -> DateTime<Utc> {
        let now = match &self.manual {
            Some(at) => *at.lock().unwrap_or_else(PoisonError::into_inner),
            None => Utc::now(),
        };
        now.duration_trunc(Duration::microseconds(1)).unwrap_or(now)
    }

    /// Moves a manual clock forward; the system clock cannot be moved and says so.
    pub fn advance(&self, by: Duration) -> bool {
        match &self.manual {
            Some(at) => {
                let mut at = at.lock().unwrap_or_else(PoisonError::into_inner);
                *at += by;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = DateTime::parse_from_rfc3339("2027-03-10T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = Clock::manual(start);
        assert_eq!(clock.now(), start);
        assert!(clock.advance(Duration::minutes(15)));
        assert_eq!(clock.now(), start + Duration::minutes(15));
        // Clones share the time: the server and the test see the same clock.
        let shared = clock.clone();
        shared.advance(Duration::hours(1));
        assert_eq!(clock.now(), start + Duration::minutes(75));
    }

    #[test]
    fn the_system_clock_cannot_be_moved() {
        let clock = Clock::system();
        assert!(!clock.advance(Duration::hours(1)));
        let drift = (clock.now() - Utc::now()).num_seconds().abs();
        assert!(drift < 5);
    }
}
