//! Active speaker: from the audio level every audio packet carries (RFC 6464, in −dBov), a
//! room's loudest voice, smoothed so that a cough or a door does not take the floor.
//!
//! Each audio track's level is smoothed over a few hundred milliseconds. A new speaker takes
//! over when it has been clearly louder than the current one (or the current one silent) for
//! a while; the decision is re-evaluated a few times a second, on the audio itself.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::TrackId;

/// Quieter than this (dBov) is silence.
const SILENCE_DBOV: f32 = -60.0;
/// Smoothing per packet (20 ms each): about 200 ms to follow a change.
const SMOOTHING: f32 = 0.1;
/// A challenger must be this much louder (dB) than the speaker…
const MARGIN_DB: f32 = 6.0;
/// …for this long, before it takes over.
const HOLD: Duration = Duration::from_millis(600);
/// How often the decision is reconsidered.
const EVALUATE_EVERY: Duration = Duration::from_millis(200);
/// A track not heard for this long counts as silent.
const STALE: Duration = Duration::from_millis(500);
/// A speaker who lost the floor still counts as a recent speaker for this long…
pub(crate) const RECENT_HOLD: Duration = Duration::from_secs(5);
/// …and at most this many of them do.
const RECENT_KEPT: usize = 2;

#[derive(Debug)]
struct Level {
    dbov: f32,
    heard: Instant,
}

/// The speaker detection of one room.
#[derive(Debug, Default)]
pub(crate) struct Speakers {
    levels: FxHashMap<TrackId, Level>,
    current: Option<TrackId>,
    /// The track that would take over, and since when.
    challenger: Option<(TrackId, Instant)>,
    evaluated: Option<Instant>,
    /// The previous speakers, latest first, and when each lost the floor.
    previous: Vec<(TrackId, Instant)>,
}

impl Speakers {
    /// Notes one audio packet's level (−dBov, `None` when it carries none). Returns the new
    /// active speaker's track when it changed.
    pub(crate) fn heard(
        &mut self,
        track: TrackId,
        level: Option<i8>,
        now: Instant,
    ) -> Option<Option<TrackId>> {
        let level = f32::from(level?).clamp(-127.0, 0.0);
        let entry = self.levels.entry(track).or_insert(Level {
            dbov: SILENCE_DBOV - 10.0,
            heard: now,
        });
        entry.dbov += (level - entry.dbov) * SMOOTHING;
        entry.heard = now;
        if self
            .evaluated
            .is_some_and(|at| now.saturating_duration_since(at) < EVALUATE_EVERY)
        {
            return None;
        }
        self.evaluated = Some(now);
        self.evaluate(now)
    }

    fn level(&self, track: TrackId, now: Instant) -> f32 {
        self.levels
            .get(&track)
            .filter(|l| now.saturating_duration_since(l.heard) < STALE)
            .map_or(f32::NEG_INFINITY, |l| l.dbov)
    }

    fn evaluate(&mut self, now: Instant) -> Option<Option<TrackId>> {
        let loudest = self
            .levels
            .iter()
            .filter(|(_, l)| now.saturating_duration_since(l.heard) < STALE)
            .max_by(|a, b| a.1.dbov.total_cmp(&b.1.dbov))
            .map(|(t, l)| (*t, l.dbov));
        let Some((loudest, dbov)) = loudest.filter(|(_, d)| *d > SILENCE_DBOV) else {
            self.challenger = None;
            return None; // silence: the last speaker keeps the floor
        };
        if Some(loudest) == self.current {
            self.challenger = None;
            return None;
        }
        let current = self
            .current
            .map_or(f32::NEG_INFINITY, |c| self.level(c, now));
        if dbov < current + MARGIN_DB && current > SILENCE_DBOV {
            self.challenger = None;
            return None;
        }
        let since = match self.challenger {
            Some((t, since)) if t == loudest => since,
            _ => {
                self.challenger = Some((loudest, now));
                now
            }
        };
        // The first speaker of a room takes the floor at once.
        if self.current.is_some() && now.saturating_duration_since(since) < HOLD {
            return None;
        }
        self.previous.retain(|(t, _)| *t != loudest);
        if let Some(old) = self.current {
            self.previous.insert(0, (old, now));
            self.previous.truncate(RECENT_KEPT);
        }
        self.current = Some(loudest);
        self.challenger = None;
        Some(self.current)
    }

    /// A track ended: it can no longer be the speaker.
    pub(crate) fn forget(&mut self, track: TrackId) -> Option<Option<TrackId>> {
        self.levels.remove(&track);
        self.previous.retain(|(t, _)| *t != track);
        if self.challenger.is_some_and(|(t, _)| t == track) {
            self.challenger = None;
        }
        if self.current == Some(track) {
            self.current = None;
            return Some(None);
        }
        None
    }

    pub(crate) fn current(&self) -> Option<TrackId> {
        self.current
    }

    /// The recent speakers: the current one, and the previous ones that lost the floor less
    /// than [`RECENT_HOLD`] ago (so that a layer lowered when they stop does not flap).
    pub(crate) fn recent(&self, now: Instant) -> impl Iterator<Item = TrackId> + '_ {
        self.current.into_iter().chain(
            self.previous
                .iter()
                .filter(move |(_, at)| now.saturating_duration_since(*at) < RECENT_HOLD)
                .map(|(t, _)| *t),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `ms` of 20 ms packets from `tracks` (track, level) and returns the changes.
    fn talk(
        s: &mut Speakers,
        start: Instant,
        from_ms: u64,
        ms: u64,
        tracks: &[(u64, i8)],
    ) -> Vec<Option<TrackId>> {
        let mut changes = Vec::new();
        for step in (from_ms..from_ms + ms).step_by(20) {
            for (t, level) in tracks {
                let now = start + Duration::from_millis(step);
                if let Some(c) = s.heard(TrackId(*t), Some(*level), now) {
                    changes.push(c);
                }
            }
        }
        changes
    }

    #[test]
    fn the_speaker_follows_who_talks_and_ignores_short_noises() {
        let t0 = Instant::now();
        let mut s = Speakers::default();
        // Track 1 talks, 2 is quiet.
        let c = talk(&mut s, t0, 0, 1000, &[(1, -20), (2, -80)]);
        assert_eq!(c, vec![Some(TrackId(1))]);
        // A 200 ms burst from 2 does not take the floor.
        let c = talk(&mut s, t0, 1000, 200, &[(1, -20), (2, -5)]);
        assert!(c.is_empty(), "{c:?}");
        // 2 talks, 1 falls silent: 2 takes over within a second.
        let c = talk(&mut s, t0, 1200, 1500, &[(1, -90), (2, -15)]);
        assert_eq!(c, vec![Some(TrackId(2))]);
        assert_eq!(s.current(), Some(TrackId(2)));
        // Silence keeps the last speaker.
        let c = talk(&mut s, t0, 2700, 1000, &[(1, -90), (2, -90)]);
        assert!(c.is_empty());
        let at = t0 + Duration::from_millis(3700);
        assert_eq!(
            s.recent(at).collect::<Vec<_>>(),
            vec![TrackId(2), TrackId(1)],
            "the previous speaker is still recent"
        );
        assert_eq!(
            s.recent(at + RECENT_HOLD).collect::<Vec<_>>(),
            vec![TrackId(2)],
            "until the hold ran out"
        );
        assert_eq!(s.forget(TrackId(2)), Some(None));
    }
}
