//! HTTP_GET and SSL_GET: GET each url and check its status code and, when given, the MD5
//! digest of its body (keepalived's `genhash`). A minimal HTTP/1.x client: one request per
//! connection, `Connection: close` for 1.0C and 1.1, chunked bodies decoded.
//!
//! SSL_GET does not verify the server's certificate, as keepalived does not by default; it
//! sends SNI (the url's Host) only with `enable_sni`.
use std::{
    net::IpAddr,
    sync::{Arc, OnceLock},
};

use md5::{Digest, Md5};
use rustls::{
    ClientConfig, DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsConnector;

use super::{
    connection::{Connection, connect},
    outcome::Outcome,
};
use crate::config::model::HttpProtocol;

/// A response larger than this is cut short (and its digest will not match).
const MAX_RESPONSE_BYTES: usize = 4 << 20;

#[derive(Debug, Clone, PartialEq)]
pub struct HttpProbe {
    pub urls: Vec<UrlProbe>,
    pub protocol: HttpProtocol,
    pub enable_sni: bool,
}

/// One `url { }` block, with its Host resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct UrlProbe {
    pub path: String,
    /// The url's virtualhost, else the checker's (real server's, virtual server's); None:
    /// the address connected to.
    pub host: Option<String>,
    /// Lowercase hex MD5 of the expected body.
    pub digest: Option<String>,
    /// Accepted status codes, inclusive ranges.
    pub status_code: Vec<(u16, u16)>,
}

impl HttpProbe {
    /// Up when every url answers as expected; each exchange must finish within
    /// `connect_timeout`.
    pub async fn run(&self, connection: &Connection, tls: bool) -> Outcome {
        for url in &self.urls {
            let fetched =
                tokio::time::timeout(connection.connect_timeout, self.fetch(url, connection, tls))
                    .await;
            let (status, body) = match fetched {
                Ok(Ok(response)) => response,
                Ok(Err(reason)) => {
                    return Outcome::Down {
                        reason: format!("GET {}: {reason}", url.path),
                    };
                }
                Err(_) => {
                    return Outcome::down(format!(
                        "GET {}: no answer within {:?}",
                        url.path, connection.connect_timeout
                    ));
                }
            };
            if !url
                .status_code
                .iter()
                .any(|(first, last)| (*first..=*last).contains(&status))
            {
                return Outcome::down(format!("GET {}: status {status}", url.path));
            }
            if let Some(expected) = &url.digest {
                let digest = md5_hex(&body);
                if &digest != expected {
                    return Outcome::down(format!(
                        "GET {}: digest {digest}, expected {expected}",
                        url.path
                    ));
                }
            }
        }
        Outcome::Up
    }

    async fn fetch(
        &self,
        url: &UrlProbe,
        connection: &Connection,
        tls: bool,
    ) -> Result<(u16, Vec<u8>), String> {
        let stream = connect(connection).await?;
        let address = connection.connect;
        let host = url.host.clone().unwrap_or_else(|| match address.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        });
        let default_port = if tls { 443 } else { 80 };
        let host_header = if address.port() == default_port {
            host.clone()
        } else {
            format!("{host}:{}", address.port())
        };
        let (version, close) = match self.protocol {
            HttpProtocol::V1_0 => ("1.0", ""),
            HttpProtocol::V1_0C => ("1.0", "Connection: close\r\n"),
            HttpProtocol::V1_1 => ("1.1", "Connection: close\r\n"),
        };
        let request = format!(
            "GET {} HTTP/{version}\r\nUser-Agent: KeepAliveClient\r\nHost: {host_header}\r\n{close}\r\n",
            url.path
        );
        let raw = if tls {
            let server_name = match url
                .host
                .as_deref()
                .filter(|_| self.enable_sni)
                .map(|h| ServerName::try_from(h.to_owned()))
            {
                Some(Ok(name)) => name,
                _ => ServerName::IpAddress(address.ip().into()),
            };
            let stream = TlsConnector::from(tls_config())
                .connect(server_name, stream)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            exchange(stream, &request).await?
        } else {
            exchange(stream, &request).await?
        };
        parse_response(&raw)
    }
}

