//! huddle_client::RoomMember against an in-process huddle: three members in one room receive
//! each other's verified audio and video, chat reaches the others, a leave is announced.

use std::time::{Duration, Instant};

use huddle_client::{ClientOptions, MemberStats, RoomMember};

async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Both others' audio and video flowing, more than `min` packets each.
fn receives_all(s: &MemberStats, others: &[&str], min: u64) -> bool {
    others.iter().all(|id| {
        s.received
            .get(*id)
            .is_some_and(|r| r.audio.packets > min && r.video.packets > min)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_see_each_other_chat_and_leave() {
    let server = huddle_server::Server::start(huddle_server::Config::ephemeral())
        .await
        .expect("server starts");
    let ws = format!(
        "{}/rooms/standup/ws",
        server.base_url().replacen("http://", "ws://", 1)
    );
    let opts = ClientOptions {
        video_bitrate_bps: 300_000,
        ..ClientOptions::default()
    };
    let a = RoomMember::join(&ws, "ada", opts.clone())
        .await
        .expect("ada");
    let b = RoomMember::join(&ws, "bob", opts.clone())
        .await
        .expect("bob");
    let c = RoomMember::join(&ws, "cy", opts.clone()).await.expect("cy");
    for m in [&a, &b, &c] {
        m.wait_connected(Duration::from_secs(10))
            .await
            .expect("connected");
    }
    let ids: Vec<String> = [&a, &b, &c].iter().map(|m| m.id().to_owned()).collect();
    let others = |i: usize| -> Vec<&str> {
        ids.iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, id)| id.as_str())
            .collect()
    };

    let flowing = eventually(Duration::from_secs(15), || {
        [&a, &b, &c]
            .iter()
            .enumerate()
            .all(|(i, m)| receives_all(&m.stats(), &others(i), 50))
    })
    .await;
    for m in [&a, &b, &c] {
        let s = m.stats();
        let summary: Vec<_> = s
            .received
            .iter()
            .map(|(k, v)| (k.clone(), v.audio.packets, v.video.packets))
            .collect();
        println!(
            "{}: {summary:?} offers {} published {:?} errors {:?}",
            s.id, s.server_offers, s.published, s.errors
        );
    }
    assert!(
        flowing,
        "every member receives both others' video and audio"
    );
    for (i, m) in [&a, &b, &c].iter().enumerate() {
        let s = m.stats();
        assert!(s.connected && s.published.connected);
        assert!(s.published.video_packets_sent > 0 && s.published.audio_packets_sent > 0);
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(
            s.received.len(),
            2,
            "only the two others: {:?}",
            s.received.keys()
        );
        for id in others(i) {
            let r = &s.received[id];
            for st in [&r.audio, &r.video] {
                assert_eq!(st.payload_mismatches, 0, "{id}: {st:?}");
                assert_eq!(st.seq_gaps, 0, "{id}: {st:?}");
                assert!(st.counters_seen > 0 && st.last_counter >= st.first_counter);
                assert!(
                    st.latency_us.is_empty(),
                    "latency is taken, not snapshotted"
                );
            }
        }
        assert!(!m.take_latency().is_empty());
    }
    assert!(
        a.stats().server_offers >= 1,
        "ada was offered the later joiners' tracks"
    );

    b.say("hello from bob");
    let chatted = eventually(Duration::from_secs(5), || {
        a.stats().chat.len() == 1 && c.stats().chat.len() == 1
    })
    .await;
    assert!(
        chatted,
        "chat reached the others: {:?} {:?}",
        a.stats().chat,
        c.stats().chat
    );
    let msg = &a.stats().chat[0];
    assert_eq!(
        (msg.from.as_str(), msg.name.as_str(), msg.text.as_str()),
        (ids[1].as_str(), "bob", "hello from bob")
    );
    assert_eq!(c.stats().chat[0].text, "hello from bob");
    assert!(b.stats().chat.is_empty(), "no echo to the sender");

    // Garbage on the socket gets an error, not a disconnect.
    a.send_raw(r#"{"type":"dance"}"#);
    assert!(eventually(Duration::from_secs(3), || !a.stats().errors.is_empty()).await);
    assert!(a.stats().signaling_open);

    b.leave().await;
    let told = eventually(Duration::from_secs(5), || {
        a.stats().left.contains(&ids[1]) && c.stats().left.contains(&ids[1])
    })
    .await;
    assert!(
        told,
        "others told bob left: {:?} {:?}",
        a.stats().left,
        c.stats().left
    );
    // Ada and Cy still hear each other.
    let before = a.stats().received[&ids[2]].video.packets;
    assert!(
        eventually(Duration::from_secs(3), || {
            a.stats().received[&ids[2]].video.packets > before + 10
        })
        .await
    );
    a.leave().await;
    c.leave().await;
    server.shutdown().await;
}
