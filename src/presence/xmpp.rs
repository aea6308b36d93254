//! XMPP backend (RFC 6120/6121): a service account whose roster subscriptions let it see the
//! presence of the people it tracks, kept current from the stream, reconnecting with backoff.
//!
//! A small client over tokio, quick-xml and rustls: STARTTLS (RFC 6120 §5) or direct TLS
//! (XEP-0368) with the server's certificate verified against the JID's domain, SASL PLAIN,
//! resource binding, roster, presence (show, status, priority, XEP-0319 idle), XEP-0199 pings.
//! The password goes in clear only to a server on loopback, or where `allow_plaintext` says so.
//!
//! Why not the `tokio-xmpp` crate: the part of XMPP we need is a few hundred lines (above), it is
//! tested against a real Prosody and hardened where we need it (a cap on stanza size under the
//! parser, write timeouts, pings), and `tokio-xmpp` would bring its own XML DOM, DNS resolver and
//! TLS stack into the build for a login we already have.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::Reader;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::backend::{
    BackendError, BoxFuture, Health, HealthCell, Mode, PresenceBackend, RunContext,
};
use super::config::BackendConfig;
use super::model::{Activity, Availability, ChannelState, Observation};
use super::Clock;
use crate::error::{Error, Result};

const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_ROSTER: &str = "jabber:iq:roster";
const NS_PING: &str = "urn:xmpp:ping";
const NS_IDLE: &str = "urn:xmpp:idle:1";
/// A stanza larger than this is refused (the connection is dropped).
const MAX_STANZA: usize = 256 * 1024;

/// An XML element of the stream: enough of a DOM for stanzas.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Element {
    /// Local name (`presence`, `show`, …).
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn ns(&self) -> Option<&str> {
        self.attr("xmlns")
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn child_ns(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| c.name == name && c.ns() == Some(ns))
    }
}

fn xml_error(e: impl std::fmt::Display) -> BackendError {
    BackendError::Protocol(format!("bad XML: {e}"))
}

fn element_of(
    start: &quick_xml::events::BytesStart<'_>,
) -> std::result::Result<Element, BackendError> {
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(xml_error)?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(xml_error)?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Element {
        name,
        attrs,
        ..Default::default()
    })
}

fn element_size(e: &Element) -> usize {
    e.name.len()
        + e.attrs
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
}

/// Reads at most `budget` bytes, then fails: the parser buffers a text or tag whole before it
/// returns it, so the cap must sit under the parser, not above it.
pub struct Capped<R> {
    inner: R,
    budget: usize,
    exhausted: bool,
}

impl<R> Capped<R> {
    fn new(inner: R) -> Capped<R> {
        Capped {
            inner,
            budget: MAX_STANZA,
            exhausted: false,
        }
    }

    /// A fresh budget for the next stanza.
    fn reset(&mut self, budget: usize) {
        self.budget = budget;
        self.exhausted = false;
    }
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Capped<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.budget == 0 {
            self.exhausted = true;
            return std::task::Poll::Ready(Err(std::io::Error::other("stanza too large")));
        }
        let limit = self.budget.min(buf.remaining());
        let mut limited = tokio::io::ReadBuf::new(buf.initialize_unfilled_to(limit));
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, &mut limited);
        if let std::task::Poll::Ready(Ok(())) = &poll {
            let n = limited.filled().len();
            buf.advance(n);
            self.budget -= n;
        }
        poll
    }
}

/// A connection, plain or TLS.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}
type Conn = Box<dyn Transport>;

type Source = BufReader<Capped<ReadHalf<Conn>>>;

/// `tls` of an XMPP backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XmppTls {
    /// Upgrade with STARTTLS; a server that offers none is used in clear only on loopback or
    /// with `allow_plaintext`.
    #[default]
    Starttls,
    /// TLS from the first byte (XEP-0368).
    Direct,
    /// Never encrypt (loopback, or `allow_plaintext`).
    None,
}

/// How a login reaches its server.
#[derive(Clone)]
pub struct Security {
    pub tls: XmppTls,
    /// Verifies the server; built once from the CA file or the system's trust store.
    pub client: Arc<rustls::ClientConfig>,
    pub allow_plaintext: bool,
}

impl Security {
    /// `ca_file`: PEM CA(s) the server's certificate must chain to (else the system's).
    pub fn new(
        tls: XmppTls,
        ca_file: Option<&std::path::Path>,
        allow_plaintext: bool,
    ) -> std::result::Result<Security, String> {
        let mut client = crate::tls::client_config(ca_file)?;
        if tls == XmppTls::Direct {
            // XEP-0368: direct TLS announces the protocol with ALPN.
            client.alpn_protocols = vec![b"xmpp-client".to_vec()];
        }
        Ok(Security {
            tls,
            client: Arc::new(client),
            allow_plaintext,
        })
    }

    /// The port a server listens on for this mode unless told otherwise.
    pub fn default_port(&self) -> u16 {
        match self.tls {
            XmppTls::Direct => 5223,
            _ => 5222,
        }
    }

