//! Which media worker hosts what. A room lives on one worker (its home) while it is small:
//! publishers and members always join there. Once a room has [`Placement::spread_after`]
//! participants at home, further viewers go to the worker with the fewest of the room's
//! participants, and the home relays the room's feed **once** to each such worker over a
//! link ([`huddle_core::RelayLink`]).
//!
//! This is bookkeeping only (no threads, no channels): the media module asks it where a join
//! goes and acts on the answer.

use std::collections::HashMap;

use huddle_core::{ParticipantId, RelayLink, Role};

/// Where a join goes, and the relay to set up first if it is a new edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub worker: usize,
    /// The link feeding `worker` from the room's home, when the viewer lands on an edge.
    pub link: Option<Link>,
    /// The link did not exist before this decision: both ends must be told.
    pub new_link: bool,
}

/// A relay between a room's home and one edge worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub id: RelayLink,
    pub origin: usize,
    pub edge: usize,
}

#[derive(Debug)]
struct RoomPlace {
    home: usize,
    /// The room's participants per worker (joins counted when decided).
    here: Vec<usize>,
    /// Edge worker → the link that feeds it.
    links: HashMap<usize, RelayLink>,
}

#[derive(Debug)]
pub struct Placement {
    workers: usize,
    /// Participants a room keeps at home before viewers spread out.
    spread_after: usize,
    max_rooms: usize,
    max_room_participants: usize,
    rooms: HashMap<String, RoomPlace>,
    /// Every participant's worker and room.
    participants: HashMap<ParticipantId, (usize, String)>,
    next_link: u64,
}

impl Placement {
    pub fn new(workers: usize, spread_after: usize) -> Self {
        Placement {
            workers: workers.max(1),
            spread_after,
            max_rooms: usize::MAX,
            max_room_participants: usize::MAX,
            rooms: HashMap::new(),
            participants: HashMap::new(),
            next_link: 1,
        }
    }

    /// At most `rooms` rooms, and `participants` in each.
    pub fn limit(&mut self, rooms: usize, participants: usize) {
        self.max_rooms = rooms;
        self.max_room_participants = participants;
    }

    /// Every open room and its participants (all workers).
    pub fn rooms(&self) -> Vec<(String, usize)> {
        self.rooms
            .iter()
            .map(|(name, r)| (name.clone(), r.here.iter().sum()))
            .collect()
    }

    /// Participants per worker, all rooms.
    fn load(&self, worker: usize) -> usize {
        self.rooms
            .values()
            .map(|r| r.here.get(worker).copied().unwrap_or(0))
            .sum()
    }

    /// Decides where a participant joining `room` as `role` goes, and counts it there; or
    /// refuses it (rooms or the room full).
    pub fn place(&mut self, room: &str, role: Role) -> Result<Decision, String> {
        if let Some(r) = self.rooms.get(room) {
            let here: usize = r.here.iter().sum();
            if here >= self.max_room_participants {
                return Err(format!(
                    "room {room:?} has {} participants, its limit",
                    self.max_room_participants
                ));
            }
        } else if self.rooms.len() >= self.max_rooms {
            return Err(format!("{} rooms open, the server's limit", self.max_rooms));
        }
        Ok(self.place_within(room, role))
    }

    /// The worker that hosts `room` here (placed now if new), and a new link to feed it
    /// from another node.
    pub fn home_for_pull(&mut self, room: &str) -> (usize, RelayLink) {
        self.open(room);
        let home = self.rooms.get(room).map_or(0, |r| r.home);
        let id = RelayLink(self.next_link);
        self.next_link += 1;
        (home, id)
    }

    /// Opens `room` on the least-loaded worker, unless it is open.
    fn open(&mut self, room: &str) {
        if !self.rooms.contains_key(room) {
            let home = (0..self.workers).min_by_key(|w| self.load(*w)).unwrap_or(0);
            self.rooms.insert(
                room.to_owned(),
                RoomPlace {
                    home,
                    here: vec![0; self.workers],
                    links: HashMap::new(),
                },
            );
        }
    }

    fn place_within(&mut self, room: &str, role: Role) -> Decision {
        let workers = self.workers;
        self.open(room);
        let loads: Vec<usize> = (0..workers).map(|w| self.load(w)).collect();
        let spread_after = self.spread_after;
        let Some(r) = self.rooms.get_mut(room) else {
            return Decision {
                worker: 0,
                link: None,
                new_link: false,
            };
        };
        let at_home = r.here.get(r.home).copied().unwrap_or(0);
        let worker = if role != Role::Viewer || workers == 1 || at_home < spread_after {
            r.home
        } else {
            // The fewest of this room's participants, then the least loaded overall.
            (0..workers)
                .min_by_key(|w| {
                    (
                        r.here.get(*w).copied().unwrap_or(0),
                        loads.get(*w).copied().unwrap_or(0),
                    )
                })
                .unwrap_or(r.home)
        };
        if let Some(n) = r.here.get_mut(worker) {
            *n += 1;
        }
        if worker == r.home {
            return Decision {
                worker,
                link: None,
                new_link: false,
            };
        }
        let (id, new_link) = match r.links.get(&worker) {
            Some(id) => (*id, false),
            None => {
                let id = RelayLink(self.next_link);
                self.next_link += 1;
                r.links.insert(worker, id);
                (id, true)
            }
        };
        Decision {
            worker,
            link: Some(Link {
                id,
                origin: r.home,
                edge: worker,
            }),
            new_link,
        }
    }

