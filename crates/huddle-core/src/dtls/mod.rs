//! DTLS for every peer: OpenSSL for the handshake, aws-lc-rs for everything else.
//!
//! str0m's aws-lc-rs backend does DTLS with dimpl, which asks clients for ECDSA certificates
//! only; GStreamer (and other OpenSSL- or NSS-based stacks) present RSA certificates and fail
//! the handshake. huddle therefore plugs its own [`DtlsProvider`] into str0m: OpenSSL's DTLS
//! 1.2, which accepts RSA and ECDSA client certificates and prefers AES-128-GCM for SRTP. SRTP
//! itself, STUN's HMAC and the fingerprints stay on str0m's aws-lc-rs provider: the per-packet
//! path does not change.
//!
//! The server's certificate is ECDSA P-256, made once per process, so that a join costs no
//! key generation.

mod instance;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use str0m::crypto::dtls::{DtlsCert, DtlsInstance, DtlsProvider, DtlsVersion};
use str0m::crypto::{CryptoError, CryptoProvider};

/// Creates OpenSSL DTLS instances for str0m.
#[derive(Debug)]
struct OpensslDtls;

static OPENSSL_DTLS: OpensslDtls = OpensslDtls;

impl DtlsProvider for OpensslDtls {
    /// An ECDSA P-256 self-signed certificate, made by the aws-lc-rs provider.
    fn generate_certificate(&self) -> Option<DtlsCert> {
        str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        // OpenSSL 3.0 has no DTLS 1.3; every WebRTC stack speaks 1.2.
        if version == DtlsVersion::Dtls13 {
            return Err(CryptoError::Other(
                "DTLS 1.3 is not available with OpenSSL".into(),
            ));
        }
        let instance = instance::OpensslInstance::new(cert, now, mtu)?;
        Ok(Box::new(instance))
    }
}

/// The server's DTLS certificate, made once per process (key generation is the slow part of
/// a join otherwise); every peer connection presents it.
pub(crate) fn certificate() -> Option<DtlsCert> {
    static CERT: OnceLock<Option<DtlsCert>> = OnceLock::new();
    CERT.get_or_init(|| OPENSSL_DTLS.generate_certificate())
        .clone()
}

