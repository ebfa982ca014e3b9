//! Layer allocation: which encoding of each video track a subscriber receives, from its
//! bandwidth estimate, the size it shows each track at, what the publisher actually sends,
//! and what it pinned — and the reason, kept for the explained-decisions report.
//!
//! Per subscriber, its video subscriptions share the budget (the estimate less a reserve per
//! audio subscription) in order: pinned first, then the larger tiles. Each gets the best
//! layer that both its tile and the remaining budget warrant. Down-switches are immediate;
//! an up-switch waits until the higher layer has fitted, with headroom, for a while, so that
//! a fluctuating estimate does not flap. A subscriber that cannot sustain a track's lowest
//! layer has that video paused; audio is never paused. Switches happen at the target layer's
//! next keyframe (asked for at once), with numbering and timestamps continuous.
//!
//! In a room with many videos (more than `speaker_focus_after`), the cameras of those who
//! are not recent active speakers are held at a low layer: at most 320 pixels wide, else the
//! lowest. Tiles of a large room are mostly thumbnails, and the budget goes to whoever
//! talks. Pinned tracks and screen shares (a member's later video tracks) are exempt.

use std::time::{Duration, Instant};

use str0m::bwe::Bitrate;
use str0m::media::MediaKind;
use tracing::debug;

use super::{Ctx, Room};
use crate::choice::{Choice, LayerReport, Preference, Reason, SubscriptionReport};
use crate::reprobe::Retry;
use crate::track::Track;
use crate::{ParticipantId, TrackId};

/// Budget kept for each audio subscription (Opus with headers, RED included).
const AUDIO_RESERVE: u64 = 64_000;
/// A higher layer must fit with this much to spare…
const UP_HEADROOM: f64 = 1.15;
/// …and keep fitting for this long before forwarding moves up to it.
const UP_AFTER: Duration = Duration::from_secs(2);
/// Video of a simulcast track pauses when the budget falls below this share of its lowest
/// layer's bitrate… (A track with one encoding is never paused: the estimate of a receiver
/// that only ever gets what one encoder sends cannot grow past it, and tracks it closely.)
const PAUSE_BELOW: f64 = 0.8;
/// …and resumes above this share, once it has stayed there this long.
const RESUME_ABOVE: f64 = 1.1;
/// How long the budget must have stayed above it.
const RESUME_AFTER: Duration = Duration::from_secs(1);
/// The least bandwidth a receiver of video asks its estimator to find.
const MIN_DESIRED: u64 = 1_000_000;
/// The widest layer a camera held back for not speaking gets.
const QUIET_WIDTH: u32 = 320;
/// How often a subscriber's layers are reconsidered without a new estimate.
const REALLOCATE_EVERY: Duration = Duration::from_millis(500);

/// What the allocation chose for one subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Decision {
    target: Option<u8>,
    paused: bool,
    reason: Reason,
    /// Since when a higher layer fits, or the lowest while paused (kept for the hysteresis).
    fits_higher_since: Option<Instant>,
    /// The bitrate of the chosen layer, and of the layer the subscriber would like.
    chosen_rate: u64,
    wanted_rate: u64,
    /// What the estimator should keep sending (padding) though nothing is chosen: a paused
    /// subscription's way back, since an estimate cannot grow past what is sent.
    probe_rate: u64,
    /// While settling on a higher layer: its bitrate, which padding sustains meanwhile, so
    /// that a link that cannot carry it shows so (and the estimate falls) before the switch.
    settle_rate: u64,
}

/// What the receiver reports say about the subscriber's link (see [`crate::downlink`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Link {
    /// The latest reports or the pacer's queue show congestion.
    congested: bool,
    /// The latest receiver reports show congestion, or the pacer has held video for 0.6 s:
    /// the evidence a pause needs (what the pacer's queue lets out, measured over a fraction
    /// of a second, is not).
    pause_evidence: bool,
    /// The loss-based ceiling, not the estimate, is what limits the budget.
    by_loss: bool,
}