    /// The join decided by [`place`](Self::place) succeeded as `participant`.
    pub fn joined(&mut self, participant: ParticipantId, room: &str, worker: usize) {
        self.participants
            .insert(participant, (worker, room.to_owned()));
    }

    /// The join decided by [`place`](Self::place) failed: uncount it.
    pub fn refused(&mut self, room: &str, worker: usize) {
        self.uncount(room, worker);
    }

    /// A participant left.
    pub fn left(&mut self, participant: ParticipantId) {
        if let Some((worker, room)) = self.participants.remove(&participant) {
            self.uncount(&room, worker);
        }
    }

    fn uncount(&mut self, room: &str, worker: usize) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if let Some(n) = r.here.get_mut(worker) {
            *n = n.saturating_sub(1);
        }
        if r.here.iter().all(|n| *n == 0) && r.links.is_empty() {
            self.rooms.remove(room);
        }
    }

    /// The worker of a participant.
    pub fn worker_of(&self, participant: ParticipantId) -> Option<usize> {
        self.participants.get(&participant).map(|(w, _)| *w)
    }

    /// An edge room emptied. Returns true if the link should close (nobody is on their way
    /// in), false if a join is under way and the edge must be fed again.
    pub fn edge_emptied(&mut self, room: &str, link: RelayLink) -> bool {
        let Some(r) = self.rooms.get_mut(room) else {
            return true;
        };
        let Some(edge) = r.links.iter().find(|(_, l)| **l == link).map(|(w, _)| *w) else {
            return true;
        };
        if r.here.get(edge).copied().unwrap_or(0) > 0 {
            return false;
        }
        r.links.remove(&edge);
        if r.here.iter().all(|n| *n == 0) && r.links.is_empty() {
            self.rooms.remove(room);
        }
        true
    }

    /// Relay links in use (for stats).
    pub fn links(&self) -> usize {
        self.rooms.values().map(|r| r.links.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_rooms_stay_home_and_new_rooms_go_to_the_least_loaded_worker() {
        let mut p = Placement::new(2, 3);
        let a = p.place("a", Role::Member).unwrap();
        assert_eq!(a.worker, 0);
        p.joined(ParticipantId(1), "a", a.worker);
        let b = p.place("b", Role::Publisher).unwrap();
        assert_eq!(b.worker, 1, "the second room goes to the idle worker");
        for i in 0..2 {
            let d = p.place("a", Role::Viewer).unwrap();
            assert_eq!((d.worker, d.link), (0, None));
            p.joined(ParticipantId(10 + i), "a", d.worker);
        }
    }

    #[test]
    fn a_large_room_spreads_its_viewers_over_one_link_per_edge() {
        let mut p = Placement::new(2, 2);
        let publisher = p.place("town-hall", Role::Publisher).unwrap();
        p.joined(ParticipantId(1), "town-hall", publisher.worker);
        let mut per_worker = [0usize; 2];
        let mut new_links = 0;
        per_worker[publisher.worker] += 1;
        for i in 0..20 {
            let d = p.place("town-hall", Role::Viewer).unwrap();
            p.joined(ParticipantId(100 + i), "town-hall", d.worker);
            per_worker[d.worker] += 1;
            if let Some(link) = d.link {
                assert_eq!((link.origin, link.edge), (publisher.worker, d.worker));
            }
            new_links += usize::from(d.new_link);
        }
        assert_eq!(new_links, 1, "one link to the one edge");
        assert_eq!(per_worker, [11, 10], "split evenly once past the threshold");
        // Members never leave home.
        assert_eq!(
            p.place("town-hall", Role::Member).unwrap().worker,
            publisher.worker
        );
    }

    #[test]
    fn an_emptied_edge_closes_its_link_unless_someone_is_joining() {
        let mut p = Placement::new(2, 2);
        let home = p.place("r", Role::Publisher).unwrap();
        p.joined(ParticipantId(1), "r", home.worker);
        let member = p.place("r", Role::Member).unwrap();
        p.joined(ParticipantId(3), "r", member.worker);
        let edge = p.place("r", Role::Viewer).unwrap();
        let link = edge.link.unwrap();
        p.joined(ParticipantId(2), "r", edge.worker);
        // Another viewer is on its way to the edge when the first leaves.
        let pending = p.place("r", Role::Viewer).unwrap();
        assert_eq!(pending.worker, edge.worker);
        p.left(ParticipantId(2));
        assert!(
            !p.edge_emptied("r", link.id),
            "a join is under way: keep the link"
        );
        p.refused("r", pending.worker);
        assert!(p.edge_emptied("r", link.id));
        assert_eq!(p.links(), 0);
        p.left(ParticipantId(1));
        p.left(ParticipantId(3));
        assert!(p.rooms.is_empty(), "nothing left of the room");
    }

    #[test]
    fn rooms_and_room_sizes_are_limited() {
        let mut p = Placement::new(1, 10);
        p.limit(1, 2);
        p.place("a", Role::Member).unwrap();
        assert!(p.place("b", Role::Member).is_err(), "one room at most");
        p.place("a", Role::Viewer).unwrap();
        assert!(p.place("a", Role::Viewer).is_err(), "two in a room at most");
    }
}
