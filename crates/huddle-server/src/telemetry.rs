//! Prometheus metrics at `GET /metrics`: the core's counters and sizes, published once a
//! second by the media loop through the `metrics` facade.

use std::sync::OnceLock;

use huddle_core::Reason;
use metrics::{counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::media::board::{Report, quantile};

/// The process-wide recorder (one per process, however many servers it starts).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed: then this one stays unused.
            metrics::set_global_recorder(recorder).ok().map(|()| handle)
        })
        .as_ref()
}

/// Installs the recorder, describes every series and sets it to zero, so that `/metrics`
/// lists all of them from the start.
pub fn install() {
    if handle().is_none() {
        return;
    }
    describe_gauge!("huddle_rooms", "Rooms with at least one participant");
    describe_gauge!(
        "huddle_participants",
        "Peer connections (publishers, viewers, members)"
    );
    describe_gauge!("huddle_tracks", "Published tracks");
    describe_gauge!("huddle_subscriptions", "Track-to-subscriber forwardings");
    describe_gauge!("huddle_http_sessions", "Open WHIP/WHEP sessions");
    describe_counter!(
        "huddle_packets_received_total",
        "RTP packets received from publishers"
    );
    describe_counter!(
        "huddle_packets_forwarded_total",
        "RTP packets written to subscribers"
    );
    describe_counter!(
        "huddle_keyframe_requests_sent_total",
        "Keyframe requests (PLI) sent to publishers"
    );
    describe_counter!(
        "huddle_datagrams_unrouted_total",
        "Datagrams that belonged to no participant"
    );
    describe_counter!(
        "huddle_datagrams_malformed_total",
        "Datagrams a participant's WebRTC stack refused"
    );
    describe_gauge!("huddle_relay_links", "Relays between media workers");
    describe_counter!(
        "huddle_layer_switches_total",
        "Video layer changes decided for subscribers, by the reason for the new choice"
    );
    describe_counter!(
        "huddle_video_pauses_total",
        "Subscribers' video paused for bandwidth"
    );
    describe_counter!(
        "huddle_nacks_received_total",
        "NACKs received from subscribers"
    );
    describe_counter!(
        "huddle_retransmissions_total",
        "Packets retransmitted to subscribers from their history"
    );
    describe_counter!("huddle_nacks_sent_total", "NACKs sent to publishers");
    describe_counter!(
        "huddle_packets_relayed_total",
        "Packets relayed between media workers (once per link)"
    );
    describe_counter!(
        "huddle_relay_dropped_total",
        "Relay messages dropped because a worker's queue was full"
    );
    describe_gauge!(
        "huddle_residence_seconds",
        "Time from a receive batch to the send call of each datagram it produced, by quantile"
    );
    publish(&Report::default(), 0);
}

pub fn publish(report: &Report, sessions: usize) {
    let s = &report.stats;
    gauge!("huddle_rooms").set(s.rooms as f64);
    gauge!("huddle_participants").set(s.participants as f64);
    gauge!("huddle_tracks").set(s.tracks as f64);
    gauge!("huddle_subscriptions").set(s.subscriptions as f64);
    gauge!("huddle_http_sessions").set(sessions as f64);
    counter!("huddle_packets_received_total").absolute(s.packets_received);
    counter!("huddle_packets_forwarded_total").absolute(s.packets_forwarded);
    counter!("huddle_keyframe_requests_sent_total").absolute(s.keyframe_requests_sent);
    counter!("huddle_datagrams_unrouted_total").absolute(s.datagrams_unrouted);
    counter!("huddle_datagrams_malformed_total").absolute(s.datagrams_malformed);
    gauge!("huddle_relay_links").set(s.relay_links as f64);
    for (reason, n) in Reason::ALL.iter().zip(s.layer_switches) {
        counter!("huddle_layer_switches_total", "reason" => reason.to_string()).absolute(n);
    }
    counter!("huddle_video_pauses_total").absolute(s.pauses);
    counter!("huddle_nacks_received_total").absolute(s.nacks_received);
    counter!("huddle_retransmissions_total").absolute(s.retransmissions);
    counter!("huddle_nacks_sent_total").absolute(s.nacks_sent);
    counter!("huddle_packets_relayed_total").absolute(s.packets_relayed);
    counter!("huddle_relay_dropped_total").absolute(report.relay_dropped);
    for (label, q) in [("0.5", 0.5), ("0.99", 0.99), ("0.999", 0.999)] {
        gauge!("huddle_residence_seconds", "quantile" => label)
            .set(quantile(&report.residence, q).as_secs_f64());
    }
}
