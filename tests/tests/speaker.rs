//! Active speaker over real UDP (issue 13): three simulcast WHIP publishers send Opus with the
//! RFC 6464 audio level and take turns to talk; a room member is told who speaks (`speaker`
//! messages), and in a room with more cameras than `speaker_focus_after` it receives the
//! others' cameras on the low layer (`GET /rooms/{room}/subscriptions`, reason
//! `not-speaking`). Swap times are printed (`--nocapture`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use huddle_client::{AudioLevel, ClientOptions, Publisher, RoomMember, SendLayer};
use huddle_server::Config;
use huddle_tests::{eventually, start_with, subscriptions};

const CONNECT: Duration = Duration::from_secs(10);
/// One turn of talking.
const TURN: Duration = Duration::from_secs(2);
/// Who talks in each turn (publisher index).
const TURNS: [usize; 4] = [0, 1, 2, 0];
/// Short loud noises from someone silent: (publisher, start, length). Neither may take the floor.
/// The second is long enough to be the loudest voice for a moment, not for the hold.
const BLIPS: [(usize, Duration, Duration); 2] = [
    (2, Duration::from_millis(700), Duration::from_millis(100)),
    (0, Duration::from_millis(3300), Duration::from_millis(500)),
];
const TALKING: i8 = -30;
const NOISE: i8 = 0;
/// How often levels are set and the subscriptions polled.
const TICK: Duration = Duration::from_millis(50);

/// What publisher `i` sends `t` into the talk.
fn level(i: usize, t: Duration) -> i8 {
    let turn = (t.as_millis() / TURN.as_millis()) as usize;
    if TURNS.get(turn) == Some(&i) {
        return TALKING;
    }
    let blip = BLIPS
        .iter()
        .any(|(who, from, len)| *who == i && t >= *from && t < *from + *len);
    if blip { NOISE } else { AudioLevel::SILENT }
}

/// The current rid and reason of each video row of one subscriber, by track.
type Layers = HashMap<String, (String, String)>;

async fn layers(base: &str, room: &str, subscriber: &str) -> Layers {
    subscriptions(base, room)
        .await
        .iter()
        .filter(|r| r["subscriber"] == subscriber)
        .filter_map(|r| {
            let rid = r["current"]["rid"].as_str()?.to_owned();
            let reason = r["reason"].as_str().unwrap_or_default().to_owned();
            Some((r["track"].as_str()?.to_owned(), (rid, reason)))
        })
        .collect()
}

/// When `camera` first satisfies `want` in a poll from `from` on.
fn first_poll(
    polls: &[(Instant, Layers)],
    from: Instant,
    camera: &str,
    want: &dyn Fn(&(String, String)) -> bool,
) -> Option<Instant> {
    polls
        .iter()
        .find(|(at, rows)| *at >= from && rows.get(camera).is_some_and(want))
        .map(|(at, _)| *at)
}

