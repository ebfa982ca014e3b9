//! Which encoding of a video track a subscription receives, and why: the state a layer
//! allocation leaves on each video subscription, and what the explained-decisions report
//! shows of it.

use std::fmt;
use std::time::Instant;

use str0m::media::Rid;

/// Why a subscription receives the layer it does (or none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The best the publisher sends: nothing holds it back.
    Best,
    /// The subscriber's bandwidth estimate does not carry a higher layer.
    Bandwidth,
    /// The subscriber's link is congested (its receiver reports losses while the round trip
    /// grows) before its estimate says so: held to what got through.
    Congestion,
    /// The estimate now carries a higher layer: forwarding moves up once it has held a
    /// while (so that a fluctuating estimate does not flap).
    Settling,
    /// The tile the subscriber shows it in is small: a higher layer would be wasted.
    TileSize,
    /// The layer that would fit is not being sent by the publisher now.
    PublisherNotSending,
    /// The subscriber cannot sustain even the lowest layer: video paused, audio goes on.
    Paused,
    /// A large room: the camera of someone who is not a recent active speaker is held low.
    NotSpeaking,
    /// The subscriber pinned this layer.
    Pinned,
    /// Nothing to choose from yet (no media from the publisher).
    Waiting,
}

impl Reason {
    /// Every reason, in [`Reason::index`] order.
    pub const ALL: [Reason; Reason::COUNT] = [
        Reason::Best,
        Reason::Bandwidth,
        Reason::Congestion,
        Reason::Settling,
        Reason::TileSize,
        Reason::PublisherNotSending,
        Reason::Paused,
        Reason::NotSpeaking,
        Reason::Pinned,
        Reason::Waiting,
    ];

    /// How many reasons there are.
    pub const COUNT: usize = 10;

    /// Its place in [`Reason::ALL`] (for per-reason counters).
    pub fn index(self) -> usize {
        Reason::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }

    /// In words, for the page and the report.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Best => "best quality the publisher sends",
            Reason::Bandwidth => "limited by your bandwidth estimate",
            Reason::Congestion => "your connection is losing packets: held to what gets through",
            Reason::Settling => "your bandwidth allows more: moving up once that holds",
            Reason::TileSize => "limited to the size the video is shown at",
            Reason::PublisherNotSending => "the publisher is not sending a better layer",
            Reason::Paused => "paused: not enough bandwidth for the lowest layer",
            Reason::NotSpeaking => "lowered while others speak: the room has many videos",
            Reason::Pinned => "pinned",
            Reason::Waiting => "waiting for the publisher's video",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Best => "best",
            Reason::Bandwidth => "bandwidth",
            Reason::Congestion => "congestion",
            Reason::Settling => "settling",
            Reason::TileSize => "tile-size",
            Reason::PublisherNotSending => "publisher-not-sending",
            Reason::Paused => "paused",
            Reason::NotSpeaking => "not-speaking",
            Reason::Pinned => "pinned",
            Reason::Waiting => "waiting",
        })
    }
}

/// What a subscriber asked for a track: set through signaling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Preference {
    /// The size of the tile the track is shown in, in pixels.
    pub max_size: Option<(u32, u32)>,
    /// A layer to receive whatever the allocation would choose.
    pub pin: Option<Rid>,
}

/// The layer state of one video subscription.
#[derive(Clone, Debug)]
pub(crate) struct Choice {
    /// The layer forwarded now.
    pub current: Option<u8>,
    /// The layer wanted; forwarding switches to it at its next keyframe.
    pub target: Option<u8>,
    /// The current layer is no longer forwarded while the target's keyframe is awaited: the
    /// link is congested, and every packet more of it would queue ahead of that keyframe.
    pub abandon: bool,
    /// What str0m still queued of it was dropped: the numbering has a gap there, which the
    /// next source's first packet makes visible (see [`crate::downlink`]).
    pub dropped_unsent: bool,
    pub paused: bool,
    pub reason: Reason,
    pub switched_at: Option<Instant>,
    /// Since when a higher layer than the target has fitted the budget (up-switch hysteresis),
    /// or, paused, the lowest layer (resume hysteresis).
    pub fits_higher_since: Option<Instant>,
    pub preference: Preference,
}

impl Default for Choice {
    fn default() -> Self {
        Choice {
            current: None,
            target: Some(0),
            abandon: false,
            dropped_unsent: false,
            paused: false,
            reason: Reason::Waiting,
            switched_at: None,
            fits_higher_since: None,
            preference: Preference::default(),
        }
    }
}

impl Choice {
    /// The track behind the subscription changed: choose afresh, keep what was asked.
    pub(crate) fn reset(&mut self) {
        *self = Choice {
            preference: self.preference,
            ..Choice::default()
        };
    }
}

/// One video subscription as the explained-decisions report shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct SubscriptionReport {
    pub subscriber: crate::ParticipantId,
    pub track: crate::TrackId,
    /// The subscriber's bandwidth estimate, bits per second (none: it sends no TWCC/REMB).
    pub estimate: Option<u64>,
    pub target: Option<LayerReport>,
    pub current: Option<LayerReport>,
    pub paused: bool,
    pub reason: Reason,
    /// How long ago forwarding last switched layers.
    pub since_switch: Option<std::time::Duration>,
    pub preference: Preference,
}

/// One layer in a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerReport {
    pub rid: Option<Rid>,
    pub size: Option<(u32, u32)>,
    /// Bits per second the publisher sends on it now.
    pub bitrate: u64,
}
