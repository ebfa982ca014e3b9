//! The relay task: one client's path to the server over two real UDP sockets on loopback,
//! each direction through its own [`Link`].

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::link::{Impairment, Link, LinkStats};

/// A direction through the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client → server.
    Up,
    /// Server → client.
    Down,
}

#[derive(Debug)]
struct Links {
    up: Link,
    down: Link,
}

impl Links {
    fn get(&mut self, d: Direction) -> &mut Link {
        match d {
            Direction::Up => &mut self.up,
            Direction::Down => &mut self.down,
        }
    }
}

fn lock(m: &Mutex<Links>) -> MutexGuard<'_, Links> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running relay; it stops when dropped.
#[derive(Debug)]
pub struct Relay {
    client_side: SocketAddr,
    server_side: SocketAddr,
    links: Arc<Mutex<Links>>,
    changed: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Relay {
    /// Binds both sockets on 127.0.0.1 and starts relaying to `server`. The two directions
    /// draw from generators seeded from `seed`.
    pub async fn start(
        server: SocketAddr,
        up: Impairment,
        down: Impairment,
        seed: u64,
    ) -> io::Result<Relay> {
        let client_sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let server_sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let links = Arc::new(Mutex::new(Links {
            up: Link::new(up, seed.wrapping_mul(2).wrapping_add(1)),
            down: Link::new(down, seed.wrapping_mul(2).wrapping_add(2)),
        }));
        let changed = Arc::new(Notify::new());
        let relay = Relay {
            client_side: client_sock.local_addr()?,
            server_side: server_sock.local_addr()?,
            links: links.clone(),
            changed: changed.clone(),
            task: tokio::spawn(run(client_sock, server_sock, server, links, changed)),
        };
        Ok(relay)
    }

    /// Where the client sends: the address the answer's candidates are rewritten to.
    pub fn client_side(&self) -> SocketAddr {
        self.client_side
    }

    /// The one address the server sees the client at.
    pub fn server_side(&self) -> SocketAddr {
        self.server_side
    }

    /// Changes one direction from now on (see [`Link::set`]).
    pub fn set(&self, d: Direction, impairment: Impairment) {
        lock(&self.links).get(d).set(Instant::now(), impairment);
        self.changed.notify_one();
    }

    pub fn impairment(&self, d: Direction) -> Impairment {
        lock(&self.links).get(d).impairment()
    }

    pub fn stats(&self, d: Direction) -> LinkStats {
        lock(&self.links).get(d).stats()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Largest datagram relayed.
const MAX_DATAGRAM: usize = 2048;
/// Wake-up when nothing is due (the loop also wakes on every datagram and change).
const IDLE: Duration = Duration::from_millis(100);

/// Runs until the relay is dropped (or a socket fails).
async fn run(
    client_sock: UdpSocket,
    server_sock: UdpSocket,
    server: SocketAddr,
    links: Arc<Mutex<Links>>,
    changed: Arc<Notify>,
) {
    let mut client: Option<SocketAddr> = None;
    let mut from_client = vec![0u8; MAX_DATAGRAM];
    let mut from_server = vec![0u8; MAX_DATAGRAM];
    let mut out_up = Vec::new();
    let mut out_down = Vec::new();
    loop {
        let due = {
            let l = lock(&links);
            [l.up.next_due(), l.down.next_due()]
                .into_iter()
                .flatten()
                .min()
        };
        let wake = due.map_or_else(|| Instant::now() + IDLE, |d| d.min(Instant::now() + IDLE));
        tokio::select! {
            r = client_sock.recv_from(&mut from_client) => match r {
                Ok((n, from)) => {
                    client = Some(from);
                    lock(&links).up.push(Instant::now(), from_client[..n].to_vec());
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                Err(_) => return,
            },
            r = server_sock.recv_from(&mut from_server) => match r {
                Ok((n, from)) if from == server => {
                    lock(&links).down.push(Instant::now(), from_server[..n].to_vec());
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                Err(_) => return,
            },
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = changed.notified() => {}
        }
        {
            let now = Instant::now();
            let mut l = lock(&links);
            while let Some(p) = l.up.poll(now) {
                out_up.push(p);
            }
            while let Some(p) = l.down.poll(now) {
                out_down.push(p);
            }
        }
        for p in out_up.drain(..) {
            let _ = server_sock.send_to(&p, server).await;
        }
        if let Some(to) = client {
            for p in out_down.drain(..) {
                let _ = client_sock.send_to(&p, to).await;
            }
        }
        out_down.clear();
    }
}
