//! Prometheus metrics at `GET /metrics`: the core's counters and sizes, published once a
//! second by the media loop through the `metrics` facade.

use std::sync::OnceLock;

use huddle_core::SfuStats;
use metrics::{counter, gauge};
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
