//! Prometheus metrics at `GET /metrics`: the core's counters and sizes, published once a
//! second by the media loop through the `metrics` facade.

use std::sync::OnceLock;

use huddle_core::{Diagnosis, Failure, Reason};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::media::board::{Report, quantile};

/// The process-wide recorder (one per process, however many servers it starts).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = with_buckets(PrometheusBuilder::new()).build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed: then this one stays unused.
            metrics::set_global_recorder(recorder).ok().map(|()| handle)
        })
        .as_ref()
}

/// Histograms and their bucket bounds.
pub const TIMER_LAG: &str = "huddle_worker_timer_lag_seconds";
pub const ESTIMATES: &str = "huddle_bandwidth_estimate_bits";
pub const CONNECT: &str = "huddle_connect_seconds";

fn with_buckets(b: PrometheusBuilder) -> PrometheusBuilder {
    let lag = [
        0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    ];
    let bits = [
        100e3, 250e3, 500e3, 1e6, 1.5e6, 2.5e6, 5e6, 10e6, 25e6, 50e6,
    ];
    let connect = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0];
    let mut b = b;
    for (name, bounds) in [
        (TIMER_LAG, &lag[..]),
        (ESTIMATES, &bits[..]),
        (CONNECT, &connect[..]),
    ] {
        b = match b.set_buckets_for_metric(Matcher::Full(name.to_owned()), bounds) {
            Ok(b) => b,
            // Only an empty bound list fails: these are not.
            Err(_) => return PrometheusBuilder::new(),
        };
    }
    b
}

/// Why the HTTP API or the room WebSocket refused a request, as `huddle_refused_total`
/// labels it (see [`crate::error::ApiError::reason`]).
pub const REFUSALS: [&str; 12] = [
    "bad_request",
    "unauthorized",
    "invalid_token",
    "forbidden",
    "not_found",
    "precondition_failed",
    "server_full",
    "room_limit",
    "client_limit",
    "shutting_down",
    "unavailable",
    "peer_failed",
];

/// A request refused, for `reason`.
pub fn refused(reason: &'static str) {
    counter!("huddle_refused_total", "reason" => reason).increment(1);
}

/// A connection failed ([`crate::diagnosis`]).
pub fn connection_failed(f: &Failure) {
    counter!("huddle_connection_failures_total", "stage" => f.stage(), "reason" => f.code())
        .increment(1);
}

/// A connection came up: how long ICE and DTLS took.
pub fn connected(d: &Diagnosis) {
    if let Some(t) = d.connect_time() {
        histogram!(CONNECT).record(t.as_secs_f64());
    }
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
        "huddle_estimator_restarts_total",
        "Subscribers' bandwidth estimators restarted to find a link that widened"
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
        "huddle_timer_wakeups_total",
        "Participants woken by a deadline rather than by a packet"
    );
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
    describe_counter!(
        "huddle_refused_total",
        "Requests and joins refused (HTTP error responses, WebSocket offers refused), by reason"
    );
    for reason in REFUSALS {
        counter!("huddle_refused_total", "reason" => reason).absolute(0);
    }
    describe_counter!(
        "huddle_connection_failures_total",
        "Peer connections that failed, by stage (ice, dtls, consent) and most likely reason"
    );
    for code in Failure::CODES {
        let stage = match code {
            "no_candidates" | "no_stun_check" => "ice",
            "consent_lost" | "silent" => "consent",
            _ => "dtls",
        };
        counter!("huddle_connection_failures_total", "stage" => stage, "reason" => code)
            .absolute(0);
    }
    describe_histogram!(
        TIMER_LAG,
        "How late media workers' timer wake-ups are (event-loop lag)"
    );
    describe_histogram!(
        ESTIMATES,
        "Subscribers' egress bandwidth estimates, sampled once a second per subscriber"
    );
    describe_histogram!(CONNECT, "Time for ICE and DTLS to come up, per connection");
    for name in [TIMER_LAG, ESTIMATES, CONNECT] {
        // Registered now, so that each is listed (empty) from the start.
        let _ = histogram!(name);
    }
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
    counter!("huddle_estimator_restarts_total").absolute(s.estimator_restarts);
    counter!("huddle_nacks_received_total").absolute(s.nacks_received);
    counter!("huddle_retransmissions_total").absolute(s.retransmissions);
    counter!("huddle_nacks_sent_total").absolute(s.nacks_sent);
    counter!("huddle_timer_wakeups_total").absolute(s.timer_wakeups);
    counter!("huddle_packets_relayed_total").absolute(s.packets_relayed);
    counter!("huddle_relay_dropped_total").absolute(report.relay_dropped);
    for (label, q) in [("0.5", 0.5), ("0.99", 0.99), ("0.999", 0.999)] {
        gauge!("huddle_residence_seconds", "quantile" => label)
            .set(quantile(&report.residence, q).as_secs_f64());
    }
}