/// `camera`'s layer and reason each time they changed, in ms from `start`.
fn timeline(polls: &[(Instant, Layers)], start: Instant, camera: &str) -> String {
    let mut changes: Vec<String> = Vec::new();
    let mut last = None;
    for (at, rows) in polls {
        let now = rows.get(camera);
        if now != last {
            let ms = at.saturating_duration_since(start).as_millis();
            changes.push(format!("{ms} ms {now:?}"));
            last = now;
        }
    }
    changes.join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_speaker_follows_who_talks() {
    let server = start_with(Config {
        speaker_focus_after: 2,
        ..Config::ephemeral()
    })
    .await;
    let (base, room) = (server.base_url(), "talk");
    let ws = format!("ws://{}/rooms/{room}/ws", server.http_addr);
    // The member sends audio without a level: it never counts as speaking.
    let member_opts = ClientOptions {
        video: None,
        ..ClientOptions::default()
    };
    let member = RoomMember::join(&ws, "listener", member_opts)
        .await
        .unwrap();
    member.wait_connected(CONNECT).await.unwrap();
    let mut publishers = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    for i in 0..3 {
        let level = AudioLevel::new(AudioLevel::SILENT);
        let opts = ClientOptions {
            simulcast: SendLayer::three(400_000),
            audio_level: Some(level.clone()),
            ..ClientOptions::default()
        };
        let p = Publisher::connect(&server.whip_url(room), opts)
            .await
            .unwrap();
        p.wait_connected(CONNECT).await.unwrap();
        let joined = eventually(CONNECT, || async { member.stats().joined.len() > i }).await;
        assert!(joined, "publisher {i} not announced");
        labels.push(member.stats().joined[i].clone());
        publishers.push((p, level));
    }
    // Each publisher's camera track, from the member's `track-published` messages and the
    // rows it has (video only).
    let me = member.id().to_owned();
    let mut camera: Vec<Option<String>> = vec![None; 3];
    for _ in 0..100 {
        let tracks = member.stats().tracks;
        let rows = layers(&base, room, &me).await;
        for (i, label) in labels.iter().enumerate() {
            camera[i] = tracks
                .iter()
                .find(|(p, t)| p == label && rows.contains_key(t))
                .map(|(_, t)| t.clone());
        }
        if camera.iter().all(Option::is_some) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        camera.iter().all(Option::is_some),
        "cameras {camera:?} of {labels:?}"
    );
    let camera: Vec<String> = camera.into_iter().flatten().collect();

    // The talk: levels follow the schedule; the member's layers are polled every other tick.
    let start = Instant::now();
    let told_before = member.stats().speakers.len();
    let end = TURN * TURNS.len() as u32;
    let mut polls: Vec<(Instant, Layers)> = Vec::new();
    let mut tick = tokio::time::interval(TICK);
    for n in 0u32.. {
        tick.tick().await;
        let t = start.elapsed();
        if t >= end {
            break;
        }
        for (i, (_, l)) in publishers.iter().enumerate() {
            l.set(level(i, t));
        }
        if n % 2 == 0 {
            polls.push((Instant::now(), layers(&base, room, &me).await));
        }
    }
    let told: Vec<(Option<String>, Instant)> = member.stats().speakers[told_before..].to_vec();

    // Speaker changes: exactly one per turn change, each to the new speaker, within the turn.
    let who = |label: &Option<String>| {
        label
            .as_ref()
            .and_then(|l| labels.iter().position(|x| x == l))
    };
    let named: Vec<Option<usize>> = told.iter().map(|(l, _)| who(l)).collect();
    let mut swaps = Vec::new();
    let mut lifts = Vec::new();
    let mut fulls = Vec::new();
    for (turn, &speaker) in TURNS.iter().enumerate() {
        let changed_at = start + TURN * turn as u32;
        let message = told
            .iter()
            .find(|(l, at)| who(l) == Some(speaker) && *at >= changed_at)
            .map(|(_, at)| *at);
        swaps.push(message.map(|at| at - changed_at));
        // After the message: the new speaker's camera no longer held low, and on f.
        let after = |want: &dyn Fn(&(String, String)) -> bool| {
            let m = message?;
            let at = first_poll(&polls, changed_at, &camera[speaker], want)?;
            Some(at.saturating_duration_since(m))
        };
        lifts.push(after(&|(rid, reason)| {
            rid != "q" && reason != "not-speaking"
        }));
        fulls.push(after(&|(rid, _)| rid == "f"));
    }
    let ms = |v: &[Option<Duration>]| {
        v.iter()
            .map(|s| s.map(|d| d.as_millis()))
            .collect::<Vec<_>>()
    };
    println!(
        "speaker messages {named:?} for turns {TURNS:?} of {} ms; swap times (turn change → \
         message) {:?} ms; after the message, the new speaker's camera above q {:?} ms, on f {:?} ms",
        TURN.as_millis(),
        ms(&swaps),
        ms(&lifts),
        ms(&fulls),
    );
    for (i, camera) in camera.iter().enumerate() {
        println!(
            "publisher {i}'s camera at the member: {}",
            timeline(&polls, start, camera)
        );
    }
    let expected: Vec<Option<usize>> = TURNS.iter().map(|&i| Some(i)).collect();
    assert_eq!(named, expected, "no flapping on the noise bursts");
    for (turn, swap) in swaps.iter().enumerate() {
        assert!(
            swap.is_some_and(|s| s < Duration::from_millis(1500)),
            "turn {turn}: swap {swap:?}"
        );
    }

    // Speaker focus: before their first turn Ben and Cy are held on q for not speaking, and
    // their cameras are lifted once they speak (to f unless the member's estimate holds
    // them lower: reason `bandwidth`); so is the first speaker's.
    for (i, first_turn) in [(1usize, 1u32), (2, 2)] {
        let before = polls
            .iter()
            .rev()
            .find(|(at, _)| *at < start + TURN * first_turn)
            .and_then(|(_, rows)| rows.get(&camera[i]).cloned());
        assert_eq!(
            before,
            Some(("q".to_owned(), "not-speaking".to_owned())),
            "publisher {i} before it speaks"
        );
    }
    for (turn, lift) in lifts.iter().enumerate().take(3) {
        assert!(
            lift.is_some_and(|r| r < Duration::from_secs(1)),
            "turn {turn}: camera lifted {lift:?} after the message"
        );
    }

    member.leave().await;
    for (p, _) in publishers {
        p.close().await.unwrap();
    }
    server.shutdown().await;
}
