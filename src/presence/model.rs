//! The normalized presence model and the merge of a person's channels into one answer
//! (`shared/PRESENCE.md`). Pure: time is a parameter.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How reachable someone is, in one vocabulary for every IM system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    Available,
    Busy,
    DoNotDisturb,
    BeRightBack,
    Away,
    Offline,
    Unknown,
}

impl Availability {
    /// Merge rank: the most restrictive online state wins, then offline, then unknown
    /// (do_not_disturb > busy > available > be_right_back > away > offline > unknown).
    pub fn rank(self) -> u8 {
        match self {
            Availability::DoNotDisturb => 6,
            Availability::Busy => 5,
            Availability::Available => 4,
            Availability::BeRightBack => 3,
            Availability::Away => 2,
            Availability::Offline => 1,
            Availability::Unknown => 0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Available => "available",
            Availability::Busy => "busy",
            Availability::DoNotDisturb => "do_not_disturb",
            Availability::BeRightBack => "be_right_back",
            Availability::Away => "away",
            Availability::Offline => "offline",
            Availability::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Availability> {
        Some(match s {
            "available" => Availability::Available,
            "busy" => Availability::Busy,
            "do_not_disturb" => Availability::DoNotDisturb,
            "be_right_back" => Availability::BeRightBack,
            "away" => Availability::Away,
            "offline" => Availability::Offline,
            "unknown" => Availability::Unknown,
            _ => return None,
        })
    }
}

/// What someone is doing, when the system says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    InCall,
    InMeeting,
    Presenting,
    OutOfOffice,
    OffWork,
    FreeToChat,
    ExtendedAway,
    UrgentOnly,
    /// Free text from the system, kept when it fits no other activity.
    Other(String),
}

/// One backend's latest word on one handle.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelState {
    pub availability: Availability,
    pub idle: bool,
    pub activity: Option<Activity>,
    pub status_message: Option<String>,
    pub until: Option<DateTime<Utc>>,
    pub out_of_office: bool,
    pub manual: bool,
    /// 0.0–1.0: how sure the backend is (Slack cannot tell away from offline for others).
    pub confidence: f32,
    pub observed_at: DateTime<Utc>,
}

impl ChannelState {
    pub fn new(availability: Availability, observed_at: DateTime<Utc>) -> ChannelState {
        ChannelState {
            availability,
            idle: false,
            activity: None,
            status_message: None,
            until: None,
            out_of_office: false,
            manual: false,
            confidence: 1.0,
            observed_at,
        }
    }

    pub fn unknown(observed_at: DateTime<Utc>) -> ChannelState {
        ChannelState::new(Availability::Unknown, observed_at)
    }
}

/// A backend's observation of one handle (`xmpp:alice@corp.example`, `slack:U024BE7LH`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub handle: String,
    pub state: ChannelState,
}

/// One channel of a person's merged presence, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PresenceChannel {
    /// Name of the configured backend.
    pub backend: String,
    /// The handle in that system (`xmpp:`, `matrix:`, `sip:`, `tel:`, `msteams:`, `slack:`).
    pub uri: String,
    pub availability: Availability,
    pub idle: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<Activity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    pub manual: bool,
    /// When the backend last reported this channel; absent when it never has.
    pub observed_at: Option<DateTime<Utc>>,
    /// 0.0–1.0.
    pub confidence: f32,
}

/// A person's presence merged over every channel, with the channels it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Presence {
    pub availability: Availability,
    pub idle: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<Activity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    pub out_of_office: bool,
    /// Set by the person rather than inferred.
    pub manual: bool,
    pub channels: Vec<PresenceChannel>,
    /// The newest channel time; absent when no channel has reported.
    pub observed_at: Option<DateTime<Utc>>,
}

impl Presence {
    pub fn unknown() -> Presence {
        Presence {
            availability: Availability::Unknown,
            idle: false,
            activity: None,
            status_message: None,
            until: None,
            out_of_office: false,
            manual: false,
            channels: Vec::new(),
            observed_at: None,
        }
    }

    /// What a partner may see under their policy.
    pub fn for_visibility(&self, visibility: Visibility) -> Option<Presence> {
        match visibility {
            Visibility::Full => Some(self.clone()),
            Visibility::Coarse => Some(Presence {
                availability: self.availability,
                ..Presence::unknown()
            }),
            Visibility::None => None,
        }
    }
}

/// How much presence a partner sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Full,
    Coarse,
    None,
}

/// A channel to merge: the backend, the handle, the backend's time-to-live, and what it said
/// (`None` when it never said anything about this handle).
pub struct ChannelInput<'a> {
    pub backend: &'a str,
    pub uri: &'a str,
    pub ttl: Duration,
    pub state: Option<&'a ChannelState>,
}

