//! One DTLS 1.2 association on OpenSSL, sans-IO: datagrams in and out through memory, timers
//! from the caller's clock.

use std::collections::VecDeque;
use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use dimpl::{CryptoError as DimplCrypto, CryptoOperation, Error as DimplError};
use openssl::pkey::PKey;
use openssl::srtp::SrtpProfileId;
use openssl::ssl::{
    ErrorCode, ShutdownState, Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslStream,
    SslVerifyMode,
};
use openssl::x509::X509;
use str0m::crypto::CryptoError;
use str0m::crypto::dtls::{
    DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, KeyingMaterial, ProtocolVersion, SrtpProfile,
};
use tracing::{debug, info};

/// ECDHE key exchange only; the server's own certificate is ECDSA, the peer's may be RSA or
/// ECDSA (only its signature on CertificateVerify depends on that).
const CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:\
                       ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:\
                       ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305";

/// SRTP profiles by preference (OpenSSL as DTLS server picks the first the client offers):
/// AES-128-GCM costs a fifth of AES-CM + HMAC-SHA1 per packet, and less than AES-256-GCM.
const SRTP_PROFILES: &str = "SRTP_AEAD_AES_128_GCM:SRTP_AEAD_AES_256_GCM:SRTP_AES128_CM_SHA1_80";

/// RFC 5764 §4.2.
const SRTP_EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// How often OpenSSL gets a chance to retransmit a lost flight while handshaking; it keeps its
/// own (doubling) retransmission timer and resends only when that expired.
const HANDSHAKE_TICK: Duration = Duration::from_millis(100);

/// The MTU when str0m gives none (str0m's own default).
const DEFAULT_MTU: u32 = 1150;

/// Datagrams that arrived but OpenSSL has not read: a handshake needs a handful.
const MAX_INCOMING: usize = 64;

/// What the memory BIO holds: whole datagrams, in order, each way.
#[derive(Debug, Default)]
struct Datagrams {
    incoming: VecDeque<Vec<u8>>,
    outgoing: VecDeque<Vec<u8>>,
}

impl io::Read for Datagrams {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(datagram) = self.incoming.pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        // OpenSSL reads DTLS with a buffer larger than any datagram; a shorter one gets what
        // fits, as a datagram socket would.
        let n = datagram.len().min(buf.len());
        if let (Some(to), Some(from)) = (buf.get_mut(..n), datagram.get(..n)) {
            to.copy_from_slice(from);
        }
        Ok(n)
    }
}

impl io::Write for Datagrams {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.push_back(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for str0m to say who starts.
    Idle,
    Handshaking,
    Connected,
    /// The handshake failed; nothing more happens.
    Failed,
}

/// What the instance has to tell str0m besides datagrams, in the order str0m wants it.
#[derive(Debug)]
enum Note {
    Connected,
    PeerCert(Vec<u8>),
    Keying(Vec<u8>, SrtpProfile),
    Data(Vec<u8>),
    CloseNotify,
}

pub(super) struct OpensslInstance {
    stream: SslStream<Datagrams>,
    phase: Phase,
    active: bool,
    /// The latest time str0m gave us.
    now: Instant,
    notes: VecDeque<Note>,
    close_sent: bool,
    close_received: bool,
    /// The outgoing queue was found empty and OpenSSL has not run since: str0m polls after
    /// every forwarded packet, and reaching the queue through the `SslStream` costs two
    /// calls into OpenSSL.
    drained: bool,
}

impl std::fmt::Debug for OpensslInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpensslInstance")
            .field("phase", &self.phase)
            .field("active", &self.active)
            .finish()
    }
}

impl OpensslInstance {
    pub(super) fn new(
        cert: &DtlsCert,
        now: Instant,
        mtu: Option<usize>,
    ) -> Result<Self, CryptoError> {
        let context =
            shared_context(cert).map_err(|e| CryptoError::Other(format!("DTLS context: {e}")))?;
        let mut ssl = Ssl::new(&context).map_err(|e| CryptoError::Other(e.to_string()))?;
        let mtu = mtu
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(DEFAULT_MTU);
        ssl.set_mtu(mtu)
            .map_err(|e| CryptoError::Other(format!("DTLS MTU {mtu}: {e}")))?;
        let stream = SslStream::new(ssl, Datagrams::default())
            .map_err(|e| CryptoError::Other(e.to_string()))?;
        Ok(OpensslInstance {
            stream,
            phase: Phase::Idle,
            active: false,
            now,
            notes: VecDeque::new(),
            close_sent: false,
            close_received: false,
            drained: false,
        })
    }

