//! A minimal XMPP client (RFC 6120/6121 subset): TCP, optional STARTTLS ([`Tls`]), SASL
//! PLAIN, resource binding, then stanzas in and raw stanzas out (DESIGN.md, "The XMPP bot").
//! The bot and the tests' users both use it.

use crate::xml::{escape, next_item, Element, Item};
use base64::Engine as _;
use quick_xml::Reader;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

/// Whether the connection is encrypted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tls {
    /// Plain TCP: a server on loopback or a trusted link (it must allow PLAIN without TLS).
    #[default]
    Off,
    /// STARTTLS, required: the server's certificate must chain to the Mozilla roots or to a
    /// certificate in `ca_file` (PEM; e.g. a loopback server's self-signed certificate), for
    /// the JID's domain.
    StartTls {
        /// Extra trusted certificates (PEM).
        ca_file: Option<PathBuf>,
    },
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
type BoxIo = Box<dyn Io>;

/// Why a connection or login failed, or the stream broke.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The TCP connection or a read/write failed.
    Io(std::io::Error),
    /// The server sent something this client cannot follow (bad XML, missing feature).
    Protocol(String),
    /// The server refused the login (the SASL failure condition, e.g. `not-authorized`).
    Auth(String),
    /// The JID is not `user@domain` (optionally `/resource`).
    BadJid(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "connection: {e}"),
            ClientError::Protocol(m) => write!(f, "XMPP protocol: {m}"),
            ClientError::Auth(m) => write!(f, "login refused: {m}"),
            ClientError::BadJid(j) => write!(f, "not a JID (user@domain): {j:?}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// Splits `user@domain/resource` into (bare `user@domain`, resource); `None` without `@`.
pub fn split_jid(jid: &str) -> Option<(&str, &str)> {
    let (bare, resource) = jid.split_once('/').unwrap_or((jid, ""));
    let (user, domain) = bare.split_once('@')?;
    (!user.is_empty() && !domain.is_empty()).then_some((bare, resource))
}

/// The reading half of a logged-in session: yields stanzas.
pub struct StanzaReader {
    reader: Reader<BufReader<ReadHalf<BoxIo>>>,
    buf: Vec<u8>,
}

impl fmt::Debug for StanzaReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StanzaReader")
    }
}

impl StanzaReader {
    /// The next stanza; `Ok(None)` when the server closed the stream.
    pub async fn next(&mut self) -> Result<Option<Element>, ClientError> {
        loop {
            match next_item(&mut self.reader, &mut self.buf).await.map_err(ClientError::Protocol)? {
                Item::Stanza(e) => return Ok(Some(e)),
                Item::End => return Ok(None),
                Item::StreamStart => {}
            }
        }
    }
}

/// The writing half of a logged-in session: sends raw stanzas.
pub struct StanzaWriter {
    w: WriteHalf<BoxIo>,
}

impl fmt::Debug for StanzaWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StanzaWriter")
    }
}

impl StanzaWriter {
    /// Sends one stanza, already serialised (see [`chat`], [`presence`]).
    pub async fn send(&mut self, stanza: &str) -> Result<(), ClientError> {
        self.w.write_all(stanza.as_bytes()).await?;
        Ok(())
    }

    /// Closes the stream (`</stream:stream>`) and the connection.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.w.write_all(b"</stream:stream>").await?;
        self.w.shutdown().await?;
        Ok(())
    }
}

/// A logged-in session: the full JID the server bound, and the two halves.
#[derive(Debug)]
pub struct Session {
    /// The full JID (`user@domain/resource`) the server bound.
    pub jid: String,
    /// Incoming stanzas.
    pub reader: StanzaReader,
    /// Outgoing stanzas.
    pub writer: StanzaWriter,
}

fn header(domain: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams'>",
        escape(domain)
    )
}

async fn expect_features(r: &mut StanzaReader) -> Result<Element, ClientError> {
    match next_item(&mut r.reader, &mut r.buf).await.map_err(ClientError::Protocol)? {
        Item::StreamStart => {}
        other => {
            return Err(ClientError::Protocol(format!("expected the stream header, got {other:?}")))
        }
    }
    match r.next().await? {
        Some(e) if e.name == "features" => Ok(e),
        Some(e) => {
            Err(ClientError::Protocol(format!("expected stream features, got <{}>", e.name)))
        }
        None => Err(ClientError::Protocol("the server closed the stream".into())),
    }
}