    /// A TLS session over `conn`, the certificate checked against `domain` (RFC 6120 §13.7.2).
    async fn wrap(&self, conn: Conn, domain: &str) -> std::result::Result<Conn, BackendError> {
        let name = rustls::pki_types::ServerName::try_from(domain.to_string())
            .map_err(|e| BackendError::Protocol(format!("domain {domain}: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(self.client.clone())
            .connect(name, conn)
            .await
            .map_err(|e| BackendError::Unreachable(format!("TLS with {domain}: {e}")))?;
        Ok(Box::new(tls))
    }
}

/// The reading half of a stream: yields top-level elements.
pub struct StanzaReader {
    reader: Reader<Source>,
    buf: Vec<u8>,
}

fn parser(inner: Source) -> Reader<Source> {
    let mut reader = Reader::from_reader(inner);
    let config = reader.config_mut();
    config.trim_text(true);
    config.check_end_names = false;
    reader
}

impl StanzaReader {
    /// After SASL success the stream starts over: a fresh parser on the same bytes.
    fn restart(self) -> StanzaReader {
        StanzaReader {
            reader: parser(self.reader.into_inner()),
            buf: self.buf,
        }
    }

    /// The next top-level element (stream features, a stanza, …); errors when the stream ends.
    pub async fn next(&mut self) -> std::result::Result<Element, BackendError> {
        // Bytes off the wire for this stanza (plus what the buffer had read ahead)…
        self.reader.get_mut().get_mut().reset(MAX_STANZA);
        // …and the size of what it builds, kept as it grows (not re-walked after every event).
        let mut size = 0usize;
        let mut stack: Vec<Element> = Vec::new();
        loop {
            self.buf.clear();
            let read = self.reader.read_event_into_async(&mut self.buf).await;
            let event = match read {
                Ok(event) => event,
                Err(_) if self.reader.get_ref().get_ref().exhausted => {
                    return Err(BackendError::Protocol("stanza too large".into()))
                }
                Err(quick_xml::Error::Io(io)) => {
                    return Err(BackendError::Unreachable(format!("read: {io}")))
                }
                Err(other) => return Err(xml_error(other)),
            };
            match event {
                Event::Start(start) => {
                    if start.name().as_ref() == b"stream:stream" {
                        stack.clear();
                        size = 0;
                        self.reader.get_mut().get_mut().reset(MAX_STANZA);
                        continue;
                    }
                    let element = element_of(&start)?;
                    size += element_size(&element);
                    stack.push(element);
                    if stack.len() > 64 {
                        return Err(BackendError::Protocol("elements nested too deep".into()));
                    }
                }
                Event::Empty(start) => {
                    let element = element_of(&start)?;
                    size += element_size(&element);
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => return Ok(element),
                    }
                }
                Event::End(end) => {
                    if end.name().as_ref() == b"stream:stream" {
                        return Err(BackendError::Unreachable(
                            "the server closed the stream".into(),
                        ));
                    }
                    let Some(done) = stack.pop() else {
                        return Err(BackendError::Protocol("unbalanced end tag".into()));
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => return Ok(done),
                    }
                }
                Event::Text(text) => {
                    let text = text.decode().map_err(xml_error)?;
                    match stack.last_mut() {
                        Some(top) => {
                            size += text.len();
                            top.text.push_str(&text);
                        }
                        // Between stanzas only whitespace (keepalives) may appear: anything
                        // else is not XMPP (an HTTP server, say).
                        None if !text.trim().is_empty() => {
                            return Err(BackendError::Protocol(
                                "not an XMPP stream: text outside any element".into(),
                            ))
                        }
                        None => {}
                    }
                }
                Event::CData(text) => {
                    if let Some(top) = stack.last_mut() {
                        let text = text.decode().map_err(xml_error)?;
                        size += text.len();
                        top.text.push_str(&text);
                    }
                }
                Event::GeneralRef(r) => {
                    if let Some(top) = stack.last_mut() {
                        let c = match r.resolve_char_ref().map_err(xml_error)? {
                            Some(c) => c,
                            None => match r.decode().map_err(xml_error)?.as_ref() {
                                "amp" => '&',
                                "lt" => '<',
                                "gt" => '>',
                                "quot" => '"',
                                "apos" => '\'',
                                other => {
                                    return Err(BackendError::Protocol(format!(
                                        "unknown entity &{other};"
                                    )))
                                }
                            },
                        };
                        size += c.len_utf8();
                        top.text.push(c);
                    }
                }
                Event::Eof => {
                    return Err(BackendError::Unreachable("connection closed".into()));
                }
                Event::DocType(_) => {
                    return Err(BackendError::Protocol(
                        "DTDs are not allowed in XMPP".into(),
                    ))
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            }
            if size > MAX_STANZA {
                return Err(BackendError::Protocol("stanza too large".into()));
            }
        }
    }
}

/// Where stanzas come from: read in place (during login), or by a task of their own, so that
/// waiting for the next one can be abandoned (in a `select!`) without losing half a stanza.
enum Incoming {
    Inline(StanzaReader),
    Background {
        stanzas: tokio::sync::mpsc::Receiver<std::result::Result<Element, BackendError>>,
        _reader: AbortOnDrop,
    },
    /// Only while switching from one to the other.
    Switching,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One XMPP stream: reads top-level stanzas, writes raw XML.
pub struct XmppStream {
    incoming: Incoming,
    writer: WriteHalf<Conn>,
    /// How long one write may wait on a peer that does not read.
    write_timeout: Duration,
}

impl XmppStream {
    fn new(stream: Conn) -> XmppStream {
        let (read, writer) = tokio::io::split(stream);
        XmppStream {
            incoming: Incoming::Inline(StanzaReader {
                reader: parser(BufReader::new(Capped::new(read))),
                buf: Vec::new(),
            }),
            writer,
            write_timeout: Duration::from_secs(10),
        }
    }

    /// The next stanza. Cancel-safe once [`XmppStream::read_in_background`] has run.
    pub async fn next(&mut self) -> std::result::Result<Element, BackendError> {
        match &mut self.incoming {
            Incoming::Inline(reader) => reader.next().await,
            Incoming::Background { stanzas, .. } => stanzas
                .recv()
                .await
                .unwrap_or_else(|| Err(BackendError::Unreachable("the stream ended".into()))),
            Incoming::Switching => Err(BackendError::Unreachable("the stream ended".into())),
        }
    }

    /// From now on a task reads the stream ahead (a few stanzas at most) and `next` takes
    /// stanzas from it.
    fn read_in_background(&mut self) {
        let incoming = std::mem::replace(&mut self.incoming, Incoming::Switching);
        let Incoming::Inline(mut reader) = incoming else {
            self.incoming = incoming;
            return;
        };
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let task = tokio::spawn(async move {
            loop {
                let stanza = reader.next().await;
                let failed = stanza.is_err();
                if tx.send(stanza).await.is_err() || failed {
                    return;
                }
            }
        });
        self.incoming = Incoming::Background {
            stanzas: rx,
            _reader: AbortOnDrop(task),
        };
    }

    /// The reader, while stanzas are still read in place (login).
    fn inline(incoming: Incoming) -> std::result::Result<StanzaReader, BackendError> {
        match incoming {
            Incoming::Inline(reader) => Ok(reader),
            _ => Err(BackendError::Protocol(
                "the stream is already read in the background".into(),
            )),
        }
    }

    pub async fn send(&mut self, xml: &str) -> std::result::Result<(), BackendError> {
        let write = async {
            self.writer.write_all(xml.as_bytes()).await?;
            // TLS holds records until flushed.
            self.writer.flush().await
        };
        match tokio::time::timeout(self.write_timeout, write).await {
            Ok(written) => written.map_err(|e| BackendError::Unreachable(format!("write: {e}"))),
            Err(_) => Err(BackendError::Unreachable(format!(
                "write blocked for {:?}",
                self.write_timeout
            ))),
        }
    }

    /// The connection underneath, for STARTTLS: nothing may have been read ahead of it.
    fn into_conn(self) -> std::result::Result<Conn, BackendError> {
        let buffered = XmppStream::inline(self.incoming)?.reader.into_inner();
        if !buffered.buffer().is_empty() {
            return Err(BackendError::Protocol(
                "data after <proceed/> before the TLS handshake".into(),
            ));
        }
        let read = buffered.into_inner().inner;
        Ok(read.unsplit(self.writer))
    }

    /// Opens the stream and reads its features.
    async fn features(&mut self, domain: &str) -> std::result::Result<Element, BackendError> {
        self.open(domain).await?;
        let features = self.next().await?;
        if features.name != "features" {
            return Err(BackendError::Protocol(format!(
                "expected stream features, got <{}>",
                features.name
            )));
        }
        Ok(features)
    }

    async fn open(&mut self, domain: &str) -> std::result::Result<(), BackendError> {
        self.send(&format!(
            "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
            escape(domain)
        ))
        .await
    }

    /// Connects and logs in: TLS (direct, or STARTTLS when offered), stream, SASL PLAIN,
    /// restart, bind. Returns the stream and full JID. Without TLS the password goes in clear
    /// only to a server on loopback, or with `allow_plaintext`.
    pub async fn login(
        server: &str,
        user: &str,
        domain: &str,
        password: &str,
        resource: &str,
        security: &Security,
    ) -> std::result::Result<(XmppStream, String), BackendError> {
        let tcp = TcpStream::connect(server)
            .await
            .map_err(|e| BackendError::Unreachable(format!("connect {server}: {e}")))?;
        let loopback = tcp.peer_addr().is_ok_and(|a| a.ip().is_loopback());
        let _ = tcp.set_nodelay(true);
        let mut conn: Conn = Box::new(tcp);
        let mut encrypted = false;
        if security.tls == XmppTls::Direct {
            conn = security.wrap(conn, domain).await?;
            encrypted = true;
        }
        let mut s = XmppStream::new(conn);
        let mut features = s.features(domain).await?;
        let offered = features.child_ns("starttls", NS_TLS).is_some();
        if !encrypted && offered && security.tls == XmppTls::Starttls {
            s.send(&format!("<starttls xmlns='{NS_TLS}'/>")).await?;
            let answer = s.next().await?;
            if answer.name != "proceed" {
                return Err(BackendError::Protocol(format!(
                    "STARTTLS refused by the server (<{}>)",
                    answer.name
                )));
            }
            s = XmppStream::new(security.wrap(s.into_conn()?, domain).await?);
            encrypted = true;
            features = s.features(domain).await?;
        }
        if !encrypted && !loopback && !security.allow_plaintext {
            let why = match security.tls {
                XmppTls::None => "tls = \"none\"",
                _ => "the server offers no STARTTLS",
            };
            return Err(BackendError::Auth(format!(
                "refusing to send the password in plain text to {server}, which is not on loopback ({why}; set allow_plaintext = true for a trusted network)"
            )));
        }
        let mechanisms = features
            .child_ns("mechanisms", NS_SASL)
            .map(|m| {
                m.children
                    .iter()
                    .map(|c| c.text.clone())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if !mechanisms.iter().any(|m| m == "PLAIN") {
            return Err(BackendError::Protocol(format!(
                "the server offers no SASL PLAIN on this stream (offers {mechanisms:?}{})",
                if offered && !encrypted {
                    "; it offers STARTTLS, which tls = \"none\" turned off"
                } else {
                    ""
                }
            )));
        }
        let credentials = STANDARD.encode(format!("\0{user}\0{password}"));
        s.send(&format!(
            "<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{credentials}</auth>"
        ))
        .await?;
        let answer = s.next().await?;
        if answer.name != "success" {
            let why = answer
                .children
                .first()
                .map(|c| c.name.clone())
                .unwrap_or(answer.name);
            return Err(BackendError::Auth(format!("SASL PLAIN refused: {why}")));
        }
        let XmppStream {
            incoming,
            writer,
            write_timeout,
        } = s;
        let mut s = XmppStream {
            incoming: Incoming::Inline(XmppStream::inline(incoming)?.restart()),
            writer,
            write_timeout,
        };
        let features = s.features(domain).await?;
        if features.child_ns("bind", NS_BIND).is_none() {
            return Err(BackendError::Protocol(
                "the server offers no resource binding".into(),
            ));
        }
        s.send(&format!(
            "<iq type='set' id='bind1'><bind xmlns='{NS_BIND}'><resource>{}</resource></bind></iq>",
            escape(resource)
        ))
        .await?;
        let bound = loop {
            let stanza = s.next().await?;
            if stanza.name == "iq" && stanza.attr("id") == Some("bind1") {
                break stanza;
            }
        };
        let jid = bound
            .child("bind")
            .and_then(|b| b.child("jid"))
            .map(|j| j.text.clone())
            .filter(|_| bound.attr("type") == Some("result"))
            .ok_or_else(|| BackendError::Protocol("resource binding failed".into()))?;
        // RFC 3921 sessions: harmless where optional, needed by old servers.
        if features
            .child("session")
            .is_some_and(|s| s.child("optional").is_none())
        {
            s.send("<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
                .await?;
        }
        Ok((s, jid))
    }

    /// Answers what every client must: pings, roster pushes (when `roster_ok`: they came from
    /// the account itself) and unknown requests.
    pub async fn answer_iq(
        &mut self,
        iq: &Element,
        roster_ok: bool,
    ) -> std::result::Result<(), BackendError> {
        let kind = iq.attr("type").unwrap_or_default();
        if kind != "get" && kind != "set" {
            return Ok(());
        }
        let id = escape(iq.attr("id").unwrap_or_default()).into_owned();
        let to = iq
            .attr("from")
            .map(|f| format!(" to='{}'", escape(f)))
            .unwrap_or_default();
        if iq.child_ns("ping", NS_PING).is_some()
            || roster_ok && iq.child_ns("query", NS_ROSTER).is_some()
        {
            self.send(&format!("<iq type='result' id='{id}'{to}/>"))
                .await
        } else {
            self.send(&format!(
                "<iq type='error' id='{id}'{to}><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
            ))
            .await
        }
    }
}

/// `xmpp:alice@corp.example/phone?message` → `alice@corp.example`.
pub fn bare_jid(handle: &str) -> Option<String> {
    let rest = handle.strip_prefix("xmpp:").unwrap_or(handle);
    let rest = rest.trim_start_matches("//");
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let bare = rest.split('/').next().unwrap_or_default().to_lowercase();
    let (user, domain) = bare.split_once('@')?;
    (!user.is_empty() && !domain.is_empty() && !domain.contains('@')).then_some(bare)
}

#[derive(Debug, Clone)]
struct Resource {
    show: Option<String>,
    status: Option<String>,
    priority: i32,
    idle_since: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Contact {
    /// Our subscription to their presence is approved (`to` or `both`).
    subscribed: bool,
    /// The last presence from them was an error.
    error: bool,
    resources: HashMap<String, Resource>,
}

fn availability_of_show(show: Option<&str>) -> (Availability, Option<Activity>) {
    match show {
        None => (Availability::Available, None),
        Some("chat") => (Availability::Available, Some(Activity::FreeToChat)),
        Some("away") => (Availability::Away, None),
        Some("xa") => (Availability::Away, Some(Activity::ExtendedAway)),
        Some("dnd") => (Availability::DoNotDisturb, None),
        Some(_) => (Availability::Available, None),
    }
}

impl Contact {
    /// RFC 6121: the highest-priority resource speaks for the contact; among equals the most
    /// restrictive, then the newest.
    fn state(&self, now: DateTime<Utc>) -> ChannelState {
        if self.error || !self.subscribed && self.resources.is_empty() {
            return ChannelState::unknown(now);
        }
        let Some(top) = self.resources.values().max_by_key(|r| {
            (
                r.priority,
                availability_of_show(r.show.as_deref()).0.rank(),
                r.at,
            )
        }) else {
            return ChannelState::new(Availability::Offline, now);
        };
        let (availability, activity) = availability_of_show(top.show.as_deref());
        // The stream is live (contacts are cleared when it drops): the state holds as of now.
        let mut state = ChannelState::new(availability, now);
        state.activity = activity;
        state.status_message = top.status.clone();
        state.idle = top.idle_since.is_some();
        state
    }
}

pub struct XmppBackend {
    user: String,
    domain: String,
    password: String,
    server: String,
    subscribe: bool,
    timeout: Duration,
    ping_every: Duration,
    security: Security,
    clock: Clock,
    contacts: Mutex<HashMap<String, Contact>>,
    /// Bare JID → the tracked handles that name it (`xmpp:Alice@Corp.Example/desk`, …): presence
    /// is reported under the handles the directory knows, not under the bare JID.
    tracked: Mutex<HashMap<String, Vec<String>>>,
    health: HealthCell,
}

/// At most this many resources are kept per contact (a misbehaving server cannot grow it).
const MAX_RESOURCES: usize = 32;

enum Outcome {
    Stopped,
    Lost(BackendError),
}

impl XmppBackend {
    pub fn new(config: &BackendConfig, clock: Clock) -> Result<XmppBackend> {
        let jid = config.jid.clone().unwrap_or_default();
        let (user, domain) = jid
            .split_once('@')
            .ok_or_else(|| Error::Config(format!("presence backend {}: bad jid", config.name)))?;
        let security = Security::new(
            config.tls.unwrap_or_default(),
            config.ca_file.as_deref(),
            config.allow_plaintext.unwrap_or(false),
        )
        .map_err(|e| Error::Config(format!("presence backend {}: {e}", config.name)))?;
        Ok(XmppBackend {
            user: user.to_string(),
            domain: domain.to_lowercase(),
            password: config.password.clone().unwrap_or_default(),
            server: config.server.clone().unwrap_or_else(|| {
                format!("{}:{}", domain.to_lowercase(), security.default_port())
            }),
            subscribe: config.subscribe.unwrap_or(true),
            timeout: config.timeout(),
            ping_every: Duration::from_secs_f64(config.ping_secs.unwrap_or(30.0)),
            security,
            clock,
            contacts: Mutex::new(HashMap::new()),
            tracked: Mutex::new(HashMap::new()),
            health: HealthCell::default(),
        })
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// `from` is the service account itself (bare or full JID).
    fn is_own(&self, from: &str) -> bool {
        let own = format!("{}@{}", self.user.to_lowercase(), self.domain);
        bare_jid(from).is_some_and(|j| j == own)
    }

    /// Takes the tracked handles: rebuilds the bare JID → handles map and forgets the presence
    /// of contacts nobody tracks any more (roster subscriptions are kept: the server bounds them).
    fn track(&self, handles: &[String]) {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for handle in handles {
            if let Some(jid) = bare_jid(handle) {
                map.entry(jid).or_default().push(handle.clone());
            }
        }
        if let Ok(mut contacts) = self.contacts.lock() {
            contacts.retain(|jid, c| {
                if !map.contains_key(jid) {
                    c.resources.clear();
                }
                c.subscribed || map.contains_key(jid)
            });
        }
        if let Ok(mut tracked) = self.tracked.lock() {
            *tracked = map;
        }
    }

    fn is_tracked(&self, jid: &str) -> bool {
        self.tracked
            .lock()
            .map(|t| t.contains_key(jid))
            .unwrap_or(false)
    }

    /// The contact's state, under every tracked handle that names `jid` (none when untracked).
    fn observations(&self, jid: &str) -> Vec<Observation> {
        let handles = self
            .tracked
            .lock()
            .ok()
            .and_then(|t| t.get(jid).cloned())
            .unwrap_or_default();
        if handles.is_empty() {
            return Vec::new();
        }
        let state = self.state_of(jid);
        handles
            .into_iter()
            .map(|handle| Observation {
                handle,
                state: state.clone(),
            })
            .collect()
    }

    fn state_of(&self, jid: &str) -> ChannelState {
        let now = self.now();
        self.contacts
            .lock()
            .ok()
            .and_then(|c| c.get(jid).map(|c| c.state(now)))
            .unwrap_or_else(|| ChannelState::unknown(now))
    }

    /// Runs `f` on the contact for `jid`: one the roster knows, or one the directory tracks.
    /// Presence from anyone else is ignored (`None`), so strangers cannot grow the map.
    fn with_contact<T>(&self, jid: &str, f: impl FnOnce(&mut Contact) -> T) -> Option<T> {
        let tracked = self.is_tracked(jid);
        let mut contacts = self.contacts.lock().ok()?;
        if !tracked && !contacts.contains_key(jid) {
            return None;
        }
        Some(f(contacts.entry(jid.to_string()).or_default()))
    }

    /// Applies a presence stanza; returns the bare JID whose state it changed.
    fn on_presence(&self, stanza: &Element) -> Option<String> {
        let from = stanza.attr("from")?;
        let jid = bare_jid(from)?;
        if jid == format!("{}@{}", self.user.to_lowercase(), self.domain) {
            return None;
        }
        let resource = from
            .split_once('/')
            .map(|(_, r)| r.to_string())
            .unwrap_or_default();
        let now = self.now();
        match stanza.attr("type") {
            None => {
                let show = stanza.child("show").map(|s| s.text.trim().to_string());
                let status = stanza
                    .child("status")
                    .map(|s| s.text.trim().to_string())
                    .filter(|s| !s.is_empty());
                let priority = stanza
                    .child("priority")
                    .and_then(|p| p.text.trim().parse::<i32>().ok())
                    .unwrap_or(0)
                    .clamp(-128, 127);
                let idle_since = stanza
                    .child_ns("idle", NS_IDLE)
                    .and_then(|i| i.attr("since"))
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| t.with_timezone(&Utc));
                self.with_contact(&jid, |c| {
                    c.error = false;
                    // Presence from them means we are subscribed, whatever the roster said.
                    c.subscribed = true;
                    if c.resources.len() >= MAX_RESOURCES && !c.resources.contains_key(&resource) {
                        return;
                    }
                    c.resources.insert(
                        resource,
                        Resource {
                            show: show.filter(|s| !s.is_empty()),
                            status,
                            priority,
                            idle_since,
                            at: now,
                        },
                    );
                })?;
            }
            Some("unavailable") => {
                self.with_contact(&jid, |c| {
                    c.error = false;
                    if resource.is_empty() {
                        c.resources.clear();
                    } else {
                        c.resources.remove(&resource);
                    }
                })?;
            }
            Some("error") => {
                self.with_contact(&jid, |c| {
                    c.error = true;
                    c.resources.clear();
                })?;
            }
            Some("unsubscribed") => {
                self.with_contact(&jid, |c| {
                    c.subscribed = false;
                    c.resources.clear();
                })?;
            }
            Some("subscribed") => {
                self.with_contact(&jid, |c| c.subscribed = true)?;
            }
            _ => return None,
        }
        Some(jid)
    }

    /// Roster items (result or push): records subscriptions; returns JIDs that need asking.
    fn on_roster(&self, query: &Element) -> Vec<String> {
        let mut approved = Vec::new();
        if let Ok(mut contacts) = self.contacts.lock() {
            for item in query.children.iter().filter(|c| c.name == "item") {
                let Some(jid) = item.attr("jid").and_then(bare_jid) else {
                    continue;
                };
                let subscription = item.attr("subscription").unwrap_or("none");
                let contact = contacts.entry(jid.clone()).or_default();
                contact.subscribed = matches!(subscription, "to" | "both");
                if subscription == "remove" {
                    contacts.remove(&jid);
                    continue;
                }
                if contact.subscribed || item.attr("ask") == Some("subscribe") {
                    approved.push(jid);
                }
            }
        }
        approved
    }

    async fn session(&self, ctx: &mut RunContext, connected: &mut bool) -> Outcome {
        let login = XmppStream::login(
            &self.server,
            &self.user,
            &self.domain,
            &self.password,
            "switchboard",
            &self.security,
        );
        let (mut s, _jid) = match tokio::time::timeout(self.timeout, login).await {
            Ok(Ok(session)) => session,
            Ok(Err(e)) => return Outcome::Lost(e),
            Err(_) => {
                return Outcome::Lost(BackendError::Unreachable(format!(
                    "no login within {:?}",
                    self.timeout
                )))
            }
        };
        s.write_timeout = self.timeout;
        // The session waits for stanzas in a select!: read them where waiting can be dropped.
        s.read_in_background();
        *connected = true;
        self.health.up(self.now());
        self.track(&ctx.tracked.borrow_and_update());
        tracing::info!(server = %self.server, "xmpp presence connected");
        let result: std::result::Result<Outcome, BackendError> = async {
            s.send(&format!("<iq type='get' id='roster1'><query xmlns='{NS_ROSTER}'/></iq>"))
                .await?;
            // Negative priority: nobody's messages are routed to the directory's account.
            s.send("<presence><priority>-1</priority></presence>").await?;
            let mut asked: std::collections::HashSet<String> = Default::default();
            let mut roster_known = false;
            // XEP-0199: a server (or a path to it) that stopped answering is noticed within
            // ping + timeout, even when the TCP connection looks open.
            let mut keepalive = tokio::time::interval(self.ping_every);
            keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            keepalive.tick().await;
            let mut pings = 0u64;
            let mut awaiting: Option<String> = None;
            let far = Duration::from_secs(86_400);
            let pong_due = tokio::time::sleep(far);
            tokio::pin!(pong_due);
            // Contacts with no presence after the roster and the server's probes are offline.
            let settle = tokio::time::sleep(Duration::from_secs(3600));
            tokio::pin!(settle);
            loop {
                tokio::select! {
                    stanza = s.next() => {
                        let stanza = stanza?;
                        match stanza.name.as_str() {
                            "presence" => {
                                if let Some(jid) = self.on_presence(&stanza) {
                                    let observations = self.observations(&jid);
                                    if !observations.is_empty() {
                                        ctx.sink.report(observations);
                                    }
                                }
                            }
                            "iq" => {
                                if awaiting.is_some() && stanza.attr("id") == awaiting.as_deref() {
                                    // Any answer (even an error: the server lacks XEP-0199) is a sign of life.
                                    awaiting = None;
                                    pong_due.as_mut().reset(tokio::time::Instant::now() + far);
                                    // The stream is live: what it said still holds, however long
                                    // ago it said it (otherwise quiet people would expire).
                                    if roster_known {
                                        let jids: Vec<String> = self.tracked.lock().map(|t| t.keys().cloned().collect()).unwrap_or_default();
                                        let observations: Vec<Observation> = jids.iter().flat_map(|j| self.observations(j)).collect();
                                        if !observations.is_empty() {
                                            ctx.sink.report(observations);
                                        }
                                    }
                                }
                                // Roster pushes count only from the account itself (RFC 6121 §2.1.6).
                                let trusted = stanza.attr("from").is_none_or(|f| self.is_own(f));
                                if let Some(query) = stanza.child_ns("query", NS_ROSTER).filter(|_| trusted) {
                                    let known = self.on_roster(query);
                                    asked.extend(known);
                                    if stanza.attr("id") == Some("roster1") {
                                        roster_known = true;
                                        settle.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(500));
                                        self.ask(&mut s, &ctx.tracked, &mut asked).await?;
                                    }
                                }
                                s.answer_iq(&stanza, trusted).await?;
                            }
                            "error" => {
                                let why = stanza.children.first().map(|c| c.name.clone()).unwrap_or_default();
                                return Err(BackendError::Unreachable(format!("stream error: {why}")));
                            }
                            _ => {}
                        }
                    }
                    _ = &mut settle => {
                        settle.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(3600));
                        let jids: Vec<String> = self.tracked.lock().map(|t| t.keys().cloned().collect()).unwrap_or_default();
                        let observations = jids.iter().flat_map(|j| self.observations(j)).collect();
                        ctx.sink.report(observations);
                    }
                    changed = ctx.tracked.changed() => {
                        if changed.is_err() { return Ok(Outcome::Stopped) }
                        self.track(&ctx.tracked.borrow_and_update());
                        if roster_known {
                            self.ask(&mut s, &ctx.tracked, &mut asked).await?;
                            settle.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(500));
                        }
                    }
                    _ = keepalive.tick() => {
                        if awaiting.is_none() {
                            pings += 1;
                            let id = format!("ping{pings}");
                            s.send(&format!(
                                "<iq type='get' id='{id}' to='{}'><ping xmlns='{NS_PING}'/></iq>",
                                escape(&self.domain)
                            ))
                            .await?;
                            awaiting = Some(id);
                            pong_due.as_mut().reset(tokio::time::Instant::now() + self.timeout);
                        }
                    }
                    _ = &mut pong_due => {
                        return Err(BackendError::Unreachable(format!(
                            "no answer to a ping within {:?}",
                            self.timeout
                        )));
                    }
                    _ = super::stopped(&mut ctx.stop) => {
                        let _ = s.send("<presence type='unavailable'/></stream:stream>").await;
                        return Ok(Outcome::Stopped);
                    }
                }
            }
        }
        .await;
        match result {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Lost(e),
        }
    }

    /// Asks tracked people we have no subscription to (or request pending) for one.
    async fn ask(
        &self,
        s: &mut XmppStream,
        tracked: &watch::Receiver<Arc<Vec<String>>>,
        asked: &mut std::collections::HashSet<String>,
    ) -> std::result::Result<(), BackendError> {
        if !self.subscribe {
            return Ok(());
        }
        let handles = tracked.borrow().clone();
        for jid in handles.iter().filter_map(|h| bare_jid(h)) {
            if asked.insert(jid.clone()) {
                s.send(&format!(
                    "<presence to='{}' type='subscribe'/>",
                    escape(&jid)
                ))
                .await?;
            }
        }
        Ok(())
    }
}

impl PresenceBackend for XmppBackend {
    fn kind(&self) -> &'static str {
        "xmpp"
    }

    fn mode(&self) -> Mode {
        Mode::Push
    }

    fn run(self: Arc<Self>, mut ctx: RunContext) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut backoff = super::Backoff::new();
            loop {
                if *ctx.stop.borrow() {
                    return;
                }
                let mut connected = false;
                match self.session(&mut ctx, &mut connected).await {
                    Outcome::Stopped => return,
                    Outcome::Lost(e) => {
                        tracing::warn!(server = %self.server, error = %e, "xmpp presence connection lost");
                        self.health.down(e.to_string());
                        if let Ok(mut contacts) = self.contacts.lock() {
                            contacts.clear();
                        }
                        ctx.sink.all_unknown();
                    }
                }
                if connected {
                    backoff.reset();
                }
                if !backoff.wait(&mut ctx.stop).await {
                    return;
                }
            }
        })
    }

    fn fetch<'a>(
        &'a self,
        handles: &'a [String],
    ) -> BoxFuture<'a, std::result::Result<Vec<Observation>, BackendError>> {
        Box::pin(async move {
            Ok(handles
                .iter()
                .map(|h| match bare_jid(h) {
                    Some(jid) => Observation {
                        handle: h.clone(),
                        state: self.state_of(&jid),
                    },
                    None => Observation {
                        handle: h.clone(),
                        state: ChannelState::unknown(self.now()),
                    },
                })
                .collect())
        })
    }

    fn health(&self) -> Health {
        self.health.get()
    }
}