/// str0m's aws-lc-rs provider with huddle's DTLS: one instance for the process.
pub(crate) fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            Arc::new(CryptoProvider {
                dtls_provider: &OPENSSL_DTLS,
                ..str0m::crypto::from_feature_flags()
            })
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509Builder, X509NameBuilder};
    use str0m::crypto::dtls::{DtlsCert, DtlsInstance, DtlsOutput, DtlsVersion, SrtpProfile};

    use super::OPENSSL_DTLS;
    use str0m::crypto::dtls::DtlsProvider;

    /// An RSA-2048 self-signed certificate, as GStreamer's webrtcbin presents.
    fn rsa_certificate() -> DtlsCert {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "webrtcbin").unwrap();
        let name = name.build();
        let mut x509 = X509Builder::new().unwrap();
        x509.set_version(2).unwrap();
        x509.set_subject_name(&name).unwrap();
        x509.set_issuer_name(&name).unwrap();
        x509.set_pubkey(&key).unwrap();
        x509.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        x509.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        x509.sign(&key, MessageDigest::sha256()).unwrap();
        DtlsCert {
            certificate: x509.build().to_der().unwrap(),
            private_key: key.private_key_to_der().unwrap(),
        }
    }

    #[derive(Default)]
    struct Seen {
        connected: bool,
        peer_cert: Option<Vec<u8>>,
        keys: Option<(Vec<u8>, SrtpProfile)>,
        data: Vec<Vec<u8>>,
        closed: bool,
    }

    /// Polls `from` dry, handing its datagrams to `to`.
    fn pump(from: &mut dyn DtlsInstance, to: &mut dyn DtlsInstance, seen: &mut Seen) {
        let mut buf = vec![0u8; 2048];
        loop {
            match from.poll_output(&mut buf) {
                DtlsOutput::Packet(p) => to.handle_packet(p).unwrap(),
                DtlsOutput::Connected => seen.connected = true,
                DtlsOutput::PeerCert(c) => seen.peer_cert = Some(c.to_vec()),
                DtlsOutput::KeyingMaterial(k, p) => seen.keys = Some((k.to_vec(), p)),
                DtlsOutput::ApplicationData(d) => seen.data.push(d.to_vec()),
                DtlsOutput::CloseNotify => seen.closed = true,
                DtlsOutput::Timeout(_) => return,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn an_rsa_client_completes_the_handshake_with_the_ecdsa_server() {
        let now = Instant::now();
        let server_cert = super::certificate().unwrap();
        let client_cert = rsa_certificate();
        let mut server = OPENSSL_DTLS
            .new_dtls(&server_cert, now, DtlsVersion::Dtls12, Some(1150))
            .unwrap();
        let mut client = OPENSSL_DTLS
            .new_dtls(&client_cert, now, DtlsVersion::Dtls12, Some(1150))
            .unwrap();
        server.set_active(false);
        client.set_active(true);
        let (mut at_server, mut at_client) = (Seen::default(), Seen::default());
        for _ in 0..10 {
            pump(client.as_mut(), server.as_mut(), &mut at_client);
            pump(server.as_mut(), client.as_mut(), &mut at_server);
        }
        assert!(at_server.connected && at_client.connected);
        assert_eq!(
            at_server.peer_cert.as_deref(),
            Some(&client_cert.certificate[..])
        );
        assert_eq!(
            at_client.peer_cert.as_deref(),
            Some(&server_cert.certificate[..])
        );
        let (server_keys, profile) = at_server.keys.take().unwrap();
        assert_eq!(
            profile,
            SrtpProfile::AEAD_AES_128_GCM,
            "AES-128-GCM preferred"
        );
        assert_eq!(Some((server_keys, profile)), at_client.keys);

        // SCTP rides on application data both ways, then a polite close.
        assert_eq!(client.send_application_data(b"sctp init").unwrap(), 9);
        assert_eq!(server.send_application_data(b"sctp ack").unwrap(), 8);
        for _ in 0..2 {
            pump(client.as_mut(), server.as_mut(), &mut at_client);
            pump(server.as_mut(), client.as_mut(), &mut at_server);
        }
        assert_eq!(at_server.data, vec![b"sctp init".to_vec()]);
        assert_eq!(at_client.data, vec![b"sctp ack".to_vec()]);
        client.close().unwrap();
        pump(client.as_mut(), server.as_mut(), &mut at_client);
        pump(server.as_mut(), client.as_mut(), &mut at_server);
        assert!(at_server.closed && server.is_closing());
    }

    #[test]
    fn a_lost_flight_is_sent_again() {
        let now = Instant::now();
        let cert = super::certificate().unwrap();
        let mut client = OPENSSL_DTLS
            .new_dtls(&cert, now, DtlsVersion::Dtls12, None)
            .unwrap();
        client.set_active(true);
        let mut buf = vec![0u8; 2048];
        let first = match client.poll_output(&mut buf) {
            DtlsOutput::Packet(p) => p.to_vec(),
            other => panic!("expected a ClientHello, got {other:?}"),
        };
        // OpenSSL's retransmission timer runs on its own clock (one second at first).
        std::thread::sleep(Duration::from_millis(1100));
        client
            .handle_timeout(now + Duration::from_millis(1100))
            .unwrap();
        match client.poll_output(&mut buf) {
            DtlsOutput::Packet(p) => assert_eq!(p.len(), first.len(), "the ClientHello again"),
            other => panic!("expected a retransmission, got {other:?}"),
        }
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let now = Instant::now();
        let cert = super::certificate().unwrap();
        let mut server = OPENSSL_DTLS
            .new_dtls(&cert, now, DtlsVersion::Dtls12, None)
            .unwrap();
        server.set_active(false);
        for len in [0usize, 1, 13, 25, 200, 1500] {
            let junk: Vec<u8> = (0..len).map(|i| (i * 31 + 22) as u8).collect();
            let _ = server.handle_packet(&junk);
        }
        let mut buf = vec![0u8; 16];
        // Whatever it wants to say fits in a retry with a bigger buffer.
        loop {
            match server.poll_output(&mut buf) {
                DtlsOutput::BufferTooSmall { needed } => buf.resize(needed, 0),
                DtlsOutput::Timeout(_) => break,
                _ => {}
            }
        }
    }
}