/// Lowercase hex MD5, as keepalived's `genhash` prints it.
pub fn md5_hex(body: &[u8]) -> String {
    Md5::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The response path of a probe on arbitrary bytes (`fuzzing::http_response`).
#[cfg(any(fuzzing, test))]
pub fn fuzz_response(raw: &[u8]) {
    let _ = is_complete(raw);
    if let Ok((_, body)) = parse_response(raw) {
        let _ = md5_hex(&body);
    }
}

/// Sends the request and reads the response until it is complete or the server closes.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
) -> Result<Vec<u8>, String> {
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send: {e}"))?;
    stream.flush().await.map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    while raw.len() < MAX_RESPONSE_BYTES && !is_complete(&raw) {
        match stream.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            // A TLS server that closes without close_notify: what arrived is the answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
    Ok(raw)
}

struct Head {
    status: u16,
    body_start: usize,
    content_length: Option<usize>,
    chunked: bool,
}

fn parse_head(raw: &[u8]) -> Option<Result<Head, String>> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = match status_line.split_whitespace().collect::<Vec<_>>()[..] {
        [version, code, ..] if version.starts_with("HTTP/") => code.parse::<u16>().ok(),
        _ => None,
    };
    let Some(status) = status else {
        return Some(Err(format!("bad status line {status_line:?}")));
    };
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "content-length" {
            content_length = value.parse().ok();
        } else if name == "transfer-encoding" && value.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        }
    }
    Some(Ok(Head {
        status,
        body_start: end + 4,
        content_length,
        chunked,
    }))
}

fn is_complete(raw: &[u8]) -> bool {
    match parse_head(raw) {
        Some(Ok(head)) if head.chunked => dechunk(&raw[head.body_start..]).is_some(),
        Some(Ok(Head {
            content_length: Some(length),
            body_start,
            ..
        })) => raw.len() - body_start >= length,
        _ => false,
    }
}

fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let head = match parse_head(raw) {
        Some(head) => head?,
        None if raw.is_empty() => return Err("connection closed without an answer".into()),
        None => return Err("incomplete response header".into()),
    };
    let body = &raw[head.body_start..];
    let body = if head.chunked {
        dechunk(body).ok_or("truncated chunked body")?
    } else if let Some(length) = head.content_length {
        body[..length.min(body.len())].to_vec()
    } else {
        body.to_vec()
    };
    Ok((head.status, body))
}