    /// Runs the handshake as far as the datagrams received allow.
    fn advance_handshake(&mut self) -> Result<(), DtlsImplError> {
        let step = if self.active {
            self.stream.connect()
        } else {
            self.stream.accept()
        };
        match step {
            Ok(()) => self.connected(),
            Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => Ok(()),
            Err(e) => {
                self.phase = Phase::Failed;
                info!("DTLS handshake failed: {e}");
                Err(DimplError::CryptoError(DimplCrypto::OperationFailed(
                    CryptoOperation::VerifySignature,
                )))
            }
        }
    }

    /// The handshake is done: str0m gets the peer's certificate (to check its fingerprint)
    /// and the SRTP keys.
    fn connected(&mut self) -> Result<(), DtlsImplError> {
        self.phase = Phase::Connected;
        let ssl = self.stream.ssl();
        debug!(version = ssl.version_str(), cipher = ?ssl.current_cipher().map(|c| c.name()), "DTLS connected");
        let failed = |what: &str| {
            info!("DTLS connected but {what}");
            DimplError::CryptoError(DimplCrypto::OperationFailed(CryptoOperation::Decrypt))
        };
        let peer = ssl
            .peer_certificate()
            .and_then(|c| c.to_der().ok())
            .ok_or_else(|| failed("the peer sent no usable certificate"))?;
        let profile = match ssl.selected_srtp_profile().map(|p| p.id()) {
            Some(SrtpProfileId::SRTP_AEAD_AES_128_GCM) => SrtpProfile::AEAD_AES_128_GCM,
            Some(SrtpProfileId::SRTP_AEAD_AES_256_GCM) => SrtpProfile::AEAD_AES_256_GCM,
            Some(SrtpProfileId::SRTP_AES128_CM_SHA1_80) => SrtpProfile::AES128_CM_SHA1_80,
            _ => return Err(failed("no SRTP profile was negotiated")),
        };
        let mut keys = vec![0u8; profile.keying_material_len()];
        ssl.export_keying_material(&mut keys, SRTP_EXPORTER_LABEL, None)
            .map_err(|_| failed("SRTP keys could not be exported"))?;
        self.notes.push_back(Note::Connected);
        self.notes.push_back(Note::PeerCert(peer));
        self.notes.push_back(Note::Keying(keys, profile));
        Ok(())
    }

    /// Reads every record that arrived: SCTP packets for str0m, or the peer's close_notify.
    fn read_application_data(&mut self) -> Result<(), DtlsImplError> {
        let mut buf = [0u8; 2048];
        loop {
            match self.stream.ssl_read(&mut buf) {
                Ok(0) => {}
                Ok(n) => {
                    if let Some(data) = buf.get(..n) {
                        self.notes.push_back(Note::Data(data.to_vec()));
                    }
                    continue;
                }
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => {}
                Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => {
                    return Ok(());
                }
                Err(e) => {
                    debug!("DTLS record refused: {e}");
                    return Err(DimplError::CryptoError(DimplCrypto::OperationFailed(
                        CryptoOperation::Decrypt,
                    )));
                }
            }
            // A zero-length read: the peer closed, or there is nothing left to read.
            if self.stream.get_shutdown().contains(ShutdownState::RECEIVED) && !self.close_received
            {
                self.close_received = true;
                self.notes.push_back(Note::CloseNotify);
                if !self.close_sent {
                    // Answer with our own close_notify (RFC 5246 §7.2.1).
                    self.close_sent = true;
                    let _ = self.stream.shutdown();
                }
            }
            return Ok(());
        }
    }
}

/// The context for `cert`, built once while the certificate stays the same (the process has
/// one): a join then costs no certificate parsing or context set-up. Another certificate
/// replaces it.
fn shared_context(cert: &DtlsCert) -> Result<SslContext, openssl::error::ErrorStack> {
    static LAST: Mutex<Option<(Vec<u8>, SslContext)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((der, ctx)) = last.as_ref()
        && *der == cert.certificate
    {
        return Ok(ctx.clone());
    }
    let ctx = context(cert)?;
    *last = Some((cert.certificate.clone(), ctx.clone()));
    Ok(ctx)
}

