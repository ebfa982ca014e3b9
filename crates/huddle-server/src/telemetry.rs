//! Prometheus metrics at `GET /metrics`: the core's counters and sizes, published once a
//! second by the media loop through the `metrics` facade.

use std::sync::OnceLock;

use huddle_core::SfuStats;
use metrics::{counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

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
    publish(&SfuStats::default(), 0);
}

pub fn publish(s: &SfuStats, sessions: usize) {
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
}
