//! `wss://` and `https://` for tests: a throwaway certificate made with the
//! `openssl` command-line tool, the server side of the TLS handshake, and
//! after it the request's kind told from its first bytes (replayed to the
//! WebSocket side).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::conn::{SimStream, idle_while_silent};
use super::market::{now_ms, splitmix};
use super::route::not_yet;
use super::route::{Kind, SNIFF_LIMIT, Sniffed, classify, ended};
use super::server::Shared;
use super::{CloseCause, SimConfig};

/// Longest a TLS handshake may take (not counting silent periods).
const TLS_HANDSHAKE_LIMIT: Duration = Duration::from_secs(5);

/// For tests: create a throwaway certificate authority and a server
/// certificate for `localhost` (subjectAltName DNS:localhost and
/// IP:127.0.0.1) signed by it, in `dir` (created if needed; files `ca.pem`,
/// `ca.key`, `server.pem`, `server.key`, `server.csr`, `server.ext`), by
/// running the `openssl` command-line tool (OpenSSL 3; P-256 keys, PKCS#8,
/// valid for 30 days).
///
/// Returns the server identity, ready for [`SimConfig::tls`], and the path
/// of the CA certificate (PEM). A client trusts the simulator if it adds
/// that CA as a root (`native_tls::TlsConnectorBuilder::add_root_certificate`)
/// or, for native-tls on Linux (OpenSSL), runs with the environment
/// variable `SSL_CERT_FILE=<that path>`.
pub fn test_certificate(dir: &Path) -> io::Result<(native_tls::Identity, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let openssl = |args: &[&str]| -> io::Result<()> {
        let out = Process::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("running openssl: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "openssl {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    };
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )?;
    let serial = splitmix(now_ms() ^ u64::from(std::process::id())) >> 1;
    let new_key = "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out";
    for cmd in [
        format!("{new_key} ca.key"),
        "req -x509 -new -key ca.key -out ca.pem -days 30 -subj /CN=alltick-sim-test-CA \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
            .to_owned(),
        format!("{new_key} server.key"),
        "req -new -key server.key -out server.csr -subj /CN=localhost".to_owned(),
        format!(
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial {serial} -days 30 \
             -extfile server.ext -out server.pem"
        ),
    ] {
        openssl(&cmd.split_whitespace().collect::<Vec<_>>())?;
    }
    let cert = std::fs::read(dir.join("server.pem"))?;
    let key = std::fs::read(dir.join("server.key"))?;
    let identity = native_tls::Identity::from_pkcs8(&cert, &key).map_err(io::Error::other)?;
    Ok((identity, dir.join("ca.pem")))
}

/// The acceptor for [`SimConfig::tls`], if set.
pub(super) fn acceptor(cfg: &SimConfig) -> io::Result<Option<native_tls::TlsAcceptor>> {
    match &cfg.tls {
        Some(identity) => native_tls::TlsAcceptor::new(identity.clone())
            .map(Some)
            .map_err(io::Error::other),
        None => Ok(None),
    }
}

/// A TLS stream that first gives back the bytes read while its kind was
/// told ([`sniff`]), so the WebSocket handshake reads them again.
pub(super) struct TlsConn {
    tls: native_tls::TlsStream<TcpStream>,
    replay: Vec<u8>,
    at: usize,
}

impl TlsConn {
    /// The TCP stream under the TLS.
    pub(super) fn get_ref(&self) -> &TcpStream {
        self.tls.get_ref()
    }

    /// Send TLS's close_notify.
    pub(super) fn shutdown(&mut self) -> io::Result<()> {
        self.tls.shutdown()
    }
}

impl Read for TlsConn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at < self.replay.len() {
            let n = buf.len().min(self.replay.len() - self.at);
            buf[..n].copy_from_slice(&self.replay[self.at..self.at + n]);
            self.at += n;
            if self.at == self.replay.len() {
                self.replay = Vec::new();
                self.at = 0;
            }
            return Ok(n);
        }
        self.tls.read(buf)
    }
}

impl Write for TlsConn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tls.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tls.flush()
    }
}

/// With [`SimConfig::tls`]: the TLS handshake, then the request's first
/// bytes read until they show its kind (the end of the stream, an error or
/// [`SNIFF_LIMIT`] without a verdict: the WebSocket side's).
pub(super) fn sniff(shared: &Shared, stream: TcpStream, kill: &AtomicBool) -> Sniffed {
    if let Some(cause) = idle_while_silent(shared, kill) {
        return Sniffed::Ended(cause);
    }
    let Some(acceptor) = &shared.tls else {
        return Sniffed::Ws(SimStream::Plain(stream));
    };
    let mut tls = match accept(shared, acceptor, stream, kill) {
        Ok(tls) => tls,
        Err(cause) => return Sniffed::Ended(cause),
    };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let mut first_bytes: Option<Instant> = None;
    let kind = loop {
        if let Some(kind) = classify(&buf) {
            break kind;
        }
        if let Some(cause) = ended(shared, kill) {
            return Sniffed::Ended(cause);
        }
        if first_bytes.is_some_and(|t| t.elapsed() >= SNIFF_LIMIT) {
            break Kind::Ws;
        }
        match tls.read(&mut chunk) {
            Ok(0) => break Kind::Ws,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                first_bytes.get_or_insert_with(Instant::now);
            }
            Err(e) if not_yet(&e) => {}
            Err(_) => break Kind::Ws,
        }
    };
    let (replay, head) = match kind {
        Kind::Http => (Vec::new(), buf),
        Kind::Ws => (buf, Vec::new()),
    };
    let conn = SimStream::Tls(Box::new(TlsConn { tls, replay, at: 0 }));
    match kind {
        Kind::Http => Sniffed::Http(conn, head),
        Kind::Ws => Sniffed::Ws(conn),
    }
}

/// Run the server side of a TLS handshake on `stream` (whose read timeout
/// is [`HANDSHAKE_POLL`](super::HANDSHAKE_POLL)), bounded by [`TLS_HANDSHAKE_LIMIT`] of non-silent
/// time.
fn accept(
    shared: &Shared,
    acceptor: &native_tls::TlsAcceptor,
    stream: TcpStream,
    kill: &AtomicBool,
) -> Result<native_tls::TlsStream<TcpStream>, CloseCause> {
    let mut deadline = Instant::now() + TLS_HANDSHAKE_LIMIT;
    let mut attempt = acceptor.accept(stream);
    loop {
        match attempt {
            Ok(tls) => return Ok(tls),
            Err(native_tls::HandshakeError::WouldBlock(mid)) => {
                let idle_from = Instant::now();
                if let Some(cause) = idle_while_silent(shared, kill) {
                    return Err(cause);
                }
                deadline += idle_from.elapsed();
                if Instant::now() >= deadline {
                    return Err(CloseCause::HandshakeFailed(
                        "TLS handshake timed out".to_owned(),
                    ));
                }
                attempt = mid.handshake();
            }
            Err(native_tls::HandshakeError::Failure(e)) => {
                if shared.stopping() {
                    return Err(CloseCause::Shutdown);
                }
                if kill.load(Ordering::SeqCst) {
                    return Err(CloseCause::Dropped);
                }
                return Err(CloseCause::HandshakeFailed(format!("TLS: {e}")));
            }
        }
    }
}
