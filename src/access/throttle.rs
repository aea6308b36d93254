//! Failed sign-ins, throttled per account and per client address. Time is a parameter.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Limits on failed sign-ins within a sliding window.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_account: usize,
    pub per_address: usize,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_account: 5,
            per_address: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Keys remembered before old ones are swept.
const MAX_KEYS: usize = 100_000;

/// Failures remembered per key (an account name or an address). Keys are forgotten when their
/// window has passed, so the map holds only recent failures.
#[derive(Debug, Default)]
pub struct Throttle {
    limits: Limits,
    accounts: HashMap<String, VecDeque<DateTime<Utc>>>,
    addresses: HashMap<String, VecDeque<DateTime<Utc>>>,
}

impl Throttle {
    pub fn new(limits: Limits) -> Throttle {
        Throttle {
            limits,
            ..Default::default()
        }
    }

    /// `Err(seconds to wait)` when the account or the address has failed too often lately.
    pub fn check(&mut self, account: &str, address: &str, now: DateTime<Utc>) -> Result<(), u64> {
        let window = chrono::Duration::from_std(self.limits.window).unwrap_or_default();
        let mut wait = 0u64;
        for (map, key, limit) in [
            (
                &mut self.accounts,
                account.to_lowercase(),
                self.limits.per_account,
            ),
            (
                &mut self.addresses,
                address.to_string(),
                self.limits.per_address,
            ),
        ] {
            let Some(times) = map.get_mut(&key) else {
                continue;
            };
            while times.front().is_some_and(|t| *t + window <= now) {
                times.pop_front();
            }
            if times.is_empty() {
                map.remove(&key);
                continue;
            }
            if times.len() >= limit {
                let oldest = times[times.len() - limit];
                let secs = (oldest + window - now).num_seconds().max(1) as u64;
                wait = wait.max(secs);
            }
        }
        if wait > 0 {
            Err(wait)
        } else {
            Ok(())
        }
    }

    pub fn failed(&mut self, account: &str, address: &str, now: DateTime<Utc>) {
        // Someone spraying made-up names must not grow the maps without end.
        if self.accounts.len() + self.addresses.len() > MAX_KEYS {
            self.forget_before(now);
        }
        self.accounts
            .entry(account.to_lowercase())
            .or_default()
            .push_back(now);
        self.addresses
            .entry(address.to_string())
            .or_default()
            .push_back(now);
    }

    /// Drops every failure older than the window.
    fn forget_before(&mut self, now: DateTime<Utc>) {
        let window = chrono::Duration::from_std(self.limits.window).unwrap_or_default();
        for map in [&mut self.accounts, &mut self.addresses] {
            map.retain(|_, times| times.back().is_some_and(|t| *t + window > now));
        }
    }

    /// A good sign-in clears the account's failures (not the address's: one address trying many
    /// accounts stays throttled).
    pub fn succeeded(&mut self, account: &str) {
        self.accounts.remove(&account.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_held_after_its_limit_and_freed_when_the_window_passes() {
        let mut t = Throttle::new(Limits::default());
        let t0 = Utc::now();
        for i in 0..5 {
            assert_eq!(t.check("Alice", "10.0.0.1", t0), Ok(()), "attempt {i}");
            t.failed("Alice", "10.0.0.1", t0);
        }
        let wait = t.check("alice", "10.0.0.2", t0).expect_err("held");
        assert!((899..=900).contains(&wait), "{wait}");
        assert_eq!(
            t.check("bob", "10.0.0.1", t0),
            Ok(()),
            "other accounts still try"
        );
        assert_eq!(
            t.check("alice", "10.0.0.1", t0 + chrono::Duration::minutes(15)),
            Ok(())
        );
    }

    #[test]
    fn an_address_trying_many_accounts_is_held() {
        let mut t = Throttle::new(Limits::default());
        let now = Utc::now();
        for i in 0..20 {
            let account = format!("user{i}");
            assert_eq!(t.check(&account, "10.0.0.9", now), Ok(()));
            t.failed(&account, "10.0.0.9", now);
        }
        assert!(t.check("someone-else", "10.0.0.9", now).is_err());
        assert_eq!(t.check("someone-else", "10.0.0.10", now), Ok(()));
    }

    #[test]
    fn success_clears_the_account() {
        let mut t = Throttle::new(Limits::default());
        let now = Utc::now();
        for _ in 0..4 {
            t.failed("carol", "a", now);
        }
        t.succeeded("carol");
        t.failed("carol", "a", now);
        assert_eq!(t.check("carol", "b", now), Ok(()));
    }
}