impl Room {
    /// Reconsiders the layers of every video subscription of `id`.
    pub(crate) fn allocate(&mut self, cx: &mut Ctx<'_>, id: ParticipantId) {
        let now = cx.now;
        let quiet = self.quiet_cameras(cx.config.speaker_focus_after, now);
        let Some(p) = self.participants.get(&id) else {
            return;
        };
        let mut video: Vec<(usize, TrackId, Preference)> = Vec::new();
        let mut audio = 0u64;
        for (slot, sub) in &p.subscriptions {
            match (sub.kind, sub.track) {
                (MediaKind::Video, Some(t)) => video.push((slot, t, sub.choice.preference)),
                (MediaKind::Audio, Some(_)) => audio += 1,
                _ => {}
            }
        }
        // Pinned first, then the larger tiles (unknown size counts as large).
        video.sort_by_key(|(slot, _, pref)| {
            let area = pref
                .max_size
                .map_or(u64::MAX, |(w, h)| u64::from(w) * u64::from(h));
            (pref.pin.is_none(), std::cmp::Reverse(area), *slot)
        });
        // The estimate lags a link that narrowed; the receiver reports and the pacer's queue
        // do not. Resends are held back only on the reports' evidence.
        let reported_ceiling = p.downlink.ceiling(now);
        let simulcast = video
            .iter()
            .any(|(_, t, _)| self.tracks.get(t).is_some_and(Track::is_simulcast));
        let queue_ceiling = p.downlink.backlog_ceiling(now).filter(|_| simulcast);
        let ceiling = match (reported_ceiling, queue_ceiling) {
            (Some(r), Some(q)) => Some(r.min(q)),
            (r, q) => r.or(q),
        };
        let link = Link {
            congested: p.downlink.congested(now),
            pause_evidence: p.downlink.congested_for_a_pause(now),
            by_loss: ceiling.is_some_and(|c| p.estimate.is_none_or(|e| c < e)),
        };
        let limit = match (p.estimate, ceiling) {
            (Some(e), Some(c)) => Some(e.min(c)),
            (e, c) => e.or(c),
        };
        let mut budget = limit.map(|e| e.saturating_sub(audio * AUDIO_RESERVE));
        let (mut minimum, mut desired) = (audio * AUDIO_RESERVE, audio * AUDIO_RESERVE);
        let mut decisions = Vec::with_capacity(video.len());
        // A layer is held below a higher one its subscriber wants by the estimate alone.
        let mut held_back = false;
        for (slot, track, pref) in &video {
            let (Some(t), Some(sub)) = (self.tracks.get(track), p.subscriptions.get(*slot)) else {
                continue;
            };
            let held = pref.pin.is_none() && quiet.contains(track);
            let d = decide(t, &sub.choice, *pref, budget, link, held, now);
            let given = budget;
            budget = budget.map(|b| b.saturating_sub(d.chosen_rate));
            minimum += d.chosen_rate.max(d.probe_rate).max(d.settle_rate);
            held_back |= d.reason == Reason::Bandwidth && d.wanted_rate > d.chosen_rate;
            desired += d.wanted_rate.max(d.chosen_rate);
            decisions.push((*slot, *track, d, given));
        }
        let mut keyframes = Vec::new();
        let mut forget = Vec::new();
        let mut abandoned = Vec::new();
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        for (slot, track, d, given) in decisions {
            let Some(sub) = p.subscriptions.get_mut(slot) else {
                continue;
            };
            let c = &mut sub.choice;
            if c.target != d.target || c.paused != d.paused {
                debug!(
                    participant = %id, %track, from = ?c.target, to = ?d.target, paused = d.paused,
                    reason = %d.reason, budget = ?given, estimate = ?p.estimate,
                    reported_ceiling = ?reported_ceiling, queue_ceiling = ?queue_ceiling,
                    pause_evidence = link.pause_evidence, "layer"
                );
                if let Some(n) = cx.out.counters.layer_switches.get_mut(d.reason.index()) {
                    *n += 1;
                }
                if d.paused && !c.paused {
                    cx.out.counters.pauses += 1;
                }
                if let Some(target) = d.target.filter(|t| !d.paused && Some(*t) != c.current) {
                    keyframes.push((track, target));
                }
                if d.paused {
                    c.current = None;
                    // Resumed, the layer starts as a new source: numbering continues from
                    // the last packet sent, not across everything skipped meanwhile (a
                    // receiver counts such a gap as loss, which pauses the video again).
                    sub.rewriter.reset_source();
                    forget.push(slot);
                }
            }
            // On a congested link the layer left behind stops at once, and what str0m still
            // holds of it is dropped: its packets would only queue ahead of the new layer's
            // keyframe. So is what it holds of a video that pauses: on the link that could not
            // carry it, those frames would arrive late and take the audio's room.
            let abandon =
                link.congested && !d.paused && d.target.is_some() && d.target != c.current;
            if (abandon && !c.abandon) || (d.paused && !c.paused) {
                abandoned.push(slot);
            }
            c.abandon = abandon;
            c.target = d.target;
            c.paused = d.paused;
            c.reason = d.reason;
            c.fits_higher_since = d.fits_higher_since;
        }
        for slot in forget {
            p.forget_resends(slot);
        }
        for slot in abandoned {
            p.drop_abandoned(slot, now);
        }
        p.set_rtx_congested(reported_ceiling.is_some());
        p.allocate_due = (!video.is_empty()).then_some(now + REALLOCATE_EVERY);
        if p.bwe && !video.is_empty() {
            // Probe towards what the subscriber would like, with room to spare (the estimate
            // of a receiver never probed stays at what it gets); sustain what it gets. Not
            // while its link is congested: probes into a full queue are lost with the media.
            // While a layer is held back on a clean link, probes are asked for again.
            let desired = if ceiling.is_some() {
                minimum
            } else {
                (desired + desired / 2).max(MIN_DESIRED)
            };
            let held = held_back && ceiling.is_none() && !link.congested;
            let retry = p.reprobe.retry(desired, p.estimate, held, now);
            if let Some(Retry::Restart(estimate)) = retry {
                debug!(participant = %id, estimate, desired, "restarting the estimator");
                cx.out.counters.estimator_restarts += 1;
                p.rtc.bwe().reset(Bitrate::bps(estimate));
            }
            let desired = match retry {
                Some(Retry::Desired(d)) => d,
                _ => desired,
            };
            let changed = p.bwe_asked.is_none_or(|(m, d)| {
                if retry.is_some() {
                    return d != desired;
                }
                desired.abs_diff(d) * 10 > d || minimum.abs_diff(m) * 10 > m.max(1)
            });
            if changed {
                debug!(participant = %id, minimum, desired, ceiling, "asking the estimator");
                p.bwe_asked = Some((minimum, desired));
                p.rtc
                    .bwe()
                    .set_bitrate(Bitrate::bps(minimum.min(desired)), Bitrate::bps(desired));
            }
        }
        for (track, layer) in keyframes {
            self.request_keyframe(cx, track, layer);
        }
    }
}

