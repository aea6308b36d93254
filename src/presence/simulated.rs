//! Simulated presence for the demo company, so a newcomer sees what the product is for: a
//! push backend that exists only under `switchboard demo` (no config kind names it), reporting
//! through the same hub, cache and SSE stream as real backends, labelled `simulated`.
//!
//! Each person follows a working day in their office's time zone: in from about 8:00 (each a
//! little different), lunch, meetings, calls, a focus block in do-not-disturb for a few, a few
//! out of office for a few days, offline at night and at weekends. The day is cut into five-minute
//! slots, shifted per person so that changes trickle in (a few a second for five thousand
//! people) instead of all landing on the hour. A state is a function of the handle, the office
//! and the time, so a restart shows the same company, and the tests set the clock.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, Duration as Span, TimeZone, Timelike, Utc, Weekday};
use sqlx::PgPool;

use super::backend::{BackendError, BoxFuture, Health, HealthCell, Mode, PresenceBackend};
use super::model::{Activity, Availability, ChannelState, Observation};
use super::RunContext;

/// The backend's name and kind, as the page shows them.
pub const NAME: &str = "simulated";

/// Length of one slot of a simulated day.
const SLOT_SECS: i64 = 300;

/// Minutes east of UTC for an office, by the `location` people have.
pub type Offsets = fn(&str) -> Option<i32>;

pub struct SimulatedBackend {
    pool: PgPool,
    offsets: Offsets,
    health: HealthCell,
}

impl SimulatedBackend {
    pub fn new(pool: PgPool, offsets: Offsets) -> SimulatedBackend {
        SimulatedBackend {
            pool,
            offsets,
            health: HealthCell::default(),
        }
    }

    /// Each IM handle and its person's office, from the directory.
    async fn offices(&self) -> Result<Vec<(String, Option<String>)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT unnest(im), location FROM people WHERE deleted_at IS NULL AND im <> '{}'",
        )
        .fetch_all(&self.pool)
        .await
    }
}

/// A stable 64-bit hash (FNV-1a, then a mix): the same company on every run and platform.
fn hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64's finalizer: every bit of the input reaches every bit of the output.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// A draw in 0..100 for `handle` and what it is about.
fn percent(handle: &str, what: &str, n: i64) -> u64 {
    hash(&[handle.as_bytes(), what.as_bytes(), &n.to_le_bytes()]) % 100
}