/// Connects to `server` (`host:port`), logs in as `jid` (a resource in it is requested at
/// binding, else `resource`) over plain TCP, and returns the session. Sends no presence.
pub async fn login(
    server: &str,
    jid: &str,
    password: &str,
    resource: &str,
) -> Result<Session, ClientError> {
    login_with(server, jid, password, resource, &Tls::Off).await
}

async fn read_features<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut Reader<R>,
    buf: &mut Vec<u8>,
) -> Result<Element, ClientError> {
    match next_item(reader, buf).await.map_err(ClientError::Protocol)? {
        Item::StreamStart => {}
        other => {
            return Err(ClientError::Protocol(format!("expected the stream header, got {other:?}")))
        }
    }
    match next_item(reader, buf).await.map_err(ClientError::Protocol)? {
        Item::Stanza(e) if e.name == "features" => Ok(e),
        Item::Stanza(e) => {
            Err(ClientError::Protocol(format!("expected stream features, got <{}>", e.name)))
        }
        _ => Err(ClientError::Protocol("the server closed the stream".into())),
    }
}

fn tls_config(
    ca_file: Option<&PathBuf>,
) -> Result<tokio_rustls::rustls::ClientConfig, ClientError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| ClientError::Protocol(format!("{}: {e}", path.display())))?;
        for c in certs {
            let c = c.map_err(|e| ClientError::Protocol(format!("{}: {e}", path.display())))?;
            roots.add(c).map_err(|e| ClientError::Protocol(format!("{}: {e}", path.display())))?;
        }
    }
    // ring, not aws-lc-rs: aws-lc-rs needs cmake and a long C build; ring is deprecated in
    // rustls 0.23.48 only for lacking post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    Ok(tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Protocol(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// [`login`] with a choice of [`Tls`].
pub async fn login_with(
    server: &str,
    jid: &str,
    password: &str,
    resource: &str,
    tls: &Tls,
) -> Result<Session, ClientError> {
    let (bare, res) = split_jid(jid).ok_or_else(|| ClientError::BadJid(jid.to_string()))?;
    let (user, domain) = bare.split_once('@').expect("split_jid checked the @");
    let resource = if res.is_empty() { resource } else { res };
    let mut tcp = TcpStream::connect(server).await?;
    tcp.set_nodelay(true)?;
    tcp.write_all(header(domain).as_bytes()).await?;
    let mut buf = Vec::new();
    // Negotiate on the bare socket (the server says nothing after its features until we
    // speak, so the parser's buffer holds nothing that the TLS layer would need).
    let features = {
        let mut r = Reader::from_reader(BufReader::new(&mut tcp));
        read_features(&mut r, &mut buf).await?
    };
    let (io, features): (BoxIo, Option<Element>) = match tls {
        Tls::Off => (Box::new(tcp), Some(features)),
        Tls::StartTls { ca_file } => {
            if features.child("starttls").is_none() {
                return Err(ClientError::Protocol("the server does not offer STARTTLS".into()));
            }
            tcp.write_all(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").await?;
            {
                let mut r = Reader::from_reader(BufReader::new(&mut tcp));
                match next_item(&mut r, &mut buf).await.map_err(ClientError::Protocol)? {
                    Item::Stanza(e) if e.name == "proceed" => {}
                    other => {
                        return Err(ClientError::Protocol(format!("STARTTLS refused: {other:?}")))
                    }
                }
            }
            let config = tls_config(ca_file.as_ref())?;
            let name = rustls_pki_types::ServerName::try_from(domain.to_string())
                .map_err(|e| ClientError::Protocol(format!("TLS server name {domain:?}: {e}")))?;
            let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|e| ClientError::Protocol(format!("TLS handshake: {e}")))?;
            (Box::new(stream), None)
        }
    };
    let (rh, wh) = tokio::io::split(io);
    let mut writer = StanzaWriter { w: wh };
    let mut reader =
        StanzaReader { reader: Reader::from_reader(BufReader::new(rh)), buf: Vec::new() };
    let features = match features {
        Some(f) => f,
        None => {
            writer.send(&header(domain)).await?;
            expect_features(&mut reader).await?
        }
    };
    let plain = features
        .child("mechanisms")
        .is_some_and(|m| m.children.iter().any(|c| c.name == "mechanism" && c.text == "PLAIN"));
    if !plain {
        let tls = features.child("starttls").is_some();
        return Err(ClientError::Protocol(if tls {
            "the server offers no PLAIN login before STARTTLS: use TLS (--tls, with --tls-ca \
             for a self-signed certificate), or for a loopback server set \
             c2s_require_encryption = false and allow_unencrypted_plain_auth = true"
                .into()
        } else {
            "the server offers no SASL PLAIN mechanism".into()
        }));
    }
    let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
    writer
        .send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
        ))
        .await?;
    match reader.next().await? {
        Some(e) if e.name == "success" => {}
        Some(e) if e.name == "failure" => {
            let why = e.children.first().map_or("failure".to_string(), |c| c.name.clone());
            return Err(ClientError::Auth(why));
        }
        other => return Err(ClientError::Protocol(format!("unexpected SASL reply {other:?}"))),
    }
    // The stream restarts after SASL: a fresh parser on the same buffered reader.
    let inner = reader.reader.into_inner();
    reader = StanzaReader { reader: Reader::from_reader(inner), buf: Vec::new() };
    writer.send(&header(domain)).await?;
    let features = expect_features(&mut reader).await?;
    if features.child("bind").is_none() {
        return Err(ClientError::Protocol("the server offers no resource binding".into()));
    }
    writer
        .send(&format!(
            "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <resource>{}</resource></bind></iq>",
            escape(resource)
        ))
        .await?;
    let bound = loop {
        match reader.next().await? {
            Some(e) if e.name == "iq" && e.attr("id") == Some("bind1") => {
                if e.attr("type") != Some("result") {
                    return Err(ClientError::Protocol("resource binding failed".into()));
                }
                break e
                    .child("bind")
                    .and_then(|b| b.child("jid"))
                    .map(|j| j.text.clone())
                    .unwrap_or_else(|| format!("{bare}/{resource}"));
            }
            Some(_) => {}
            None => return Err(ClientError::Protocol("the server closed the stream".into())),
        }
    };
    let session_required = features.child("session").is_some_and(|s| s.child("optional").is_none());
    if session_required {
        writer
            .send("<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
            .await?;
    }
    Ok(Session { jid: bound, reader, writer })
}

