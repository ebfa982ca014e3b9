//! The little SDP handling huddle does itself: parsing offers into str0m, the RFC 9725
//! details of answers, and `application/trickle-ice-sdpfrag` bodies (RFC 8840).

use str0m::Candidate;
use str0m::change::SdpOffer;

use crate::CoreError;
use crate::contain::contained;

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
    check_counts(sdp)?;
    contained("parsing an offer", || SdpOffer::from_sdp_string(sdp))?
        .map_err(|e| CoreError::MalformedSdp(e.to_string()))
}

/// Most media sections and candidates an offer or fragment may carry: real ones have a
/// handful; more is an attempt to make the server work.
pub(crate) const MAX_SECTIONS: usize = 16;
pub(crate) const MAX_CANDIDATES: usize = 64;

fn check_counts(sdp: &str) -> Result<(), CoreError> {
    let sections = sdp.lines().filter(|l| l.starts_with("m=")).count();
    if sections > MAX_SECTIONS {
        return Err(CoreError::MalformedSdp(format!(
            "{sections} media sections; at most {MAX_SECTIONS}"
        )));
    }
    let candidates = sdp
        .lines()
        .filter(|l| l.trim_start().starts_with("a=candidate:"))
        .count();
    if candidates > MAX_CANDIDATES {
        return Err(CoreError::MalformedSdp(format!(
            "{candidates} candidates; at most {MAX_CANDIDATES}"
        )));
    }
    Ok(())
}

/// The `a=mid` values of an SDP, in order.
pub(crate) fn mids(sdp: &str) -> impl Iterator<Item = &str> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a=mid:"))
        .map(str::trim)
}

/// The offer negotiates transport-wide congestion control (the extension and its feedback).
pub(crate) fn offers_twcc(sdp: &str) -> bool {
    let lines = || sdp.lines().map(str::trim);
    lines().any(|l| l.starts_with("a=extmap:") && l.contains("transport-wide-cc"))
        && lines().any(|l| l.starts_with("a=rtcp-fb:") && l.ends_with(" transport-cc"))
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

/// How [`finish_local`] treats an SDP.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Local<'a> {
    /// An answer to `offer`; the sections the server sends on get `stream` as their stream id.
    Answer { offer: &'a str, stream: &'a str },
    /// A server offer: its sending sections already carry the ids huddle gave them.
    Offer,
}

/// What huddle changes in the SDP str0m writes (answers and server offers), so that every
/// independent stack accepts it:
///
/// - str0m puts the server's ICE candidates in the first m-section only. Stacks that read
///   them from another bundled section (aiortc with max-bundle takes the last one) would have
///   none, so every m-section in use gets them, and `a=end-of-candidates` since huddle knows
///   all its candidates up front (RFC 8840 §4.2), as Janus, pion and mediasoup do.
/// - str0m's answers echo the offerer's `a=msid` (its own stream and track ids) and write one
///   for sections the server only receives on. A section the server sends on names the
///   server's stream instead; one it does not send on carries no msid (RFC 8830 §2, JSEP).
/// - RFC 9725 requires rtcp-mux; an offer with `a=rtcp-mux-only` (RFC 8858) gets it echoed
///   so that strict clients see their requirement met.
pub(crate) fn finish_local(sdp: String, how: Local<'_>) -> String {
    let (echo_mux_only, stream) = match how {
        Local::Answer { offer, stream } => (
            offer.lines().any(|l| l.trim() == "a=rtcp-mux-only"),
            Some(stream),
        ),
        Local::Offer => (false, None),
    };
    let candidates: Vec<&str> = sdp
        .lines()
        .map(str::trim_end)
        .filter(|l| l.starts_with("a=candidate:"))
        .collect();
    let mut out = String::with_capacity(sdp.len() + 1024);
    let mut sections = sdp.split_inclusive('\n').peekable();
    // The session part: everything before the first m= line.
    while let Some(line) = sections.next_if(|l| !l.starts_with("m=")) {
        match stream {
            Some(stream) if line.starts_with("a=msid-semantic") => {
                out.push_str(&format!("a=msid-semantic: WMS {stream}\r\n"));
            }
            _ => out.push_str(line),
        }
    }
    while let Some(m_line) = sections.next() {
        let in_use = m_line.split_whitespace().nth(1) != Some("0");
        let mut body = Vec::new();
        while let Some(line) = sections.next_if(|l| !l.starts_with("m=")) {
            body.push(line);
        }
        let attr = |name: &str| body.iter().find_map(|l| l.trim_end().strip_prefix(name));
        let mid = attr("a=mid:").unwrap_or("0");
        let sending = body
            .iter()
            .any(|l| matches!(l.trim_end(), "a=sendonly" | "a=sendrecv"));
        out.push_str(m_line);
        let has_candidates = body.iter().any(|l| l.starts_with("a=candidate:"));
        let has_end = body.iter().any(|l| l.trim_end() == "a=end-of-candidates");
        for line in &body {
            match msid_of(line) {
                Some(_) if !sending => continue,
                Some(prefix) => match stream {
                    Some(stream) => out.push_str(&format!("{prefix}{stream} {stream}-{mid}\r\n")),
                    None => out.push_str(line),
                },
                None => out.push_str(line),
            }
            if echo_mux_only && line.trim_end() == "a=rtcp-mux" {
                out.push_str("a=rtcp-mux-only\r\n");
            }
        }
        if in_use && !has_candidates {
            for c in &candidates {
                out.push_str(c);
                out.push_str("\r\n");
            }
        }
        if in_use && !has_end && !candidates.is_empty() {
            out.push_str("a=end-of-candidates\r\n");
        }
    }
    out
}