/// `handle`'s state at `now` in an office `offset` minutes east of UTC, and when it may next
/// change.
pub fn simulate(handle: &str, offset: i32, now: DateTime<Utc>) -> (ChannelState, DateTime<Utc>) {
    let shift = (hash(&[handle.as_bytes()]) % SLOT_SECS as u64) as i64;
    let t = now.timestamp();
    let slot = (t - shift).div_euclid(SLOT_SECS);
    let slot_start = slot * SLOT_SECS + shift;
    let next = Utc
        .timestamp_opt(slot_start + SLOT_SECS, 0)
        .single()
        .unwrap_or(now + Span::seconds(SLOT_SECS));
    let local = Utc
        .timestamp_opt(slot_start, 0)
        .single()
        .unwrap_or(now)
        .naive_utc()
        + Span::minutes(i64::from(offset));
    let day = i64::from(local.date().num_days_from_ce());
    let minute = i64::from(local.time().num_seconds_from_midnight() / 60);
    let h = hash(&[handle.as_bytes()]);
    // In between 7:30 and 9:29, for eight to ten hours.
    let start = 450 + (h % 120) as i64;
    let end = start + 480 + ((h >> 8) % 120) as i64;
    let lunch = 720 + ((h >> 16) % 60) as i64;
    let mut state = ChannelState::new(Availability::Available, now);
    state.confidence = 1.0;
    let weekend = matches!(local.weekday(), Weekday::Sat | Weekday::Sun);
    // Out of office: an absence starts on one in a hundred days and lasts one to four days;
    // they are back on the first weekday morning after it, whatever day it is now.
    let out = (0..4).find_map(|ago| {
        let first = day - ago;
        let length = 1 + (percent(handle, "days out", first) % 4) as i64;
        (percent(handle, "out of office", first) < 1 && ago < length).then_some(first + length)
    });
    if let Some(back_day) = out {
        let mut back = local.date() + Span::days(back_day - day);
        while matches!(back.weekday(), Weekday::Sat | Weekday::Sun) {
            back += Span::days(1);
        }
        let back = back
            .and_hms_opt(0, 0, 0)
            .map(|b| b + Span::minutes(start - i64::from(offset)));
        state.availability = Availability::Away;
        state.out_of_office = true;
        state.activity = Some(Activity::OutOfOffice);
        state.until = back.map(|b| b.and_utc());
        state.status_message =
            back.map(|b| format!("Out of office, back {}", b.format("%a %d %b")));
        return (state, next);
    }
    if weekend || minute < start || minute >= end {
        state.availability = Availability::Offline;
        state.activity = Some(Activity::OffWork);
        return (state, next);
    }
    let focus = percent(handle, "focus", day) < 5;
    if focus && (840..960).contains(&minute) {
        state.availability = Availability::DoNotDisturb;
        state.status_message = Some("Focusing, urgent calls only".into());
        state.activity = Some(Activity::UrgentOnly);
    } else if (lunch..lunch + 45).contains(&minute) {
        state.availability = Availability::Away;
        state.status_message = Some("Lunch".into());
    } else if percent(handle, "meeting", slot / 6) < 22 {
        state.availability = Availability::Busy;
        state.activity = Some(Activity::InMeeting);
        state.status_message = Some("In a meeting".into());
    } else if percent(handle, "call", slot) < 6 {
        state.availability = Availability::Busy;
        state.activity = Some(Activity::InCall);
        state.status_message = Some("On a call".into());
    } else if percent(handle, "break", slot) < 4 {
        state.availability = Availability::BeRightBack;
    } else if percent(handle, "idle", slot) < 10 {
        state.idle = true;
    }
    (state, next)
}

/// The parts of a state a watcher sees change (not the time it was observed).
fn same(a: &ChannelState, b: &ChannelState) -> bool {
    a.availability == b.availability
        && a.idle == b.idle
        && a.activity == b.activity
        && a.status_message == b.status_message
        && a.out_of_office == b.out_of_office
}

/// Who is shown what, and when each may change next.
#[derive(Default)]
struct Schedule {
    /// Each handle's office, minutes east of UTC.
    offices: HashMap<String, i32>,
    /// What each handle last showed.
    shown: HashMap<String, ChannelState>,
    /// When handles may change next, earliest first; an entry whose time is not the handle's
    /// `next_of` any more is stale and skipped.
    due: BinaryHeap<Reverse<(DateTime<Utc>, String)>>,
    next_of: HashMap<String, DateTime<Utc>>,
}

impl Schedule {
    /// Follows exactly `handles` from now on (new ones are due at once).
    fn track(&mut self, handles: &[String], now: DateTime<Utc>) {
        let current: HashSet<&String> = handles.iter().collect();
        self.next_of.retain(|h, _| current.contains(h));
        self.shown.retain(|h, _| current.contains(h));
        for handle in handles {
            if !self.next_of.contains_key(handle) {
                self.next_of.insert(handle.clone(), now);
                self.due.push(Reverse((now, handle.clone())));
            }
        }
    }

    /// The states that changed by `now` (and those unchanged for long, said again before they
    /// go stale).
    fn tick(&mut self, now: DateTime<Utc>) -> Vec<Observation> {
        let mut changes = Vec::new();
        while self.due.peek().is_some_and(|Reverse((at, _))| *at <= now) {
            let Some(Reverse((at, handle))) = self.due.pop() else {
                break;
            };
            if self.next_of.get(&handle) != Some(&at) {
                continue;
            }
            let offset = self.offices.get(&handle).copied().unwrap_or(0);
            let (state, next) = simulate(&handle, offset, now);
            if self.shown.get(&handle).is_none_or(|before| {
                !same(before, &state) || now - before.observed_at > Span::hours(12)
            }) {
                self.shown.insert(handle.clone(), state.clone());
                changes.push(Observation {
                    handle: handle.clone(),
                    state,
                });
            }
            self.next_of.insert(handle.clone(), next);
            self.due.push(Reverse((next, handle)));
        }
        changes
    }
}