/// A `chat` message to `to` with a plain `body`, plus an XHTML-IM body (XEP-0071) when `xhtml`
/// is given (inner XHTML, already escaped).
pub fn chat(to: &str, body: &str, xhtml: Option<&str>) -> String {
    let mut s = format!("<message to='{}' type='chat'><body>{}</body>", escape(to), escape(body));
    if let Some(html) = xhtml {
        s.push_str("<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'>");
        s.push_str(html);
        s.push_str("</body></html>");
    }
    s.push_str("</message>");
    s
}

/// A presence stanza: `kind` is the type attribute (`None`: available), `show` the `<show/>`
/// value (`away`, `dnd`, `xa`, `chat`), `to` the addressee (`None`: broadcast).
pub fn presence(to: Option<&str>, kind: Option<&str>, show: Option<&str>) -> String {
    let mut s = String::from("<presence");
    if let Some(to) = to {
        s.push_str(&format!(" to='{}'", escape(to)));
    }
    if let Some(k) = kind {
        s.push_str(&format!(" type='{}'", escape(k)));
    }
    match show {
        Some(v) => s.push_str(&format!("><show>{}</show></presence>", escape(v))),
        None => s.push_str("/>"),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jids_split_and_bad_ones_are_refused() {
        assert_eq!(split_jid("a@h/r/x"), Some(("a@h", "r/x")));
        assert_eq!(split_jid("a@h"), Some(("a@h", "")));
        assert_eq!(split_jid("ah"), None);
        assert_eq!(split_jid("@h"), None);
    }

    #[test]
    fn stanzas_escape_their_text() {
        assert_eq!(
            chat("a@h", "x<y", Some("<b>z</b>")),
            "<message to='a@h' type='chat'><body>x&lt;y</body><html xmlns='http://jabber.org/\
             protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><b>z</b></body>\
             </html></message>"
        );
        assert_eq!(presence(None, None, Some("dnd")), "<presence><show>dnd</show></presence>");
        assert_eq!(
            presence(Some("b@h"), Some("subscribe"), None),
            "<presence to='b@h' type='subscribe'/>"
        );
    }
}