/// Merges a person's channels at time `now`:
/// - a channel older than its backend's TTL counts as `unknown` (listed, but not merged);
/// - a manual state beats an inferred one;
/// - among the rest the most restrictive wins (see [`Availability::rank`]);
/// - nothing left means `unknown`.
pub fn merge(inputs: &[ChannelInput<'_>], now: DateTime<Utc>) -> Presence {
    let mut channels = Vec::with_capacity(inputs.len());
    let mut fresh: Vec<&ChannelState> = Vec::with_capacity(inputs.len());
    let mut observed_at: Option<DateTime<Utc>> = None;
    for input in inputs {
        let Some(state) = input.state else {
            channels.push(PresenceChannel {
                backend: input.backend.to_string(),
                uri: input.uri.to_string(),
                availability: Availability::Unknown,
                idle: false,
                activity: None,
                status_message: None,
                manual: false,
                observed_at: None,
                confidence: 0.0,
            });
            continue;
        };
        // Too old, or past the end its reporter gave it (`until`).
        let stale = now - state.observed_at > input.ttl || state.until.is_some_and(|u| now > u);
        let usable = !stale && state.availability != Availability::Unknown;
        if usable {
            fresh.push(state);
            observed_at = observed_at.max(Some(state.observed_at));
        }
        channels.push(PresenceChannel {
            backend: input.backend.to_string(),
            uri: input.uri.to_string(),
            availability: if stale {
                Availability::Unknown
            } else {
                state.availability
            },
            idle: usable && state.idle,
            activity: state.activity.clone().filter(|_| usable),
            status_message: state.status_message.clone().filter(|_| usable),
            manual: usable && state.manual,
            observed_at: Some(state.observed_at),
            confidence: if usable { state.confidence } else { 0.0 },
        });
    }
    if observed_at.is_none() {
        observed_at = channels.iter().filter_map(|c| c.observed_at).max();
    }
    let any_manual = fresh.iter().any(|s| s.manual);
    let candidates: Vec<&ChannelState> = fresh
        .iter()
        .copied()
        .filter(|s| !any_manual || s.manual)
        .collect();
    // Highest rank wins; among equals, the newest.
    let Some(winner) = candidates
        .iter()
        .copied()
        .max_by_key(|s| (s.availability.rank(), s.observed_at))
    else {
        return Presence {
            channels,
            observed_at,
            ..Presence::unknown()
        };
    };
    let newest_with = |pick: &dyn Fn(&ChannelState) -> bool| {
        fresh
            .iter()
            .copied()
            .filter(|s| pick(s))
            .max_by_key(|s| s.observed_at)
    };
    let activity = winner
        .activity
        .clone()
        .or_else(|| newest_with(&|s| s.activity.is_some()).and_then(|s| s.activity.clone()));
    let status_message = winner.status_message.clone().or_else(|| {
        newest_with(&|s| s.status_message.is_some()).and_then(|s| s.status_message.clone())
    });
    Presence {
        availability: winner.availability,
        idle: winner.idle,
        activity,
        status_message,
        until: winner.until,
        out_of_office: fresh.iter().any(|s| s.out_of_office),
        manual: winner.manual,
        channels,
        observed_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0)
            .single()
            .expect("time")
    }

    fn state(a: Availability, at: i64) -> ChannelState {
        ChannelState::new(a, t(at))
    }

    fn merged(states: &[ChannelState], now: i64) -> Presence {
        let inputs: Vec<ChannelInput<'_>> = states
            .iter()
            .map(|s| ChannelInput {
                backend: "b",
                uri: "xmpp:a@b",
                ttl: Duration::seconds(60),
                state: Some(s),
            })
            .collect();
        merge(&inputs, t(now))
    }

    #[test]
    fn no_channels_means_unknown() {
        let p = merge(&[], t(0));
        assert_eq!(p.availability, Availability::Unknown);
        assert!(p.channels.is_empty());
        assert_eq!(p.observed_at, None);
    }

    #[test]
    fn a_channel_never_reported_is_listed_as_unknown() {
        let p = merge(
            &[ChannelInput {
                backend: "xmpp",
                uri: "xmpp:a@b",
                ttl: Duration::seconds(60),
                state: None,
            }],
            t(0),
        );
        assert_eq!(p.availability, Availability::Unknown);
        assert_eq!(p.channels.len(), 1);
        assert_eq!(p.channels[0].availability, Availability::Unknown);
        assert_eq!(p.channels[0].observed_at, None);
    }

    #[test]
    fn a_state_past_its_until_is_stale() {
        let mut meeting = state(Availability::Busy, 0);
        meeting.until = Some(t(20));
        let away = state(Availability::Away, 0);
        let during = merged(&[meeting.clone(), away.clone()], 20);
        assert_eq!(during.availability, Availability::Busy);
        let after = merged(&[meeting, away], 21);
        assert_eq!(
            after.availability,
            Availability::Away,
            "the meeting is over"
        );
        assert_eq!(after.channels[0].availability, Availability::Unknown);
    }

    #[test]
    fn a_stale_channel_is_dropped_and_nothing_left_means_unknown() {
        let p = merged(&[state(Availability::Busy, 0)], 61);
        assert_eq!(p.availability, Availability::Unknown);
        assert_eq!(p.channels[0].availability, Availability::Unknown);
        assert_eq!(p.channels[0].observed_at, Some(t(0)));
        let p = merged(
            &[state(Availability::Busy, 0), state(Availability::Away, 30)],
            61,
        );
        assert_eq!(
            p.availability,
            Availability::Away,
            "the stale busy is ignored"
        );
        assert_eq!(p.observed_at, Some(t(30)));
        let p = merged(&[state(Availability::Busy, 0)], 60);
        assert_eq!(
            p.availability,
            Availability::Busy,
            "exactly the TTL is fresh"
        );
    }

    #[test]
    fn the_most_restrictive_online_state_wins() {
        use Availability::*;
        let order = [
            DoNotDisturb,
            Busy,
            Available,
            BeRightBack,
            Away,
            Offline,
            Unknown,
        ];
        for (i, stronger) in order.iter().enumerate() {
            for weaker in &order[i + 1..] {
                let p = merged(&[state(*weaker, 1), state(*stronger, 2)], 10);
                assert_eq!(p.availability, *stronger, "{stronger:?} over {weaker:?}");
                let p = merged(&[state(*stronger, 2), state(*weaker, 1)], 10);
                assert_eq!(
                    p.availability, *stronger,
                    "order of channels does not matter"
                );
            }
        }
    }

    #[test]
    fn online_beats_offline_and_offline_beats_unknown() {
        let p = merged(
            &[
                state(Availability::Offline, 5),
                state(Availability::Away, 1),
                state(Availability::Unknown, 6),
            ],
            10,
        );
        assert_eq!(p.availability, Availability::Away);
        let p = merged(
            &[
                state(Availability::Unknown, 6),
                state(Availability::Offline, 5),
            ],
            10,
        );
        assert_eq!(p.availability, Availability::Offline);
    }

    #[test]
    fn a_manual_state_beats_an_inferred_one() {
        let mut manual = state(Availability::Available, 1);
        manual.manual = true;
        let inferred = state(Availability::DoNotDisturb, 2);
        let p = merged(&[inferred.clone(), manual.clone()], 10);
        assert_eq!(p.availability, Availability::Available);
        assert!(p.manual);
        // A stale manual state no longer counts.
        let p = merged(&[inferred, manual], 62);
        assert_eq!(p.availability, Availability::DoNotDisturb);
        assert!(!p.manual);
    }

    #[test]
    fn detail_comes_from_the_winner_then_the_newest_channel() {
        let mut call = state(Availability::Busy, 1);
        call.activity = Some(Activity::InCall);
        call.idle = true;
        let mut chat = state(Availability::Available, 3);
        chat.status_message = Some("lunch at 1".into());
        let mut ooo = state(Availability::Away, 2);
        ooo.out_of_office = true;
        let p = merged(&[chat, call, ooo], 10);
        assert_eq!(p.availability, Availability::Busy);
        assert_eq!(p.activity, Some(Activity::InCall));
        assert!(p.idle, "idle is the winner's");
        assert_eq!(p.status_message.as_deref(), Some("lunch at 1"));
        assert!(p.out_of_office, "any fresh channel out of office");
        assert_eq!(p.observed_at, Some(t(3)), "newest channel time");
        assert_eq!(p.channels.len(), 3);
    }

    #[test]
    fn partners_see_full_coarse_or_nothing() {
        let mut s = state(Availability::Busy, 1);
        s.status_message = Some("with a client".into());
        let p = merged(&[s], 2);
        assert_eq!(p.for_visibility(Visibility::Full), Some(p.clone()));
        let coarse = p.for_visibility(Visibility::Coarse).expect("coarse");
        assert_eq!(coarse.availability, Availability::Busy);
        assert!(coarse.channels.is_empty() && coarse.status_message.is_none());
        assert_eq!(p.for_visibility(Visibility::None), None);
    }

    #[test]
    fn availability_names_round_trip() {
        for a in [
            Availability::Available,
            Availability::Busy,
            Availability::DoNotDisturb,
            Availability::BeRightBack,
            Availability::Away,
            Availability::Offline,
            Availability::Unknown,
        ] {
            assert_eq!(Availability::parse(a.as_str()), Some(a));
            assert_eq!(
                serde_json::to_value(a).expect("json"),
                serde_json::json!(a.as_str())
            );
        }
        assert_eq!(Availability::parse("online"), None);
    }
}