impl PresenceBackend for SimulatedBackend {
    fn kind(&self) -> &'static str {
        NAME
    }

    fn mode(&self) -> Mode {
        Mode::Push
    }

    fn run(self: Arc<Self>, ctx: RunContext) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let RunContext {
                sink,
                mut tracked,
                mut stop,
            } = ctx;
            let mut schedule = Some(Schedule::default());
            // Offices are read at start and when people come and go, not on a timer: for a
            // million people that is two million rows.
            let mut handles_changed = true;
            let mut offices: Option<Vec<(String, Option<String>)>> = None;
            // Until the offices are read (and again after people come and go), each tick tries.
            let mut offices_wanted = true;
            loop {
                if handles_changed {
                    offices_wanted = true;
                }
                if offices_wanted {
                    match self.offices().await {
                        Ok(rows) => {
                            offices = Some(rows);
                            offices_wanted = false;
                        }
                        Err(e) => self.health.down(format!("reading the directory: {e}")),
                    }
                }
                let now = sink.now();
                let handles = std::mem::take(&mut handles_changed)
                    .then(|| tracked.borrow_and_update().clone());
                let (rows, offsets, sink_now) = (offices.take(), self.offsets, sink.clone());
                let Some(mut work) = schedule.take() else {
                    return;
                };
                // Off the async workers: a million people's handles are compared, scheduled
                // and merged here.
                let done = tokio::task::spawn_blocking(move || {
                    if let Some(rows) = rows {
                        work.offices = rows
                            .into_iter()
                            .map(|(handle, location)| {
                                let offset = location.as_deref().and_then(offsets).unwrap_or(0);
                                (handle, offset)
                            })
                            .collect();
                    }
                    if let Some(handles) = handles {
                        work.track(&handles, now);
                    }
                    let changes = work.tick(now);
                    if !changes.is_empty() {
                        sink_now.report(changes);
                    }
                    work
                })
                .await;
                match done {
                    Ok(work) => schedule = Some(work),
                    Err(_) => return,
                }
                if !offices_wanted {
                    self.health.up(now);
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    changed = tracked.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        handles_changed = true;
                    }
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        })
    }

    fn fetch<'a>(
        &'a self,
        _handles: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Observation>, BackendError>> {
        // A push backend: the hub reads its reports from the cache.
        Box::pin(async { Ok(Vec::new()) })
    }

    fn health(&self) -> Health {
        self.health.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn handles() -> Vec<String> {
        (0..2_000)
            .map(|i| format!("xmpp:person{i}@chat.example.com"))
            .collect()
    }

    #[test]
    fn nights_and_weekends_are_offline() {
        // 03:00 in London on a Tuesday; noon on a Sunday.
        for now in [at("2026-12-01T03:00:00Z"), at("2026-12-06T12:00:00Z")] {
            for handle in handles() {
                let (state, _) = simulate(&handle, 0, now);
                assert!(
                    matches!(
                        state.availability,
                        Availability::Offline | Availability::Away
                    ),
                    "{handle} at {now}: {:?}",
                    state.availability
                );
            }
        }
    }

    #[test]
    fn a_working_morning_has_every_kind_of_state() {
        // 10:00 on a Tuesday in Berlin (UTC+1).
        let now = at("2026-12-01T09:00:00Z");
        let mut seen: HashMap<Availability, usize> = HashMap::new();
        for handle in handles() {
            *seen
                .entry(simulate(&handle, 60, now).0.availability)
                .or_default() += 1;
        }
        let share = |a| seen.get(&a).copied().unwrap_or(0) as f64 / 2_000.0;
        assert!(share(Availability::Available) > 0.5, "{seen:?}");
        assert!(share(Availability::Busy) > 0.1, "{seen:?}");
        assert!(share(Availability::Away) > 0.0, "{seen:?}");
        assert!(share(Availability::BeRightBack) > 0.0, "{seen:?}");
        // By 8 pm in Tokyo everyone has gone home (or is away for days).
        let evening = at("2026-12-01T11:00:00Z");
        let tokyo = handles()
            .iter()
            .filter(|h| simulate(h, 540, evening).0.availability == Availability::Offline)
            .count();
        assert!(tokyo > 1_900, "8 pm in Tokyo: {tokyo} of 2000 offline");
        // Focus blocks are in the afternoon.
        let afternoon = at("2026-12-01T14:30:00Z");
        assert!(handles()
            .iter()
            .any(|h| simulate(h, 60, afternoon).0.availability == Availability::DoNotDisturb));
    }

    #[test]
    fn out_of_office_says_when_they_are_back_and_keeps_to_it() {
        let now = at("2026-12-01T09:00:00Z");
        let out: Vec<(String, ChannelState)> = handles()
            .into_iter()
            .map(|h| {
                let state = simulate(&h, 0, now).0;
                (h, state)
            })
            .filter(|(_, s)| s.out_of_office)
            .collect();
        assert!(!out.is_empty() && out.len() < 200, "{} out", out.len());
        for (handle, state) in out {
            let until = state.until.expect("a return date");
            assert!(until > now && until < now + Span::days(8), "{until}");
            assert!(
                !matches!(until.weekday(), Weekday::Sat | Weekday::Sun),
                "{until}"
            );
            assert!(state
                .status_message
                .as_deref()
                .is_some_and(|m| m.starts_with("Out of office, back ")));
            // The next day they are either back or still out until the same day.
            let tomorrow = simulate(&handle, 0, now + Span::days(1)).0;
            if tomorrow.out_of_office {
                assert_eq!(tomorrow.until, Some(until), "{handle}");
            }
        }
    }

    #[test]
    fn a_schedule_reports_changes_once_and_forgets_who_goes() {
        let now = at("2026-12-01T10:00:00Z");
        let mut schedule = Schedule::default();
        let all = handles();
        schedule.track(&all, now);
        // At first, everyone.
        assert_eq!(schedule.tick(now).len(), all.len());
        assert!(
            schedule.tick(now).is_empty(),
            "nothing new in the same second"
        );
        // Ten minutes on, only some changed; each reported once.
        let later = now + Span::minutes(10);
        let changed = schedule.tick(later);
        assert!(
            !changed.is_empty() && changed.len() < all.len() * 3 / 4,
            "{}",
            changed.len()
        );
        let distinct: HashSet<&String> = changed.iter().map(|o| &o.handle).collect();
        assert_eq!(distinct.len(), changed.len());
        // Tracked again with half of them, and again with all: no duplicate entries.
        schedule.track(&all[..1_000], later);
        schedule.track(&all, later);
        assert_eq!(schedule.next_of.len(), all.len());
        let again = schedule.tick(later);
        assert_eq!(
            again.len(),
            all.len() - 1_000,
            "the ones who came back are new"
        );
        // Half a day with no change is said again.
        let mut quiet = 0;
        let mut t = later;
        while t < later + Span::hours(13) {
            t += Span::minutes(5);
            quiet += schedule.tick(t).len();
        }
        assert!(quiet > 0);
    }

    #[test]
    fn states_hold_for_their_slot_and_changes_are_spread_out() {
        let now = at("2026-12-01T10:02:00Z");
        let mut next_changes = HashSet::new();
        for handle in handles().iter().take(200) {
            let (state, next) = simulate(handle, 0, now);
            assert!(
                next > now && next <= now + Span::seconds(SLOT_SECS),
                "{next}"
            );
            // The same answer any time before the next change, and on every run.
            let (again, _) = simulate(handle, 0, next - Span::seconds(1));
            assert!(same(&state, &again), "{handle}");
            next_changes.insert(next);
        }
        assert!(
            next_changes.len() > 100,
            "changes should not all land at once: {} distinct times",
            next_changes.len()
        );
    }
}