impl Room {
    /// The camera tracks held low for not speaking: none unless the room has more than
    /// `after` video tracks; else each member's first video track, unless the member is a
    /// recent active speaker.
    fn quiet_cameras(&self, after: usize, now: Instant) -> Vec<TrackId> {
        let videos = self
            .tracks
            .values()
            .filter(|t| t.kind == MediaKind::Video)
            .count();
        if after == 0 || videos <= after {
            return Vec::new();
        }
        let speaking: Vec<ParticipantId> = self
            .speakers
            .recent(now)
            .filter_map(|t| self.tracks.get(&t).and_then(Track::owner))
            .collect();
        self.participants
            .values()
            .filter(|p| !speaking.contains(&p.id))
            .filter_map(|p| {
                p.tracks.iter().map(|(_, t)| *t).find(|t| {
                    self.tracks
                        .get(t)
                        .is_some_and(|t| t.kind == MediaKind::Video)
                })
            })
            .collect()
    }

    /// Sets what `id` asked for `track` (tile size, pin) and reallocates.
    pub(crate) fn set_preference(
        &mut self,
        cx: &mut Ctx<'_>,
        id: ParticipantId,
        track: TrackId,
        preference: Preference,
    ) -> bool {
        let Some(p) = self.participants.get_mut(&id) else {
            return false;
        };
        let mut found = false;
        for (_, sub) in &mut p.subscriptions {
            if sub.track == Some(track) {
                sub.choice.preference = preference;
                found = true;
            }
        }
        if found {
            self.allocate(cx, id);
        }
        found
    }

