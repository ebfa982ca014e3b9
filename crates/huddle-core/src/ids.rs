use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies one participant (one peer connection) for the lifetime of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u64);

/// Identifies one published track for the lifetime of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub u64);

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

/// Hands out participant and track ids. Clones share one counter, so that the several
/// [`Sfu`](crate::Sfu)s of a server (one per media worker) never give out the same id.
#[derive(Clone, Debug)]
pub struct Ids(Arc<AtomicU64>);

impl Default for Ids {
    fn default() -> Self {
        Ids(Arc::new(AtomicU64::new(1)))
    }
}

impl Ids {
    fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn participant(&self) -> ParticipantId {
        ParticipantId(self.next())
    }

    pub(crate) fn track(&self) -> TrackId {
        TrackId(self.next())
    }
}

/// A track id as its `Display` writes it (`t12`).
impl std::str::FromStr for TrackId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix('t').unwrap_or(s).parse().map(TrackId)
    }
}
