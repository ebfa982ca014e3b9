//! A user-space UDP impairment relay for tests: the kernel here has no netem, so loss, delay,
//! reordering, duplication and bandwidth caps are applied by a relay between a client and
//! huddle, on real UDP sockets on 127.0.0.1.
//!
//! - [`Impairment`] says what one direction of a link does to packets; [`Link`] applies it,
//!   sans-IO, on a clock the caller gives it, deterministic for a seed.
//! - [`Relay`] is one client's path to the server: a socket the client talks to and one
//!   upstream socket the server talks to (so the server sees one stable address for the
//!   client, the one ICE learns), each direction through its own [`Link`], changeable while
//!   the relay runs (a test lifts a cap).
//! - [`via_relay`] points an answer's candidates at a relay, so a client offering no
//!   candidates of its own (`obs_like`) reaches the server only through it; [`connect_viewer`]
//!   and [`connect_publisher`] do the whole set-up.
//! - An [`Impairment`] parses from text (`"loss=0.05 cap=500000"`, see `spec.rs`); the
//!   `impair-relay` binary runs one [`Relay`] for peers outside Rust (browsers, aiortc).

mod connect;
mod link;
mod loss;
mod relay;
mod rng;
mod sdp;
mod shaper;
mod spec;

pub use connect::{connect_publisher, connect_viewer};
pub use link::{Impairment, Link, LinkStats};
pub use loss::Loss;
pub use relay::{Direction, Relay};
pub use rng::Rng;
pub use sdp::{server_address, via_relay};
pub use shaper::Cap;
pub use spec::SpecError;