fn context(cert: &DtlsCert) -> Result<SslContext, openssl::error::ErrorStack> {
    let mut ctx = SslContextBuilder::new(SslMethod::dtls())?;
    ctx.set_cipher_list(CIPHERS)?;
    ctx.set_tlsext_use_srtp(SRTP_PROFILES)?;
    // Any certificate is accepted here: str0m compares its fingerprint with the SDP's. But
    // there must be one, or there is nothing to compare.
    ctx.set_verify_callback(
        SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        |_, _| true,
    );
    let certificate = X509::from_der(&cert.certificate)?;
    let key = PKey::private_key_from_der(&cert.private_key)?;
    ctx.set_certificate(&certificate)?;
    ctx.set_private_key(&key)?;
    // The MTU is str0m's, set per instance; DTLS 1.0 is long obsolete.
    ctx.set_options(SslOptions::NO_QUERY_MTU | SslOptions::NO_DTLSV1 | SslOptions::SINGLE_ECDH_USE);
    Ok(ctx.build())
}

impl DtlsInstance for OpensslInstance {
    fn set_active(&mut self, active: bool) {
        if self.phase != Phase::Idle {
            return;
        }
        self.active = active;
        self.phase = Phase::Handshaking;
        self.drained = false;
        // A client speaks first (ClientHello); a server waits, which costs nothing.
        if let Err(e) = self.advance_handshake() {
            debug!("DTLS start failed: {e}");
        }
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        self.drained = false;
        let incoming = &mut self.stream.get_mut().incoming;
        if incoming.len() >= MAX_INCOMING {
            return Err(DimplError::ReceiveQueueFull);
        }
        incoming.push_back(packet.to_vec());
        match self.phase {
            Phase::Idle | Phase::Failed => Ok(()),
            Phase::Handshaking => {
                self.advance_handshake()?;
                if self.phase == Phase::Connected {
                    // A flight may carry application data right behind the Finished.
                    self.read_application_data()?;
                }
                Ok(())
            }
            Phase::Connected => self.read_application_data(),
        }
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        if !self.drained {
            if let Some(datagram) = self.stream.get_mut().outgoing.pop_front() {
                let n = datagram.len();
                return match buf.get_mut(..n) {
                    Some(out) => {
                        out.copy_from_slice(&datagram);
                        DtlsOutput::Packet(out)
                    }
                    None => {
                        self.stream.get_mut().outgoing.push_front(datagram);
                        DtlsOutput::BufferTooSmall { needed: n }
                    }
                };
            }
            self.drained = true;
        }
        if let Some(note) = self.notes.pop_front() {
            let bytes: &[u8] = match &note {
                Note::Connected => return DtlsOutput::Connected,
                Note::CloseNotify => return DtlsOutput::CloseNotify,
                Note::PeerCert(b) | Note::Keying(b, _) | Note::Data(b) => b,
            };
            let Some(out) = buf.get_mut(..bytes.len()) else {
                let needed = bytes.len();
                self.notes.push_front(note);
                return DtlsOutput::BufferTooSmall { needed };
            };
            out.copy_from_slice(bytes);
            return match note {
                Note::PeerCert(_) => DtlsOutput::PeerCert(out),
                Note::Keying(_, profile) => {
                    DtlsOutput::KeyingMaterial(KeyingMaterial::new(out), profile)
                }
                _ => DtlsOutput::ApplicationData(out),
            };
        }
        let next = match self.phase {
            Phase::Handshaking => HANDSHAKE_TICK,
            // Nothing will happen without a datagram.
            Phase::Idle | Phase::Connected | Phase::Failed => Duration::from_secs(3600),
        };
        DtlsOutput::Timeout(self.now + next)
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.now = self.now.max(now);
        if self.phase == Phase::Handshaking {
            // OpenSSL resends its last flight if its own timer expired.
            self.drained = false;
            self.advance_handshake()?;
        }
        Ok(())
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        if self.phase != Phase::Connected || data.is_empty() || self.close_sent {
            return Ok(0);
        }
        self.drained = false;
        match self.stream.ssl_write(data) {
            Ok(n) => Ok(n),
            Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => Ok(0),
            Err(e) => {
                debug!("DTLS write failed: {e}");
                Err(DimplError::CryptoError(DimplCrypto::OperationFailed(
                    CryptoOperation::Encrypt,
                )))
            }
        }
    }

    fn is_active(&self) -> bool {
        self.active
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        (self.phase == Phase::Connected).then_some(ProtocolVersion::DTLS1_2)
    }

    fn is_closing(&self) -> bool {
        self.close_sent || self.close_received
    }

    fn is_closed(&self) -> bool {
        self.close_sent && self.stream.get_ref().outgoing.is_empty()
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        if self.phase == Phase::Connected && !self.close_sent {
            self.drained = false;
            let _ = self.stream.shutdown();
        }
        self.close_sent = true;
        Ok(())
    }
}