/// For an `a=msid:` or `a=ssrc:N msid:` line, everything before its value.
fn msid_of(line: &str) -> Option<&str> {
    if line.starts_with("a=msid:") {
        return line.get(.."a=msid:".len());
    }
    let rest = line.strip_prefix("a=ssrc:")?;
    let at = rest.find(' ')?;
    rest.get(at + 1..)?
        .starts_with("msid:")
        .then(|| line.get(.."a=ssrc:".len() + at + 1 + "msid:".len()))
        .flatten()
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
    check_counts(body)?;
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
    contained("parsing a candidate", || Candidate::from_sdp_string(line))?
        .map(Some)
        .map_err(|e| CoreError::MalformedCandidate(format!("{line}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtcp_mux_only_is_echoed() {
        let answer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtcp-mux\r\n".to_string();
        let offer = "v=0\r\na=rtcp-mux\r\na=rtcp-mux-only\r\n";
        let answering = |offer| Local::Answer { offer, stream: "s" };
        let patched = finish_local(answer.clone(), answering(offer));
        assert!(patched.contains("a=rtcp-mux\r\na=rtcp-mux-only\r\n"));
        let plain = "v=0\r\na=rtcp-mux\r\n";
        assert_eq!(finish_local(answer.clone(), answering(plain)), answer);
    }

    #[test]
    fn candidates_in_every_section_in_use() {
        let sdp = "v=0\r\ns=-\r\na=group:BUNDLE 0 1 2\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
                   a=candidate:1 1 udp 2130706175 127.0.0.1 5000 typ host\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n\
                   m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\n"
            .to_string();
        let out = finish_local(sdp, Local::Offer);
        let sections: Vec<&str> = out.split("m=").skip(1).collect();
        assert_eq!(sections.len(), 3);
        for s in &sections[..2] {
            assert_eq!(s.matches("a=candidate:1 1 udp").count(), 1, "{s}");
            assert_eq!(s.matches("a=end-of-candidates\r\n").count(), 1, "{s}");
        }
        assert!(
            !sections[2].contains("a=candidate"),
            "a rejected section gets none"
        );
        assert!(out.starts_with("v=0\r\ns=-\r\na=group:BUNDLE 0 1 2\r\nm=audio"));
    }

    #[test]
    fn answers_name_the_servers_streams_and_only_where_it_sends() {
        let sdp = "v=0\r\na=msid-semantic: WMS theirs\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=sendonly\r\n\
                   a=msid:theirs t1\r\na=ssrc:11 cname:x\r\na=ssrc:11 msid:theirs t1\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=recvonly\r\na=msid:theirs t2\r\n"
            .to_string();
        let out = finish_local(
            sdp.clone(),
            Local::Answer {
                offer: "v=0\r\n",
                stream: "p7",
            },
        );
        assert!(out.contains("a=msid-semantic: WMS p7\r\n"), "{out}");
        assert!(out.contains("a=msid:p7 p7-0\r\n"), "{out}");
        assert!(out.contains("a=ssrc:11 msid:p7 p7-0\r\n"), "{out}");
        assert!(out.contains("a=ssrc:11 cname:x\r\n"), "{out}");
        assert!(!out.contains("theirs"), "{out}");
        // A server offer keeps the ids huddle chose, and drops them where it only receives.
        let offer = finish_local(sdp, Local::Offer);
        assert!(offer.contains("a=msid:theirs t1\r\n"), "{offer}");
        assert!(!offer.contains("t2"), "{offer}");
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
    fn offers_with_too_many_sections_or_candidates_are_refused() {
        let sections = format!(
            "v=0\r\n{}",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n".repeat(17)
        );
        assert!(
            matches!(parse_offer(&sections), Err(CoreError::MalformedSdp(r)) if r.contains("17 media sections"))
        );
        let candidates = "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n".repeat(65);
        assert!(parse_fragment(&candidates).is_err());
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
