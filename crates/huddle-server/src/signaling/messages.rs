//! The JSON messages of the room WebSocket (`GET /rooms/{room}/ws`), both directions.
//!
//! Every message is an object with a `"type"` field. The page sends `join` first, then its
//! `offer` (its camera/microphone tracks and a data channel labelled `chat`); from then on only
//! the server offers (`offer` → page answers with `answer`), one negotiation at a time, so there
//! is never glare. Chat goes over the data channel, not over this socket.

use serde::{Deserialize, Serialize};

/// Audio or video, as the page names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Audio,
    Video,
}

/// What the page sends.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ClientMessage {
    /// First message: who is joining.
    Join { name: String },
    /// The page's one offer: its sendonly tracks and the `chat` data channel.
    Offer { sdp: String },
    /// The answer to a server `offer`.
    Answer { sdp: String },
    /// A trickled ICE candidate (`candidate: null` or `""` ends trickling).
    Candidate {
        candidate: Option<String>,
        #[serde(default, rename = "sdpMid")]
        sdp_mid: Option<String>,
    },
    /// The page muted or unmuted its microphone or camera.
    Mute { kind: Kind, muted: bool },
    /// How the page shows a track it receives: the tile's size in pixels, and a simulcast
    /// layer (`rid`) to pin, `null` to let the server choose.
    Preference {
        track: String,
        #[serde(default)]
        width: Option<u32>,
        #[serde(default)]
        height: Option<u32>,
        #[serde(default)]
        pin: Option<String>,
    },
    /// The page wants to send another track (its screen): the next server offer has a section
    /// for it to send on.
    Publish { kind: Kind },
    /// The page stops sending one of its tracks.
    Unpublish { track: String },
    /// The page asks how its connection came up (or why it did not).
    Diagnosis,
    /// The page is leaving (closing the socket does the same).
    Leave,
}

/// A participant as others see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    /// Stable id; also the `msid` stream id of this participant's tracks in server offers.
    pub id: String,
    pub name: String,
    /// `"browser"` or `"whip"`.
    pub source: String,
    pub audio_muted: bool,
    pub video_muted: bool,
}

/// An ICE server for `RTCPeerConnection`'s configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// One video track a page receives, as the server chose it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackQuality {
    pub track: String,
    /// The layer forwarded (`null`: the only one, or none yet).
    pub layer: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub bitrate: Option<u64>,
    pub paused: bool,
    /// `best`, `bandwidth`, `congestion`, `settling`, `tile-size`, `publisher-not-sending`, `paused`, `pinned`,
    /// `waiting`.
    pub reason: String,
    /// The reason in words.
    pub text: String,
}

/// What the server sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMessage {
    /// Reply to `join`: your id, who is already here, ICE servers to use.
    Welcome {
        id: String,
        participants: Vec<ParticipantInfo>,
        #[serde(rename = "iceServers")]
        ice_servers: Vec<IceServer>,
    },
    /// The answer to the page's offer.
    Answer {
        sdp: String,
    },
    /// A server offer (tracks added or removed); answer with `answer`.
    Offer {
        sdp: String,
    },
    ParticipantJoined {
        participant: ParticipantInfo,
    },
    ParticipantLeft {
        id: String,
    },
    /// A track the page will receive; its `msid` stream id is `participant` and its track id
    /// is `track`.
    TrackPublished {
        participant: String,
        track: String,
        kind: Kind,
        /// Only to the publisher itself: the m-section (`mid`) of its own it names, so that
        /// it can `unpublish` it.
        #[serde(skip_serializing_if = "Option::is_none")]
        mid: Option<String>,
    },
    TrackUnpublished {
        participant: String,
        track: String,
    },
    Mute {
        participant: String,
        kind: Kind,
        muted: bool,
    },
    /// The room's active speaker (`null`: nobody now).
    Speaker {
        participant: Option<String>,
    },
    /// The page cannot receive this track (it negotiated none of its codecs).
    TrackUnavailable {
        participant: String,
        track: String,
        reason: String,
    },
    /// What the page receives of each video track and why, when it changes.
    Quality {
        /// The page's bandwidth estimate, bits per second.
        estimate: Option<u64>,
        tracks: Vec<TrackQuality>,
    },
    /// The server is going away (shutting down): the call ends.
    Bye {
        reason: String,
    },
    /// The page's connectivity diagnosis (see `GET /sessions/{id}/diagnosis` for its
    /// fields): the reply to `diagnosis`, and sent unasked when its connection failed.
    Diagnosis {
        diagnosis: serde_json::Value,
    },
    /// Something the page sent was refused; the connection stays open unless said otherwise.
    Error {
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        let m: ClientMessage = serde_json::from_str(r#"{"type":"join","name":"Ada"}"#).unwrap();
        assert_eq!(m, ClientMessage::Join { name: "Ada".into() });
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"candidate","candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0"}"#).unwrap();
        assert!(matches!(
            m,
            ClientMessage::Candidate {
                sdp_mid: Some(_),
                ..
            }
        ));
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"mute","kind":"video","muted":true}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::Mute {
                kind: Kind::Video,
                muted: true
            }
        );
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"dance"}"#).is_err());
        let out =
            serde_json::to_string(&ServerMessage::ParticipantLeft { id: "p3".into() }).unwrap();
        assert_eq!(out, r#"{"type":"participant-left","id":"p3"}"#);
        let out = serde_json::to_string(&ServerMessage::TrackPublished {
            participant: "p3".into(),
            track: "t4".into(),
            kind: Kind::Audio,
            mid: None,
        })
        .unwrap();
        assert_eq!(
            out,
            r#"{"type":"track-published","participant":"p3","track":"t4","kind":"audio"}"#
        );
    }
}
