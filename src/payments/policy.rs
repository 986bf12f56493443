//! Money arithmetic that the rules of an event decide: the refund policy (how much of a paid
//! seat comes back when the attendee cancels) and VAT (prices include it).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One step of a refund policy: cancelled at least `days_before` whole days before the session
/// starts, `percent` of the seat's price comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRule {
    #[schema(example = 14, maximum = 3650)]
    pub days_before: u32,
    #[schema(example = 100, maximum = 100)]
    pub percent: u8,
}

/// The steps of an event's refund policy, e.g. 100 % until 14 days before, 50 % until 7, none
/// after. No steps: nothing is refunded when an attendee cancels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RefundPolicy(Vec<RefundRule>);

/// Most steps a policy may have.
const MAX_RULES: usize = 20;

impl RefundPolicy {
    /// Checks the steps: each day count once, at most ten years, percentages 0–100, and a
    /// policy that never gives more back for cancelling later.
    pub fn new(mut rules: Vec<RefundRule>) -> Result<Self, String> {
        if rules.len() > MAX_RULES {
            return Err(format!("has more than {MAX_RULES} steps"));
        }
        if let Some(bad) = rules.iter().find(|r| r.percent > 100) {
            return Err(format!("percent must be 0 to 100, not {}", bad.percent));
        }
        if let Some(bad) = rules.iter().find(|r| r.days_before > 3650) {
            return Err(format!(
                "days_before must be 0 to 3650, not {}",
                bad.days_before
            ));
        }
        rules.sort_by_key(|r| std::cmp::Reverse(r.days_before));
        for pair in rules.windows(2) {
            if pair[0].days_before == pair[1].days_before {
                return Err(format!(
                    "has two steps for {} days before",
                    pair[0].days_before
                ));
            }
            if pair[1].percent > pair[0].percent {
                return Err(format!(
                    "gives more back {} days before ({} %) than {} days before ({} %)",
                    pair[1].days_before, pair[1].percent, pair[0].days_before, pair[0].percent
                ));
            }
        }
        Ok(Self(rules))
    }

    /// The stored form (JSON), read back leniently: a policy that does not parse refunds
    /// nothing automatically, and says so in the log.
    pub fn from_stored(stored: &str) -> Self {
        serde_json::from_str(stored).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "unreadable stored refund policy; treated as no refunds");
            Self::default()
        })
    }

    pub fn to_stored(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "[]".to_owned())
    }

    pub fn rules(&self) -> &[RefundRule] {
        &self.0
    }

    /// The percentage refunded when a seat in a session starting at `starts_at` is cancelled at
    /// `now`: the step with the most days that still lie ahead.
    pub fn percent_at(&self, starts_at: DateTime<Utc>, now: DateTime<Utc>) -> u8 {
        let seconds_ahead = (starts_at - now).num_seconds();
        if seconds_ahead < 0 {
            return 0;
        }
        let days_ahead = seconds_ahead / 86_400;
        self.0
            .iter()
            .filter(|r| i64::from(r.days_before) <= days_ahead)
            .max_by_key(|r| r.days_before)
            .map_or(0, |r| r.percent)
    }
}

/// `percent` of `amount` (minor units), rounded down to the minor unit.
pub fn share(amount: i64, percent: u8) -> i64 {
    amount.saturating_mul(i64::from(percent)) / 100
}

/// A VAT-inclusive amount split into net and VAT at `rate_bp` basis points (2000 = 20 %), the
/// VAT rounded half up to the minor unit: `(net, vat)`, which add up to `gross`.
pub fn vat_split(gross: i64, rate_bp: i32) -> (i64, i64) {
    if rate_bp <= 0 || gross <= 0 {
        return (gross, 0);
    }
    let rate = i128::from(rate_bp);
    let gross128 = i128::from(gross);
    // VAT = gross × rate / (10000 + rate), rounded half up.
    let denominator = 10_000 + rate;
    let vat = (gross128 * rate * 2 + denominator) / (2 * denominator);
    let vat = i64::try_from(vat).unwrap_or(0);
    (gross - vat, vat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn policy() -> RefundPolicy {
        RefundPolicy::new(vec![
            RefundRule {
                days_before: 7,
                percent: 50,
            },
            RefundRule {
                days_before: 14,
                percent: 100,
            },
        ])
        .unwrap()
    }

    #[test]
    fn the_step_with_the_most_days_still_ahead_applies() {
        let start = DateTime::from_timestamp(10_000_000, 0).unwrap();
        let p = policy();
        assert_eq!(p.percent_at(start, start - Duration::days(30)), 100);
        assert_eq!(p.percent_at(start, start - Duration::days(14)), 100);
        assert_eq!(
            p.percent_at(start, start - Duration::days(14) + Duration::seconds(1)),
            50
        );
        assert_eq!(p.percent_at(start, start - Duration::days(7)), 50);
        assert_eq!(p.percent_at(start, start - Duration::days(6)), 0);
        assert_eq!(p.percent_at(start, start + Duration::hours(1)), 0);
        assert_eq!(
            RefundPolicy::default().percent_at(start, start - Duration::days(99)),
            0
        );
    }

    #[test]
    fn policies_that_make_no_sense_are_refused() {
        let rule = |days_before, percent| RefundRule {
            days_before,
            percent,
        };
        assert!(RefundPolicy::new(vec![rule(7, 101)]).is_err());
        assert!(RefundPolicy::new(vec![rule(7, 50), rule(7, 40)]).is_err());
        assert!(RefundPolicy::new(vec![rule(14, 50), rule(7, 100)]).is_err());
        assert!(RefundPolicy::new(vec![rule(4000, 100)]).is_err());
        assert!(RefundPolicy::new(vec![]).is_ok());
        let stored = policy().to_stored();
        assert_eq!(RefundPolicy::from_stored(&stored), policy());
        assert_eq!(
            RefundPolicy::from_stored("nonsense"),
            RefundPolicy::default()
        );
    }

    #[test]
    fn vat_is_split_out_of_the_gross_and_adds_up() {
        assert_eq!(vat_split(12_000, 2000), (10_000, 2_000));
        assert_eq!(vat_split(14_500, 2000), (12_083, 2_417));
        assert_eq!(vat_split(999, 0), (999, 0));
        assert_eq!(vat_split(0, 2000), (0, 0));
        for gross in [1, 7, 99, 12_345, 1_000_001] {
            let (net, vat) = vat_split(gross, 2100);
            assert_eq!(net + vat, gross);
        }
        assert_eq!(share(14_500, 50), 7_250);
        assert_eq!(share(999, 33), 329);
    }
}