/// Writes and flushes (TLS holds records until flushed).
async fn write_flushed(writer: &mut WriteHalf<Conn>, bytes: &[u8]) -> std::io::Result<()> {
    writer.write_all(bytes).await?;
    writer.flush().await
}

/// A plain XMPP client (a person's chat app, in tests and tools): sets its own presence and
/// approves subscription requests.
pub struct XmppClient {
    writer: Arc<tokio::sync::Mutex<WriteHalf<Conn>>>,
    task: tokio::task::JoinHandle<()>,
}

impl XmppClient {
    /// Logs in with STARTTLS when offered, trusting the system's CAs.
    pub async fn connect(
        server: &str,
        jid: &str,
        password: &str,
        resource: &str,
    ) -> std::result::Result<XmppClient, BackendError> {
        let security =
            Security::new(XmppTls::Starttls, None, false).map_err(BackendError::Protocol)?;
        XmppClient::connect_with(server, jid, password, resource, &security).await
    }

    pub async fn connect_with(
        server: &str,
        jid: &str,
        password: &str,
        resource: &str,
        security: &Security,
    ) -> std::result::Result<XmppClient, BackendError> {
        let (user, domain) = jid
            .split_once('@')
            .ok_or_else(|| BackendError::Protocol(format!("bad jid {jid}")))?;
        let (s, _) = XmppStream::login(server, user, domain, password, resource, security).await?;
        let XmppStream {
            incoming, writer, ..
        } = s;
        let mut reader = XmppStream::inline(incoming)?;
        let writer = Arc::new(tokio::sync::Mutex::new(writer));
        let replies = writer.clone();
        let task = tokio::spawn(async move {
            while let Ok(stanza) = reader.next().await {
                let reply = match (stanza.name.as_str(), stanza.attr("type")) {
                    ("presence", Some("subscribe")) => stanza
                        .attr("from")
                        .map(|from| format!("<presence to='{}' type='subscribed'/>", escape(from))),
                    ("iq", Some("get" | "set")) => {
                        let id = escape(stanza.attr("id").unwrap_or_default()).into_owned();
                        Some(format!("<iq type='result' id='{id}'/>"))
                    }
                    _ => None,
                };
                if let Some(reply) = reply {
                    if write_flushed(&mut *replies.lock().await, reply.as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });
        Ok(XmppClient { writer, task })
    }

    /// Sends presence: `show` is `None` (available), `chat`, `away`, `xa` or `dnd`.
    pub async fn set_presence(
        &self,
        show: Option<&str>,
        status: Option<&str>,
        priority: i32,
        idle_since: Option<DateTime<Utc>>,
    ) -> std::io::Result<()> {
        let mut xml = String::from("<presence>");
        if let Some(show) = show {
            xml.push_str(&format!("<show>{}</show>", escape(show)));
        }
        if let Some(status) = status {
            xml.push_str(&format!("<status>{}</status>", escape(status)));
        }
        xml.push_str(&format!("<priority>{priority}</priority>"));
        if let Some(since) = idle_since {
            xml.push_str(&format!(
                "<idle xmlns='{NS_IDLE}' since='{}'/>",
                since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
        xml.push_str("</presence>");
        write_flushed(&mut *self.writer.lock().await, xml.as_bytes()).await
    }

    pub async fn go_offline(&self) -> std::io::Result<()> {
        write_flushed(
            &mut *self.writer.lock().await,
            b"<presence type='unavailable'/>",
        )
        .await
    }

    pub async fn close(self) {
        let _ = write_flushed(
            &mut *self.writer.lock().await,
            b"<presence type='unavailable'/></stream:stream>",
        )
        .await;
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that opens a stream, starts a stanza and then sends text without end.
    async fn endless_stanza() -> std::result::Result<Element, BackendError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let peer = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let _ = socket
                .write_all(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><presence><status>")
                .await;
            let chunk = vec![b'a'; 64 * 1024];
            // 64 MiB (or until the reader hangs up), then the stanza stays open.
            for _ in 0..1024 {
                if socket.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            std::future::pending::<()>().await;
        });
        let mut stream =
            XmppStream::new(Box::new(TcpStream::connect(addr).await.expect("connect")));
        let result = stream.next().await;
        drop(stream);
        peer.abort();
        result
    }

    #[tokio::test]
    async fn an_endless_stanza_is_refused_after_the_cap() {
        let result = tokio::time::timeout(Duration::from_secs(60), endless_stanza())
            .await
            .expect("the reader gave up in time");
        match result {
            Err(BackendError::Protocol(why)) => assert!(why.contains("too large"), "{why}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn handles_become_bare_jids() {
        assert_eq!(
            bare_jid("xmpp:Alice@Corp.Example").as_deref(),
            Some("alice@corp.example")
        );
        assert_eq!(
            bare_jid("xmpp:alice@corp.example/phone?message").as_deref(),
            Some("alice@corp.example")
        );
        assert_eq!(bare_jid("xmpp:corp.example"), None);
        assert_eq!(bare_jid("xmpp:@corp.example"), None);
    }

    #[test]
    fn show_maps_to_the_normalized_model() {
        assert_eq!(availability_of_show(None), (Availability::Available, None));
        assert_eq!(
            availability_of_show(Some("chat")),
            (Availability::Available, Some(Activity::FreeToChat))
        );
        assert_eq!(availability_of_show(Some("away")).0, Availability::Away);
        assert_eq!(
            availability_of_show(Some("xa")),
            (Availability::Away, Some(Activity::ExtendedAway))
        );
        assert_eq!(
            availability_of_show(Some("dnd")).0,
            Availability::DoNotDisturb
        );
    }

    fn resource(show: Option<&str>, priority: i32, at: i64) -> Resource {
        Resource {
            show: show.map(str::to_string),
            status: Some(format!("p{priority}")),
            priority,
            idle_since: None,
            at: DateTime::from_timestamp(1_700_000_000 + at, 0).expect("time"),
        }
    }

    #[test]
    fn the_highest_priority_resource_speaks_for_the_contact() {
        let now = Utc::now();
        let mut c = Contact {
            subscribed: true,
            ..Default::default()
        };
        assert_eq!(
            c.state(now).availability,
            Availability::Offline,
            "no resource"
        );
        c.resources
            .insert("phone".into(), resource(Some("away"), 0, 1));
        c.resources
            .insert("desk".into(), resource(Some("dnd"), 5, 2));
        let s = c.state(now);
        assert_eq!(s.availability, Availability::DoNotDisturb);
        assert_eq!(s.status_message.as_deref(), Some("p5"));
        c.resources.insert("laptop".into(), resource(None, 10, 0));
        assert_eq!(c.state(now).availability, Availability::Available);
        c.resources.get_mut("laptop").expect("laptop").idle_since = Some(now);
        assert!(c.state(now).idle);
        c.error = true;
        assert_eq!(c.state(now).availability, Availability::Unknown);
        let unsubscribed = Contact::default();
        assert_eq!(unsubscribed.state(now).availability, Availability::Unknown);
    }
}
