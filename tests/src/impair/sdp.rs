//! Pointing an answer at a relay: the server's candidates become the relay's address.

use std::net::SocketAddr;

/// Address and port fields of an `a=candidate` line, if it is a UDP one.
fn udp_candidate(line: &str) -> Option<SocketAddr> {
    let fields: Vec<&str> = line.trim_end().split(' ').collect();
    let (transport, ip, port) = (fields.get(2)?, fields.get(4)?, fields.get(5)?);
    if !transport.eq_ignore_ascii_case("udp") {
        return None;
    }
    format!("{ip}:{port}").parse().ok()
}

/// The first UDP candidate's address in `sdp`: where the server receives media.
pub fn server_address(sdp: &str) -> Option<SocketAddr> {
    sdp.lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .find_map(udp_candidate)
}

/// `sdp` with every UDP candidate's address and port replaced by `relay`, and other
/// candidates dropped, so the client has no way to the server but the relay.
pub fn via_relay(sdp: &str, relay: SocketAddr) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        if !line.starts_with("a=candidate:") {
            out.push_str(line);
            continue;
        }
        if udp_candidate(line).is_none() {
            continue;
        }
        let ending = &line[line.trim_end().len()..];
        let mut fields: Vec<String> = line.trim_end().split(' ').map(str::to_owned).collect();
        fields[4] = relay.ip().to_string();
        fields[5] = relay.port().to_string();
        out.push_str(&fields.join(" "));
        out.push_str(ending);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
        a=candidate:1 1 udp 2130706175 127.0.0.1 40000 typ host\r\n\
        a=candidate:2 1 tcp 2130706000 127.0.0.1 40001 typ host tcptype passive\r\n\
        a=end-of-candidates\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
        a=candidate:1 1 udp 2130706175 127.0.0.1 40000 typ host\r\n";

    #[test]
    fn candidates_point_at_the_relay() {
        assert_eq!(
            server_address(ANSWER),
            Some("127.0.0.1:40000".parse().unwrap())
        );
        let out = via_relay(ANSWER, "127.0.0.1:5555".parse().unwrap());
        assert_eq!(
            out.matches("a=candidate:1 1 udp 2130706175 127.0.0.1 5555 typ host\r\n")
                .count(),
            2
        );
        assert!(!out.contains("40000") && !out.contains("tcp"));
        assert!(out.contains("a=end-of-candidates\r\n"));
    }
}
