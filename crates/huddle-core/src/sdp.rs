//! The little SDP handling huddle does itself: parsing offers into str0m, the RFC 9725
//! details of answers, and `application/trickle-ice-sdpfrag` bodies (RFC 8840).

use str0m::Candidate;
use str0m::change::SdpOffer;

use crate::CoreError;

/// Largest SDP accepted; real offers are a few kilobytes.
pub(crate) const MAX_SDP_LEN: usize = 64 * 1024;

pub(crate) fn parse_offer(sdp: &str) -> Result<SdpOffer, CoreError> {
    if sdp.len() > MAX_SDP_LEN {
        return Err(CoreError::MalformedSdp(format!(
            "longer than {MAX_SDP_LEN} bytes"
        )));
    }
    if !sdp.trim_start().starts_with("v=0") {
        return Err(CoreError::MalformedSdp("does not start with v=0".into()));
    }
    SdpOffer::from_sdp_string(sdp).map_err(|e| CoreError::MalformedSdp(e.to_string()))
}

/// The `a=mid` values of an SDP, in order.
pub(crate) fn mids(sdp: &str) -> impl Iterator<Item = &str> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a=mid:"))
        .map(str::trim)
}

/// The first `a=ice-ufrag` of an SDP or fragment.
pub(crate) fn ice_ufrag(sdp: &str) -> Option<&str> {
    attribute(sdp, "ice-ufrag")
}

fn attribute<'a>(sdp: &'a str, name: &str) -> Option<&'a str> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a="))
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
        .map(str::trim)
}

/// RFC 9725 requires rtcp-mux; an offer with `a=rtcp-mux-only` (RFC 8858) gets it echoed so
/// that strict clients see their requirement met.
pub(crate) fn finish_answer(answer: String, offer: &str) -> String {
    if !offer.lines().any(|l| l.trim() == "a=rtcp-mux-only") {
        return answer;
    }
    let mut out = String::with_capacity(answer.len() + 64);
    for line in answer.split_inclusive('\n') {
        out.push_str(line);
        if line.trim_end() == "a=rtcp-mux" {
            out.push_str("a=rtcp-mux-only\r\n");
        }
    }
    out
}

/// A parsed `application/trickle-ice-sdpfrag` body.
#[derive(Debug, Default)]
pub(crate) struct Fragment {
    pub ufrag: Option<String>,
    pub pwd: Option<String>,
    pub mid: Option<String>,
    pub candidates: Vec<Candidate>,
}

pub(crate) fn parse_fragment(body: &str) -> Result<Fragment, CoreError> {
    if body.len() > MAX_SDP_LEN {
        return Err(CoreError::MalformedSdp(format!(
            "longer than {MAX_SDP_LEN} bytes"
        )));
    }
    let mut frag = Fragment {
        ufrag: attribute(body, "ice-ufrag").map(str::to_owned),
        pwd: attribute(body, "ice-pwd").map(str::to_owned),
        mid: attribute(body, "mid").map(str::to_owned),
        candidates: Vec::new(),
    };
    for line in body.lines().filter_map(|l| l.trim().strip_prefix("a=")) {
        if line.starts_with("candidate:")
            && let Some(c) = parse_candidate(line)?
        {
            frag.candidates.push(c);
        }
    }
    Ok(frag)
}

/// Parses one `candidate:…` attribute (with or without `a=`). Browsers hide host addresses
/// behind mDNS names (`….local`) that a server cannot resolve: those are skipped (`None`);
/// the peer-reflexive address from its STUN requests takes their place.
pub(crate) fn parse_candidate(line: &str) -> Result<Option<Candidate>, CoreError> {
    let line = line.trim().trim_start_matches("a=");
    // candidate:<foundation> <component> <transport> <priority> <address> <port> typ …
    if line
        .split_whitespace()
        .nth(4)
        .is_some_and(|addr| addr.ends_with(".local"))
    {
        return Ok(None);
    }
    Candidate::from_sdp_string(line)
        .map(Some)
        .map_err(|e| CoreError::MalformedCandidate(format!("{line}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtcp_mux_only_is_echoed() {
        let answer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtcp-mux\r\n".to_string();
        let patched = finish_answer(answer.clone(), "v=0\r\na=rtcp-mux\r\na=rtcp-mux-only\r\n");
        assert!(patched.contains("a=rtcp-mux\r\na=rtcp-mux-only\r\n"));
        assert_eq!(
            finish_answer(answer.clone(), "v=0\r\na=rtcp-mux\r\n"),
            answer
        );
    }

    #[test]
    fn fragment_with_candidates_and_restart() {
        let body = "a=ice-ufrag:abcd\r\na=ice-pwd:secretsecretsecretsecret\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n\
                    a=candidate:1 1 udp 2113929471 127.0.0.1 50000 typ host\r\na=end-of-candidates\r\n";
        let f = parse_fragment(body).unwrap();
        assert_eq!(f.ufrag.as_deref(), Some("abcd"));
        assert_eq!(f.mid.as_deref(), Some("0"));
        assert_eq!(f.candidates.len(), 1);
        assert!(parse_fragment("a=candidate:garbage\r\n").is_err());
        let mdns = "a=candidate:1 1 udp 2113929471 9b36eaac-bb2e-4a43-8a1e-a3b3c0b1d0e3.local 50000 typ host\r\n";
        assert_eq!(parse_fragment(mdns).unwrap().candidates.len(), 0);
    }

    #[test]
    fn garbage_offers_are_refused() {
        assert!(matches!(
            parse_offer("hello"),
            Err(CoreError::MalformedSdp(_))
        ));
        assert!(matches!(
            parse_offer("v=0\r\nm=banana\r\n"),
            Err(CoreError::MalformedSdp(_))
        ));
    }
}