    /// Every video subscription in the room: what it gets and why.
    pub(crate) fn report(&self, now: Instant) -> Vec<SubscriptionReport> {
        let layer = |t: &Track, l: Option<u8>| {
            let l = t.layer(l?)?;
            Some(LayerReport {
                rid: l.rid,
                size: l.size,
                bitrate: l.bitrate(now),
            })
        };
        let mut out = Vec::new();
        for p in self.participants() {
            for sub in p.subscriptions() {
                let (MediaKind::Video, Some(track)) = (sub.kind, sub.track) else {
                    continue;
                };
                let Some(t) = self.tracks.get(&track) else {
                    continue;
                };
                let c = &sub.choice;
                out.push(SubscriptionReport {
                    subscriber: p.id,
                    track,
                    estimate: p.estimate,
                    target: layer(t, c.target),
                    current: layer(t, c.current),
                    paused: c.paused,
                    reason: c.reason,
                    since_switch: c.switched_at.map(|at| now.saturating_duration_since(at)),
                    preference: c.preference,
                });
            }
        }
        out
    }
}

/// The layer one subscription should receive.
fn decide(
    t: &Track,
    choice: &Choice,
    pref: Preference,
    budget: Option<u64>,
    link: Link,
    quiet: bool,
    now: Instant,
) -> Decision {
    let active = t.active_layers(now);
    let rate = |l: u8| t.layer(l).map_or(0, |l| l.bitrate(now));
    let (Some(&lowest), Some(&highest)) = (active.first(), active.last()) else {
        return Decision {
            target: choice.target,
            paused: false,
            reason: Reason::Waiting,
            fits_higher_since: None,
            chosen_rate: 0,
            wanted_rate: 0,
            probe_rate: 0,
            settle_rate: 0,
        };
    };
    let decision = |target: u8, reason: Reason, wanted: u8| Decision {
        target: Some(target),
        paused: false,
        reason,
        fits_higher_since: None,
        chosen_rate: rate(target),
        wanted_rate: rate(wanted),
        probe_rate: 0,
        settle_rate: 0,
    };
    if let Some(pin) = pref.pin
        && let Some(&l) = active
            .iter()
            .find(|l| t.layer(**l).is_some_and(|x| x.rid == Some(pin)))
    {
        return decision(l, Reason::Pinned, l);
    }
    // The smallest layer whose pictures cover the tile (a tenth to spare).
    let by_tile = match pref.max_size {
        Some((w, h)) => active
            .iter()
            .copied()
            .find(|l| {
                t.layer(*l)
                    .and_then(|x| x.size)
                    .is_some_and(|(lw, lh)| lw * 10 >= w * 9 && lh * 10 >= h * 9)
            })
            .unwrap_or(highest),
        None => highest,
    };
    let unsent = t.layers().len() > active.len() && by_tile == highest;
    // Not speaking in a large room: at most the widest layer of QUIET_WIDTH, else the lowest.
    let rank = |l: u8| active.iter().position(|x| *x == l);
    let quiet_cap = active
        .iter()
        .rev()
        .copied()
        .find(|l| {
            t.layer(*l)
                .and_then(|x| x.size)
                .is_some_and(|(w, _)| w <= QUIET_WIDTH)
        })
        .unwrap_or(lowest);
    let held_quiet = quiet && rank(by_tile) > rank(quiet_cap);
    let by_tile = if held_quiet { quiet_cap } else { by_tile };
    let quality_reason = if held_quiet {
        Reason::NotSpeaking
    } else if by_tile != highest {
        Reason::TileSize
    } else if unsent {
        Reason::PublisherNotSending
    } else {
        Reason::Best
    };
    let Some(budget) = budget else {
        return decision(by_tile, quality_reason, by_tile);
    };
    // Hysteresis is relative to what is flowing now: a subscription that receives nothing
    // yet takes the best that fits at once.
    let current_rank = choice.current.filter(|_| !choice.paused).and_then(rank);
    let candidates: Vec<u8> = active
        .iter()
        .copied()
        .take(rank(by_tile).map_or(active.len(), |r| r + 1))
        .collect();
    let fits = |l: u8, up: bool| {
        let headroom = if choice.paused {
            RESUME_ABOVE
        } else if up {
            UP_HEADROOM
        } else {
            1.0
        };
        rate(l) as f64 * headroom <= budget as f64
    };
    let best_fit = candidates.iter().rev().copied().find(|l| {
        fits(
            *l,
            current_rank.is_some_and(|c| rank(*l).is_some_and(|r| r > c)),
        )
    });
    let limited = if link.by_loss {
        Reason::Congestion
    } else {
        Reason::Bandwidth
    };
    // Paused video resumes once the lowest layer has fitted, with room to spare, for a while:
    // an estimate that jumped for a moment on a link still too narrow would only pause it
    // again a second later.
    let resume_since = choice
        .paused
        .then(|| choice.fits_higher_since.unwrap_or(now))
        .filter(|_| best_fit.is_some());
    // It resumes on the lowest layer, and climbs from there as any layer held by the
    // estimate does: what the estimator found while only padding went out may not hold.
    let best_fit = best_fit
        .filter(|_| resume_since.is_none_or(|s| now.saturating_duration_since(s) >= RESUME_AFTER))
        .map(|l| if choice.paused { lowest } else { l });
    let Some(mut chosen) = best_fit else {
        // Not even the lowest layer fits: pause, with hysteresis, unless close enough. A
        // pause needs the receiver's reports to show the link congested as well: an estimate
        // that overshot downwards after a narrowing, while the lowest layer gets through
        // cleanly, is no reason to stop the video.
        let threshold = if choice.paused {
            RESUME_ABOVE
        } else {
            PAUSE_BELOW
        };
        let short = (budget as f64) < rate(lowest) as f64 * threshold;
        let pause = t.is_simulcast()
            && (short || resume_since.is_some())
            && (choice.paused || link.pause_evidence);
        return Decision {
            target: Some(lowest),
            paused: pause,
            reason: if pause { Reason::Paused } else { limited },
            fits_higher_since: resume_since.filter(|_| pause),
            chosen_rate: if pause { 0 } else { rate(lowest) },
            wanted_rate: rate(by_tile),
            // Paused, the estimator keeps sending about what resuming needs (padding within
            // its estimate), so that the estimate can grow when the link allows.
            probe_rate: if pause {
                (rate(lowest) as f64 * RESUME_ABOVE) as u64
            } else {
                0
            },
            settle_rate: 0,
        };
    };
    let mut fits_higher_since = None;
    let mut settling = false;
    let mut settle_rate = 0;
    // Up because the estimate grew: only once the higher layer has fitted for a while. Up
    // because the tile grew or a layer appeared: at once (the estimate carried it already).
    let bandwidth_held = matches!(
        choice.reason,
        Reason::Bandwidth | Reason::Congestion | Reason::Settling
    );
    if let (Some(c), Some(r)) = (current_rank, rank(chosen))
        && r > c
        && bandwidth_held
    {
        let since = choice.fits_higher_since.unwrap_or(now);
        if now.saturating_duration_since(since) < UP_AFTER {
            fits_higher_since = Some(since);
            settle_rate = rate(chosen);
            chosen = active.get(c).copied().unwrap_or(chosen);
            settling = true;
        }
    }
    let reason = if settling {
        Reason::Settling
    } else if rank(chosen) < rank(by_tile) {
        limited
    } else {
        quality_reason
    };
    Decision {
        target: Some(chosen),
        paused: false,
        reason,
        fits_higher_since,
        chosen_rate: rate(chosen),
        wanted_rate: rate(by_tile),
        probe_rate: 0,
        settle_rate,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use str0m::media::Rid;
    use str0m::rtp::ExtensionValues;

    use super::*;

    /// A choice settled on `layer` for `reason`.
    fn on(layer: u8, reason: Reason) -> Choice {
        Choice {
            target: Some(layer),
            current: Some(layer),
            reason,
            ..Choice::default()
        }
    }
    use crate::track::{Packet, Source};
    use crate::{ParticipantId, TrackId};

    /// A video track whose layers have sent `rates` (bits per second) for the last second.
    fn track(rates: &[u64], now: Instant) -> Track {
        let mut t = Track::new(
            TrackId(1),
            Source::Local {
                owner: ParticipantId(1),
                mid: "0".into(),
            },
            MediaKind::Video,
            Vec::new(),
            0,
        );
        for (i, rate) in rates.iter().enumerate() {
            let rid = Rid::from(["q", "h", "f"][i]);
            let layer = t.layer_for(Some(rid)).unwrap();
            // Ten packets over the last second, 60 bytes of overhead each counted.
            let bytes = (*rate / 8 / 10) as usize - 60;
            for k in 0..10u64 {
                let packet = Packet {
                    ssrc: (layer as u32 + 1).into(),
                    seq: k.into(),
                    ts: 0,
                    pt: 96.into(),
                    marker: false,
                    payload: Arc::from(vec![0u8; bytes]),
                    ext: ExtensionValues::default(),
                    arrival: now - Duration::from_millis(950 - k * 100),
                    keyframe_start: false,
                    clock_rate: 90_000,
                    rid: Some(rid),
                    layer,
                    size: None,
                    vp8: None,
                };
                t.layer_mut(layer).unwrap().record(&packet);
            }
        }
        t
    }

    const RATES: [u64; 3] = [150_000, 500_000, 1_500_000];

    #[test]
    fn the_budget_picks_the_best_layer_that_fits() {
        let now = Instant::now();
        let t = track(&RATES, now);
        let c = Choice::default();
        let p = Preference::default();
        let d = decide(&t, &c, p, Some(3_000_000), Link::default(), false, now);
        assert_eq!((d.target, d.reason), (Some(2), Reason::Best));
        let d = decide(&t, &c, p, Some(700_000), Link::default(), false, now);
        assert_eq!((d.target, d.reason), (Some(1), Reason::Bandwidth));
        let d = decide(&t, &c, p, None, Link::default(), false, now);
        assert_eq!(d.target, Some(2), "no estimate: nothing holds it back");
    }

    #[test]
    fn up_switches_wait_for_a_stable_estimate_and_down_switches_do_not() {
        let now = Instant::now();
        let t = track(&RATES, now);
        let p = Preference::default();
        let mut c = on(1, Reason::Bandwidth);
        let d = decide(&t, &c, p, Some(2_000_000), Link::default(), false, now);
        assert_eq!(
            (d.target, d.reason),
            (Some(1), Reason::Settling),
            "not up at once"
        );
        assert_eq!(d.fits_higher_since, Some(now));
        assert!(
            d.settle_rate > 1_000_000 && d.chosen_rate < 1_000_000,
            "padding sustains the higher layer while settling: {d:?}"
        );
        c.reason = d.reason;
        c.fits_higher_since = d.fits_higher_since;
        let later = now + UP_AFTER;
        let t = track(&RATES, later);
        let d = decide(&t, &c, p, Some(2_000_000), Link::default(), false, later);
        assert_eq!(d.target, Some(2), "up once it kept fitting");
        // Without headroom a higher layer does not count as fitting.
        let d = decide(
            &t,
            &Choice {
                fits_higher_since: None,
                ..c.clone()
            },
            p,
            Some(1_600_000),
            Link::default(),
            false,
            later,
        );
        assert_eq!((d.target, d.fits_higher_since), (Some(1), None));
        let high = Choice {
            target: Some(2),
            current: Some(2),
            ..Choice::default()
        };
        let d = decide(&t, &high, p, Some(400_000), Link::default(), false, later);
        assert_eq!(
            (d.target, d.reason),
            (Some(0), Reason::Bandwidth),
            "down at once"
        );
    }

    #[test]
    fn a_layer_held_back_by_the_tile_moves_up_at_once_when_the_tile_grows() {
        let now = Instant::now();
        let t = track(&RATES, now);
        let c = on(0, Reason::TileSize);
        let d = decide(
            &t,
            &c,
            Preference::default(),
            Some(3_000_000),
            Link::default(),
            false,
            now,
        );
        assert_eq!((d.target, d.reason), (Some(2), Reason::Best));
    }

    const CONGESTED: Link = Link {
        congested: true,
        pause_evidence: true,
        by_loss: true,
    };

    #[test]
    fn video_pauses_below_the_lowest_layer_and_resumes_with_hysteresis() {
        let now = Instant::now();
        let t = track(&RATES, now);
        let p = Preference::default();
        let c = Choice::default();
        let d = decide(&t, &c, p, Some(100_000), CONGESTED, false, now);
        assert!(d.paused && d.reason == Reason::Paused, "{d:?}");
        assert_eq!(d.chosen_rate, 0);
        assert_eq!(
            d.probe_rate,
            (150_000.0 * RESUME_ABOVE) as u64,
            "paused, the estimator is asked for what resuming needs"
        );
        let paused = Choice {
            paused: true,
            ..Choice::default()
        };
        // Once paused, the link is clean (nothing is sent): the estimate alone decides.
        let clean = Link::default();
        assert!(
            decide(&t, &paused, p, Some(155_000), clean, false, now).paused,
            "not back at the edge"
        );
        // Above the edge, it waits a while before resuming; below it again, the wait starts
        // over.
        let d = decide(&t, &paused, p, Some(200_000), clean, false, now);
        assert!(d.paused && d.fits_higher_since == Some(now), "{d:?}");
        let waiting = Choice {
            fits_higher_since: d.fits_higher_since,
            ..paused.clone()
        };
        let soon = now + RESUME_AFTER / 2;
        let t = track(&RATES, soon);
        let d = decide(&t, &waiting, p, Some(155_000), clean, false, soon);
        assert!(d.paused && d.fits_higher_since.is_none(), "{d:?}");
        let later = now + RESUME_AFTER;
        let t = track(&RATES, later);
        let d = decide(&t, &waiting, p, Some(200_000), clean, false, later);
        assert!(
            !d.paused && d.target == Some(0) && d.probe_rate == 0,
            "{d:?}"
        );
        // However high the estimate found while paused, it resumes on the lowest layer and
        // climbs from there.
        let d = decide(&t, &waiting, p, Some(3_000_000), clean, false, later);
        assert!(
            !d.paused && d.target == Some(0) && d.reason == Reason::Bandwidth,
            "{d:?}"
        );
        // One layer: never paused, however low the estimate.
        let single = track(&[800_000], now);
        let d = decide(&single, &c, p, Some(100_000), CONGESTED, false, now);
        assert!(!d.paused && d.reason == Reason::Congestion, "{d:?}");
    }

    #[test]
    fn an_estimate_below_the_lowest_layer_pauses_only_on_a_congested_link() {
        let now = Instant::now();
        let t = track(&RATES, now);
        let p = Preference::default();
        let low = on(0, Reason::Congestion);
        // The estimate overshot below the lowest layer, which gets through cleanly: kept.
        let d = decide(&t, &low, p, Some(100_000), Link::default(), false, now);
        assert_eq!(
            (d.target, d.paused, d.reason),
            (Some(0), false, Reason::Bandwidth)
        );
        assert_eq!(
            d.chosen_rate, 150_000,
            "the estimator is asked to sustain it"
        );
        // The reports show loss as well: paused.
        let d = decide(&t, &low, p, Some(100_000), CONGESTED, false, now);
        assert!(d.paused, "{d:?}");
    }

    #[test]
    fn a_backlogged_pacer_lowers_the_layer_but_does_not_pause_it() {
        let now = Instant::now();
        let t = track(&RATES, now);
        let high = on(2, Reason::Best);
        // The pacer's queue alone (no receiver report of loss): below the lowest layer,
        // the lowest layer still, not a pause.
        let queue_only = Link {
            congested: true,
            pause_evidence: false,
            by_loss: true,
        };
        let p = Preference::default();
        let d = decide(&t, &high, p, Some(100_000), queue_only, false, now);
        assert_eq!(
            (d.target, d.paused, d.reason),
            (Some(0), false, Reason::Congestion)
        );
        let d = decide(&t, &high, p, Some(100_000), CONGESTED, false, now);
        assert!(d.paused, "with the reports' evidence it pauses: {d:?}");
    }

    #[test]
    fn a_congested_link_steps_down_with_its_reason_and_back_up_after_settling() {
        let now = Instant::now();
        let t = track(&RATES, now);
        let p = Preference::default();
        let high = on(2, Reason::Best);
        // The budget the ceiling leaves (what got through, less audio) holds only q.
        let d = decide(&t, &high, p, Some(386_000), CONGESTED, false, now);
        assert_eq!(
            (d.target, d.paused, d.reason),
            (Some(0), false, Reason::Congestion)
        );
        // The ceiling lapsed and the estimate carries f again: up only after settling.
        let low = Choice {
            target: Some(0),
            current: Some(0),
            reason: d.reason,
            ..Choice::default()
        };
        let d = decide(&t, &low, p, Some(3_000_000), Link::default(), false, now);
        assert_eq!((d.target, d.reason), (Some(0), Reason::Settling));
        let later = now + UP_AFTER;
        let t = track(&RATES, later);
        let settled = Choice {
            reason: d.reason,
            fits_higher_since: d.fits_higher_since,
            ..low
        };
        let d = decide(
            &t,
            &settled,
            p,
            Some(3_000_000),
            Link::default(),
            false,
            later,
        );
        assert_eq!((d.target, d.reason), (Some(2), Reason::Best));
    }

    #[test]
    fn a_quiet_camera_is_held_low_and_lifts_at_once_when_it_speaks() {
        let now = Instant::now();
        let t = track(&RATES, now);
        let p = Preference::default();
        let high = on(2, Reason::Best);
        let d = decide(&t, &high, p, Some(3_000_000), Link::default(), true, now);
        assert_eq!(
            (d.target, d.reason),
            (Some(0), Reason::NotSpeaking),
            "no size known: the lowest layer"
        );
        assert_eq!(d.wanted_rate, 150_000, "nothing more is probed for");
        // Its owner speaks: back up at once, not after settling.
        let low = Choice {
            target: Some(0),
            current: Some(0),
            reason: d.reason,
            ..Choice::default()
        };
        let d = decide(&t, &low, p, Some(3_000_000), Link::default(), false, now);
        assert_eq!((d.target, d.reason), (Some(2), Reason::Best));
        // A budget below the cap still limits it, with its own reason.
        let d = decide(&t, &low, p, Some(100_000), Link::default(), true, now);
        assert_eq!((d.target, d.reason), (Some(0), Reason::Bandwidth));
        // A pin wins.
        let pinned = Preference {
            max_size: None,
            pin: Some("f".into()),
        };
        let d = decide(
            &t,
            &low,
            pinned,
            Some(3_000_000),
            Link::default(),
            true,
            now,
        );
        assert_eq!((d.target, d.reason), (Some(2), Reason::Pinned));
    }

    #[test]
    fn a_quiet_camera_gets_the_widest_layer_of_320_pixels() {
        let now = Instant::now();
        let mut t = track(&RATES, now);
        for (l, size) in [(0u8, (160, 90)), (1, (320, 180)), (2, (640, 360))] {
            t.layer_mut(l).unwrap().size = Some(size);
        }
        let d = decide(
            &t,
            &Choice::default(),
            Preference::default(),
            None,
            Link::default(),
            true,
            now,
        );
        assert_eq!((d.target, d.reason), (Some(1), Reason::NotSpeaking));
    }
}