/// The body of a complete `Transfer-Encoding: chunked` message; None while incomplete.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        if raw.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// One client configuration for every SSL_GET: ring, no certificate verification.
fn tls_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate { provider }))
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// Accepts any certificate (keepalived's SSL_GET does not verify), but still checks the
/// handshake signatures so the session keys belong to whoever sent the certificate.
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use rustls::{
        ServerConfig,
        pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer},
    };
    use tokio::{net::TcpListener, sync::mpsc};
    use tokio_rustls::TlsAcceptor;

    use super::*;
    use crate::check::connection::tests::local;

    /// What the test server saw: the request head and the SNI name.
    type Seen = (String, Option<String>);

    /// Serves `response` to every connection (over TLS with `tls`), then closes.
    async fn serve(
        response: &'static [u8],
        tls: Option<TlsAcceptor>,
    ) -> (u16, mpsc::UnboundedReceiver<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (seen, receiver) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (seen, tls) = (seen.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            let stream = acceptor.accept(stream).await.unwrap();
                            let sni = stream.get_ref().1.server_name().map(str::to_owned);
                            answer(stream, response, sni, seen).await;
                        }
                        None => answer(stream, response, None, seen).await,
                    }
                });
            }
        });
        (port, receiver)
    }

    async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
        mut stream: S,
        response: &[u8],
        sni: Option<String>,
        seen: mpsc::UnboundedSender<Seen>,
    ) {
        let mut request = Vec::new();
        let mut chunk = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&chunk[..n]),
            }
        }
        let _ = seen.send((String::from_utf8_lossy(&request).into_owned(), sni));
        let _ = stream.write_all(response).await;
        let _ = stream.shutdown().await;
    }

    const HELLO: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    /// `genhash` of "hello".
    const HELLO_MD5: &str = "5d41402abc4b2a76b9719d911017c592";

    fn get(path: &str, digest: Option<&str>) -> HttpProbe {
        let url = UrlProbe {
            path: path.into(),
            host: None,
            digest: digest.map(str::to_owned),
            status_code: vec![(200, 299)],
        };
        HttpProbe {
            urls: vec![url],
            protocol: HttpProtocol::V1_0,
            enable_sni: false,
        }
    }

    #[test]
    fn digest_is_genhash_lowercase_hex_md5() {
        assert_eq!(md5_hex(b"hello"), HELLO_MD5);
    }

    #[tokio::test]
    async fn status_200_with_the_expected_digest_is_up() {
        let (port, mut seen) = serve(HELLO, None).await;
        assert_eq!(
            get("/health", Some(HELLO_MD5))
                .run(&local(port), false)
                .await,
            Outcome::Up
        );
        let (request, _) = seen.recv().await.unwrap();
        assert!(request.starts_with("GET /health HTTP/1.0\r\n"), "{request}");
        assert!(
            request.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
            "without a virtualhost, Host is the address: {request}"
        );
    }

    #[tokio::test]
    async fn a_digest_mismatch_is_down() {
        let (port, _seen) = serve(HELLO, None).await;
        let outcome = get("/", Some("00000000000000000000000000000000"))
            .run(&local(port), false)
            .await;
        assert!(
            matches!(&outcome, Outcome::Down { reason } if reason.contains(HELLO_MD5)),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn status_500_is_down_unless_listed_in_status_code() {
        let (port, _seen) = serve(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
            None,
        )
        .await;
        let outcome = get("/", None).run(&local(port), false).await;
        assert!(
            matches!(&outcome, Outcome::Down { reason } if reason.contains("status 500")),
            "{outcome:?}"
        );
        let mut accepting_500 = get("/", None);
        accepting_500.urls[0].status_code = vec![(200, 200), (500, 503)];
        assert_eq!(accepting_500.run(&local(port), false).await, Outcome::Up);
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_down_within_connect_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let holder = tokio::spawn(async move {
            let (_stream, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let connection = Connection {
            connect_timeout: Duration::from_millis(300),
            ..local(port)
        };
        let started = Instant::now();
        let outcome = get("/", None).run(&connection, false).await;
        assert!(
            matches!(&outcome, Outcome::Down { reason } if reason.contains("no answer")),
            "{outcome:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        holder.abort();
    }

    #[tokio::test]
    async fn http_1_1_sends_host_and_decodes_a_chunked_body() {
        let (port, mut seen) = serve(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n", None).await;
        let mut probe = get("/", Some(HELLO_MD5));
        probe.protocol = HttpProtocol::V1_1;
        probe.urls[0].host = Some("www.example.com".into());
        assert_eq!(probe.run(&local(port), false).await, Outcome::Up);
        let (request, _) = seen.recv().await.unwrap();
        assert!(request.starts_with("GET / HTTP/1.1\r\n"), "{request}");
        assert!(
            request.contains(&format!("Host: www.example.com:{port}\r\n")),
            "{request}"
        );
        assert!(request.contains("Connection: close\r\n"), "{request}");
    }

    fn self_signed_acceptor() -> TlsAcceptor {
        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert.der().clone()], key)
                .unwrap();
        TlsAcceptor::from(Arc::new(config))
    }

    #[tokio::test]
    async fn ssl_get_is_up_despite_an_untrusted_certificate() {
        let (port, mut seen) = serve(HELLO, Some(self_signed_acceptor())).await;
        assert_eq!(
            get("/", Some(HELLO_MD5)).run(&local(port), true).await,
            Outcome::Up
        );
        let (_, sni) = seen.recv().await.unwrap();
        assert_eq!(sni, None, "no SNI without enable_sni");
    }

    #[tokio::test]
    async fn ssl_get_sends_the_virtualhost_as_sni_with_enable_sni() {
        let (port, mut seen) = serve(HELLO, Some(self_signed_acceptor())).await;
        let mut probe = get("/", Some(HELLO_MD5));
        probe.enable_sni = true;
        probe.urls[0].host = Some("localhost".into());
        assert_eq!(probe.run(&local(port), true).await, Outcome::Up);
        let (_, sni) = seen.recv().await.unwrap();
        assert_eq!(sni.as_deref(), Some("localhost"));
    }
}
