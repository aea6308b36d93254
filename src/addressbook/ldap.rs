//! A read-only LDAP server (RFC 4511) for desk phones and mail clients: binds with device, staff
//! or directory credentials, searches answered from the search index through the caller's
//! policy, paged (RFC 2696) and sorted (RFC 2891), StartTLS and LDAPS. Every bind is audited,
//! and searches as every other lookup is (`AppState::audits_lookups_of`).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapBindResponse, LdapExtendedResponse, LdapFilter, LdapMsg,
    LdapOp, LdapPartialAttribute, LdapResult, LdapResultCode, LdapSearchRequest,
    LdapSearchResultEntry, LdapSearchScope,
};
use ldap3_proto::LdapCodec;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_util::codec::Framed;
use uuid::Uuid;

use super::entry::{attribute, Entry};
use super::filter::{self, Approximate, Candidates};
use crate::access::Principal;
use crate::audit::AuditEvent;
use crate::domain::normalize_dn;
use crate::domain::PersonSummary;
use crate::error::{Error, Result};
use crate::http::AppState;
use crate::search::SearchRequest;

const OID_WHOAMI: &str = "1.3.6.1.4.1.4203.1.11.3";
const OID_STARTTLS: &str = "1.3.6.1.4.1.1466.20037";
const OID_PAGED: &str = "1.2.840.113556.1.4.319";
const OID_SORT: &str = "1.2.840.113556.1.4.473";
/// How long a connection may stay silent before it is closed.
const IDLE: Duration = Duration::from_secs(600);
/// The longest a search may take.
const SEARCH_TIME: Duration = Duration::from_secs(30);
/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 512;

/// `[ldap_server]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapServerConfig {
    /// Plain LDAP (StartTLS offered when a certificate is configured).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// LDAPS (TLS from the first byte), with the certificate of `tls` or of `[tls]`.
    #[serde(default)]
    pub ldaps_listen: Option<SocketAddr>,
    /// Where people are: `uid=<id>,<base_dn>`.
    #[serde(default = "default_base_dn")]
    pub base_dn: String,
    /// Searches without a bind (or after an anonymous one) see what a staff viewer sees, or
    /// what `anonymous_policy` says.
    #[serde(default)]
    pub allow_anonymous: bool,
    /// Who and what anonymous clients see (`[ldap_server.anonymous_policy]`: scope, fields,
    /// presence, as a role's policy); absent: a staff viewer's.
    #[serde(default)]
    pub anonymous_policy: Option<crate::access::policy::Policy>,
    /// The most entries one search returns (a client's smaller size limit wins).
    #[serde(default = "default_max_results")]
    pub max_results: usize,
    /// A certificate for StartTLS and LDAPS other than `[tls]`'s.
    #[serde(default)]
    pub tls: Option<crate::tls::TlsConfig>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3389))
}

fn default_base_dn() -> String {
    "ou=people,dc=switchboard".into()
}

fn default_max_results() -> usize {
    500
}

impl Default for LdapServerConfig {
    fn default() -> Self {
        LdapServerConfig {
            listen: default_listen(),
            ldaps_listen: None,
            base_dn: default_base_dn(),
            allow_anonymous: false,
            anonymous_policy: None,
            max_results: default_max_results(),
            tls: None,
        }
    }
}

impl LdapServerConfig {
    /// The certificate files to use: this section's, else the server's.
    pub fn tls_files<'a>(
        &'a self,
        global: Option<&'a crate::tls::TlsConfig>,
    ) -> Option<&'a crate::tls::TlsConfig> {
        self.tls.as_ref().or(global)
    }

    pub fn check(&self) -> Result<()> {
        let base = normalize_dn(&self.base_dn);
        if base.is_empty() || !base.split(',').all(|rdn| rdn.contains('=')) {
            return Err(Error::Config(format!(
                "ldap_server.base_dn `{}` is not a DN (e.g. ou=people,dc=example,dc=com)",
                self.base_dn
            )));
        }
        Ok(())
    }
}

/// Where a search starts.
#[derive(Debug, PartialEq)]
enum Target {
    RootDse,
    Schema,
    /// The entry above the people (`base_dn` itself).
    Base,
    Person(Uuid),
    /// An entry above `base_dn` (`dc=example,dc=com`): a subtree search reaches the people.
    Above,
    Outside,
}

/// Who is bound on a connection.
struct Session {
    principal: Option<Principal>,
    /// A partner's key, checked again at each search: a revoked or rotated-out key, or a
    /// changed policy, takes effect on open connections too (within the key cache's 5 s).
    partner_key: Option<String>,
    /// The DN the client bound with (for whoami).
    dn: String,
    peer: IpAddr,
    tls: bool,
}

enum Next<S> {
    Closed,
    StartTls(S),
}

pub struct LdapServer {
    state: AppState,
    config: LdapServerConfig,
    base: String,
    tls: Option<Arc<crate::tls::Certificates>>,
    connections: Arc<Semaphore>,
}

fn result(code: LdapResultCode, message: &str) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: message.to_string(),
        referral: Vec::new(),
    }
}

fn success() -> LdapResult {
    result(LdapResultCode::Success, "")
}

/// A search's answer: entries, the result, and controls for the Done message.
struct Answer {
    entries: Vec<LdapSearchResultEntry>,
    done: LdapResult,
    controls: Vec<LdapControl>,
    people: Vec<Uuid>,
}

impl Answer {
    fn only(done: LdapResult) -> Answer {
        Answer {
            entries: Vec::new(),
            done,
            controls: Vec::new(),
            people: Vec::new(),
        }
    }
}

impl LdapServer {
    pub fn new(
        state: AppState,
        config: LdapServerConfig,
        tls: Option<Arc<crate::tls::Certificates>>,
    ) -> Result<Arc<LdapServer>> {
        config.check()?;
        Ok(Arc::new(LdapServer {
            base: normalize_dn(&config.base_dn),
            state,
            config,
            tls,
            connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        }))
    }

    /// Binds the configured addresses and serves until `stop` turns true; answers each URL
    /// served and its task.
    pub async fn start(
        self: &Arc<Self>,
        stop: watch::Receiver<bool>,
    ) -> Result<Vec<(String, tokio::task::JoinHandle<()>)>> {
        let mut served = Vec::new();
        let mut listeners = vec![(self.config.listen, false)];
        if let Some(ldaps) = self.config.ldaps_listen {
            if self.tls.is_none() {
                return Err(Error::Config(
                    "ldap_server.ldaps_listen needs a certificate: [ldap_server.tls] or [tls]"
                        .into(),
                ));
            }
            listeners.push((ldaps, true));
        }
        for (address, implicit_tls) in listeners {
            let listener = TcpListener::bind(address)
                .await
                .map_err(|e| Error::Config(format!("cannot listen on {address}: {e}")))?;
            let local = listener.local_addr()?;
            let task = tokio::spawn(self.clone().run(listener, implicit_tls, stop.clone()));
            let scheme = if implicit_tls { "ldaps" } else { "ldap" };
            served.push((format!("{scheme}://{local}"), task));
        }
        Ok(served)
    }

    async fn run(
        self: Arc<Self>,
        listener: TcpListener,
        implicit_tls: bool,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let permit = tokio::select! {
                _ = stop.changed() => return,
                permit = self.connections.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let accepted = tokio::select! {
                _ = stop.changed() => return,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((tcp, peer)) => {
                    let server = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = server.connection(tcp, peer, implicit_tls).await {
                            tracing::debug!(error = %e, %peer, "LDAP connection ended");
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept an LDAP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    async fn connection(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        implicit_tls: bool,
    ) -> std::io::Result<()> {
        let _ = tcp.set_nodelay(true);
        let mut session = Session {
            principal: None,
            partner_key: None,
            dn: String::new(),
            peer: peer.ip(),
            tls: implicit_tls,
        };
        let acceptor = self.tls.as_ref().map(|t| t.acceptor());
        if implicit_tls {
            let Some(acceptor) = acceptor else {
                return Ok(());
            };
            let tls = acceptor.accept(tcp).await?;
            self.serve(tls, &mut session, false).await?;
            return Ok(());
        }
        if let Next::StartTls(tcp) = self.serve(tcp, &mut session, acceptor.is_some()).await? {
            if let Some(acceptor) = acceptor {
                let tls = acceptor.accept(tcp).await?;
                session.tls = true;
                self.serve(tls, &mut session, false).await?;
            }
        }
        Ok(())
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: S,
        session: &mut Session,
        can_starttls: bool,
    ) -> std::io::Result<Next<S>> {
        let mut framed = Framed::new(io, LdapCodec::default());
        loop {
            let message = match tokio::time::timeout(IDLE, framed.next()).await {
                Err(_) | Ok(None) => return Ok(Next::Closed),
                Ok(Some(message)) => message?,
            };
            let LdapMsg { msgid, op, ctrl } = message;
            let reply = |op| LdapMsg::new(msgid, op);
            match op {
                LdapOp::BindRequest(request) => {
                    let res = self.bind(request, session).await;
                    framed
                        .send(reply(LdapOp::BindResponse(LdapBindResponse {
                            res,
                            saslcreds: None,
                        })))
                        .await?;
                }
                LdapOp::SearchRequest(request) => {
                    let answer = self.search(&request, &ctrl, session).await;
                    for entry in answer.entries {
                        framed.feed(reply(LdapOp::SearchResultEntry(entry))).await?;
                    }
                    framed
                        .send(LdapMsg::new_with_ctrls(
                            msgid,
                            LdapOp::SearchResultDone(answer.done),
                            answer.controls,
                        ))
                        .await?;
                }
                LdapOp::UnbindRequest => return Ok(Next::Closed),
                LdapOp::AbandonRequest(_) => {}
                LdapOp::ExtendedRequest(request) if request.name == OID_WHOAMI => {
                    let id = if session.principal.is_some() && !session.dn.is_empty() {
                        format!("dn:{}", session.dn)
                    } else {
                        String::new()
                    };
                    framed
                        .send(reply(LdapOp::ExtendedResponse(LdapExtendedResponse {
                            res: success(),
                            name: None,
                            value: Some(id.into_bytes()),
                        })))
                        .await?;
                }
                LdapOp::ExtendedRequest(request) if request.name == OID_STARTTLS => {
                    let res = if can_starttls && !session.tls {
                        success()
                    } else {
                        result(
                            LdapResultCode::OperationsError,
                            "StartTLS is not available here (no certificate, or TLS already)",
                        )
                    };
                    let start = res.code == LdapResultCode::Success;
                    framed
                        .send(reply(LdapOp::ExtendedResponse(LdapExtendedResponse {
                            res,
                            name: Some(OID_STARTTLS.into()),
                            value: None,
                        })))
                        .await?;
                    if start {
                        let parts = framed.into_parts();
                        if !parts.read_buf.is_empty() {
                            return Err(std::io::Error::other(
                                "data sent before the TLS handshake",
                            ));
                        }
                        return Ok(Next::StartTls(parts.io));
                    }
                }
                LdapOp::ExtendedRequest(request) => {
                    framed
                        .send(reply(LdapOp::ExtendedResponse(LdapExtendedResponse {
                            res: result(
                                LdapResultCode::ProtocolError,
                                &format!("extended operation {} is not supported", request.name),
                            ),
                            name: None,
                            value: None,
                        })))
                        .await?;
                }
                LdapOp::AddRequest(_) => {
                    framed.send(reply(LdapOp::AddResponse(read_only()))).await?
                }
                LdapOp::ModifyRequest(_) => {
                    framed
                        .send(reply(LdapOp::ModifyResponse(read_only())))
                        .await?
                }
                LdapOp::DelRequest(_) => {
                    framed.send(reply(LdapOp::DelResponse(read_only()))).await?
                }
                LdapOp::ModifyDNRequest(_) => {
                    framed
                        .send(reply(LdapOp::ModifyDNResponse(read_only())))
                        .await?
                }
                LdapOp::CompareRequest(_) => {
                    framed
                        .send(reply(LdapOp::CompareResult(read_only())))
                        .await?
                }
                // A response sent by a client: not LDAP.
                _ => return Ok(Next::Closed),
            }
        }
    }

    /// A simple bind: a device, a local account, or an account of the LDAP sign-in source;
    /// anonymous when allowed. Throttled and audited as console sign-ins are.
    async fn bind(&self, request: LdapBindRequest, session: &mut Session) -> LdapResult {
        session.principal = None;
        session.partner_key = None;
        session.dn.clear();
        let password = match (request.version, &request.cred) {
            (3, LdapBindCred::Simple(password)) => password.clone(),
            (3, _) => {
                return result(
                    LdapResultCode::AuthMethodNotSupported,
                    "only simple binds are supported",
                )
            }
            _ => return result(LdapResultCode::ProtocolError, "only LDAPv3 is supported"),
        };
        let address = session.peer.to_string();
        if request.dn.is_empty() {
            if !password.is_empty() {
                // RFC 4513 §5.1.2: an unauthenticated bind.
                return result(
                    LdapResultCode::UnwillingToPerform,
                    "a password needs a name",
                );
            }
            // Anonymous: accepted (clients bind so before reading the rootDSE), but without
            // `allow_anonymous` it reads nothing else.
            session.principal = self.config.allow_anonymous.then(|| self.anonymous());
            return success();
        }
        let account = account_of(&request.dn);
        if let Err(seconds) = self.state.access.throttled(&account, &address) {
            return result(
                LdapResultCode::UnwillingToPerform,
                &format!("too many failed binds: try again in {seconds} s"),
            );
        }
        let who = self
            .state
            .access
            .password_principal(&account, &password)
            .await;
        match who {
            Ok(Some(principal)) => {
                self.state.access.sign_in_succeeded(&account);
                self.audit(
                    AuditEvent::new(self.state.access.now(), &principal.name, "ldap.bind")
                        .address(Some(address)),
                );
                session.partner_key = principal.partner.is_some().then(|| password.clone());
                session.principal = Some(principal);
                session.dn = request.dn;
                success()
            }
            Ok(None) => {
                self.state.access.sign_in_failed(&account, &address);
                self.audit(
                    AuditEvent::new(
                        self.state.access.now(),
                        &format!("anonymous:{account}"),
                        "ldap.bind_failed",
                    )
                    .address(Some(address)),
                );
                result(LdapResultCode::InvalidCredentials, "wrong name or password")
            }
            Err(e) => {
                tracing::warn!(error = %e, "LDAP bind failed");
                result(LdapResultCode::Unavailable, "cannot check credentials now")
            }
        }
    }

    fn anonymous(&self) -> Principal {
        let mut principal = self
            .state
            .access
            .device_principal("ldap:anonymous", "Anonymous LDAP client");
        if let Some(policy) = &self.config.anonymous_policy {
            principal.policy = Arc::new(policy.clone());
        }
        principal
    }

    fn audit(&self, event: AuditEvent) {
        self.state.audit.record(event);
    }

    fn target(&self, base: &str) -> Target {
        let dn = normalize_dn(base);
        if dn.is_empty() {
            return Target::RootDse;
        }
        if dn == "cn=subschema" {
            return Target::Schema;
        }
        if dn == self.base {
            return Target::Base;
        }
        if let Some(rdn) = dn.strip_suffix(&format!(",{}", self.base)) {
            return rdn
                .strip_prefix("uid=")
                .and_then(|id| Uuid::parse_str(id).ok())
                .map_or(Target::Outside, Target::Person);
        }
        if self.base.ends_with(&format!(",{dn}")) {
            return Target::Above;
        }
        Target::Outside
    }

    async fn search(
        &self,
        request: &LdapSearchRequest,
        controls: &[LdapControl],
        session: &Session,
    ) -> Answer {
        if let Some(LdapControl::Unknown { oid, .. }) = controls.iter().find(|c| {
            matches!(
                c,
                LdapControl::Unknown {
                    criticality: true,
                    ..
                }
            )
        }) {
            return Answer::only(result(
                LdapResultCode::UnavailableCriticalExtension,
                &format!("control {oid} is not supported"),
            ));
        }
        let target = self.target(&request.base);
        let scope = &request.scope;
        match target {
            Target::RootDse if *scope == LdapSearchScope::Base => {
                return self.fixed(self.root_dse(), request)
            }
            Target::RootDse => return Answer::only(success()),
            Target::Schema if *scope == LdapSearchScope::Base => {
                return self.fixed(schema_entry(), request)
            }
            Target::Schema => return Answer::only(success()),
            _ => {}
        }
        let principal = match (&session.principal, self.config.allow_anonymous) {
            (Some(p), _) if p.partner.is_some() => {
                let key = session.partner_key.as_deref().unwrap_or_default();
                match self.state.access.partner_of_key(key).await {
                    Ok(Some(fresh)) => fresh,
                    Ok(None) => {
                        return Answer::only(result(
                            LdapResultCode::InsufficentAccessRights,
                            "this partner key is no longer valid: bind again",
                        ))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "LDAP search: cannot check a partner key");
                        return Answer::only(result(
                            LdapResultCode::Unavailable,
                            "cannot check credentials now",
                        ));
                    }
                }
            }
            (Some(p), _) => p.clone(),
            (None, true) => self.anonymous(),
            (None, false) => {
                return Answer::only(result(
                    LdapResultCode::InsufficentAccessRights,
                    "bind first: anonymous searches are not allowed",
                ))
            }
        };
        let limited = match &principal.partner {
            // A partner's own rate and daily quota, as over HTTP.
            Some(partner) => self
                .state
                .access
                .rate_with(
                    &principal.name,
                    partner.rate_per_second,
                    partner.rate_per_second,
                )
                .and_then(|()| {
                    self.state
                        .access
                        .partner_usage
                        .take(partner, self.state.access.now())
                }),
            None => self.state.access.rate(&principal.name),
        };
        if let Err(seconds) = limited {
            return Answer::only(result(
                LdapResultCode::Busy,
                &format!("too many searches: try again in {seconds} s"),
            ));
        }
        let people_scope = match (&target, scope) {
            (Target::Outside, _) | (Target::Above, LdapSearchScope::Base) => {
                let mut done = result(LdapResultCode::NoSuchObject, "no such entry");
                done.matcheddn = if matches!(target, Target::Above) {
                    String::new()
                } else {
                    self.config.base_dn.clone()
                };
                return Answer::only(done);
            }
            (Target::Base, LdapSearchScope::Base) => return self.fixed(self.base_entry(), request),
            (Target::Base, _) | (Target::Above, LdapSearchScope::Subtree) => None,
            (Target::Above, _) => return Answer::only(success()),
            // A partner names people by its own ids.
            (Target::Person(id), LdapSearchScope::Base | LdapSearchScope::Subtree) => Some(
                principal
                    .partner
                    .as_ref()
                    .map_or(*id, |partner| partner.our_id(*id)),
            ),
            (Target::Person(_), _) => return Answer::only(success()),
            (Target::RootDse | Target::Schema, _) => return Answer::only(success()),
        };
        // A client's time limit (RFC 4511 §4.5.1.5), within the server's own.
        let limit = match u64::try_from(request.timelimit) {
            Ok(seconds) if seconds > 0 => Duration::from_secs(seconds).min(SEARCH_TIME),
            _ => SEARCH_TIME,
        };
        let searched = tokio::time::timeout(
            limit,
            self.people(request, controls, &principal, people_scope),
        )
        .await;
        let answer = match searched {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "LDAP search failed");
                Answer::only(result(LdapResultCode::OperationsError, "the search failed"))
            }
            Err(_) => Answer::only(result(
                LdapResultCode::TimeLimitExceeded,
                "the search took longer than its time limit",
            )),
        };
        if self.state.audits_lookups_of(&principal) {
            let mut event =
                AuditEvent::new(self.state.access.now(), &principal.name, "ldap.search")
                    .query(format!(
                        "base={} filter={}",
                        request.base,
                        filter::to_string(&request.filter)
                    ))
                    .address(Some(session.peer.to_string()));
            event.people = answer.people.clone();
            self.audit(event);
        }
        answer
    }

    /// People matching the search, through the principal's policy; `only` for a search based
    /// at one person's entry.
    async fn people(
        &self,
        request: &LdapSearchRequest,
        controls: &[LdapControl],
        principal: &Principal,
        only: Option<Uuid>,
    ) -> Result<Answer> {
        let mut max = self.config.max_results.max(1);
        if principal.partner.is_some() {
            // Partners search, they do not list: a name or number of some length, and a few
            // people per search.
            max = max.min(self.state.access.partners.max_results.max(1));
            if only.is_none() {
                if let Some(refused) = self.partner_refusal(&request.filter) {
                    return Ok(Answer::only(refused));
                }
                self.note_partner_queries(principal, &request.filter);
            }
        }
        let limit = match usize::try_from(request.sizelimit) {
            Ok(n) if n > 0 => n.min(max),
            _ => max,
        };
        // One more than will be sent says whether there are more; paged or sorted results are
        // taken whole, up to the server's limit.
        let whole = controls.iter().any(|c| {
            matches!(
                c,
                LdapControl::ServerSort { .. } | LdapControl::SimplePagedResults { .. }
            )
        });
        let want = if whole { max } else { limit } + 1;
        let mut found = match only {
            Some(id) => {
                let mut entries = self.entries(&[id], principal).await?;
                let none = Approximate::default();
                entries
                    .retain(|(id, e)| filter::matches(&request.filter, e, id, &none) == Some(true));
                entries
            }
            None => self.find(request, principal, want).await?,
        };
        let mut truncated = false;
        if found.len() > max {
            found.truncate(max);
            truncated = true;
        }
        if only.is_some() && found.is_empty() && request.scope == LdapSearchScope::Base {
            let mut done = result(LdapResultCode::NoSuchObject, "no such entry");
            done.matcheddn = self.config.base_dn.clone();
            return Ok(Answer::only(done));
        }
        if let Some(sort) = controls.iter().find_map(|c| match c {
            LdapControl::ServerSort { sort_requests } => Some(sort_requests),
            _ => None,
        }) {
            sort_entries(&mut found, sort);
        }
        let paged = controls.iter().find_map(|c| match c {
            LdapControl::SimplePagedResults { size, cookie } => Some((*size, cookie.clone())),
            _ => None,
        });
        let mut controls_out = Vec::new();
        let (start, end) = match &paged {
            Some((size, cookie)) => {
                let start = std::str::from_utf8(cookie)
                    .ok()
                    .and_then(|c| c.parse::<usize>().ok())
                    .unwrap_or(0)
                    .min(found.len());
                let size = usize::try_from(*size).unwrap_or(0);
                // A size of 0 abandons the paged search (RFC 2696 §3).
                let end = if size == 0 {
                    start
                } else {
                    (start + size).min(found.len())
                };
                let cookie = if end < found.len() && size > 0 {
                    end.to_string().into_bytes()
                } else {
                    Vec::new()
                };
                controls_out.push(LdapControl::SimplePagedResults {
                    size: found.len() as i64,
                    cookie,
                });
                (start, end)
            }
            None => {
                if found.len() > limit {
                    truncated = true;
                }
                (0, found.len().min(limit))
            }
        };
        let done = if truncated && (paged.is_none() || end == found.len()) {
            result(
                LdapResultCode::SizeLimitExceeded,
                &format!(
                    "more entries match than the {} sent: narrow the search",
                    end - start
                ),
            )
        } else {
            success()
        };
        let mut page: Vec<(Uuid, Entry)> = found.drain(start..end).collect();
        if only.is_none() && selected(&request.attrs, "manager") {
            self.add_managers(&mut page, principal).await?;
        }
        let people = page.iter().map(|(id, _)| *id).collect();
        // Photos only when asked for by name: they are large, and most lookups want a number.
        let photo_names: Vec<&str> = ["jpegPhoto", "thumbnailPhoto"]
            .into_iter()
            .filter(|name| request.attrs.iter().any(|a| a.eq_ignore_ascii_case(name)))
            .collect();
        let mut entries = Vec::with_capacity(page.len());
        for (_, entry) in page {
            let photo = match (&entry.photo, photo_names.is_empty()) {
                (Some(digest), false) => {
                    sqlx::query_scalar::<_, Vec<u8>>("SELECT bytes FROM photos WHERE digest = $1")
                        .bind(digest)
                        .fetch_optional(&self.state.pool)
                        .await?
                }
                _ => None,
            };
            let mut wired = wire_entry(entry, &request.attrs, request.typesonly);
            if let Some(bytes) = photo {
                for name in &photo_names {
                    wired.attributes.push(LdapPartialAttribute {
                        atype: name.to_string(),
                        vals: if request.typesonly {
                            Vec::new()
                        } else {
                            vec![bytes.clone()]
                        },
                    });
                }
            }
            entries.push(wired);
        }
        Ok(Answer {
            entries,
            done,
            controls: controls_out,
            people,
        })
    }

    /// Up to `want` entries matching the filter, found through the index a page of candidates
    /// at a time (a phone's "smi*" among a million people costs a page, not every Smith).
    async fn find(
        &self,
        request: &LdapSearchRequest,
        principal: &Principal,
        want: usize,
    ) -> Result<Vec<(Uuid, Entry)>> {
        let within = principal.policy.within();
        // A partner finds people only by what it may see.
        let searchable = if principal.partner.is_some() {
            principal.policy.searchable()
        } else {
            Default::default()
        };
        let search = |q: &str, limit: usize, offset: usize| {
            let mut req = SearchRequest {
                q: q.to_string(),
                limit,
                offset,
                ..SearchRequest::default()
            };
            req.filters.within = within.clone();
            req.filters.searchable = searchable;
            self.state.index.search_with(&req)
        };
        // Each source of candidates: the people with a number ending so, or a search.
        let queries: Vec<(bool, String)> = match filter::candidates(&request.filter) {
            Candidates::Nothing => return Ok(Vec::new()),
            // Everyone, alphabetically.
            Candidates::Everyone => vec![(false, String::new())],
            Candidates::Searches(queries) => queries.into_iter().map(|q| (false, q)).collect(),
            Candidates::Ending(digits) => vec![(true, digits.clone()), (false, digits)],
        };
        let mut approximate = Vec::new();
        filter::approximate_values(&request.filter, &mut approximate);
        let mut approx = Approximate::default();
        for value in approximate {
            let found: HashSet<Uuid> = search(&value, self.config.max_results.max(1), 0)?
                .hits
                .into_iter()
                .map(|h| h.id)
                .collect();
            approx.found.push((value, found));
        }
        // Most candidates match (the index found them by the same words): a page a little
        // larger than what is wanted, then more if the filter turned some down.
        let page = (want + want / 4 + 5).min(500);
        // A filter on the manager needs each candidate's manager, which only PostgreSQL has.
        let by_manager = filter::reads(&request.filter, "manager");
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        'queries: for (ending, q) in queries {
            let mut offset = 0;
            loop {
                let results = if ending {
                    self.state.index.by_phone_ending(&q, page, offset)?
                } else {
                    search(&q, page, offset)?.hits
                };
                let hits = results.len();
                let mut fresh: Vec<PersonSummary> =
                    results.into_iter().filter(|h| seen.insert(h.id)).collect();
                let mut entries = if by_manager {
                    let ids: Vec<Uuid> = fresh.iter().map(|h| h.id).collect();
                    self.entries(&ids, principal).await?
                } else {
                    // From the index alone: no round trip to PostgreSQL per page (managers
                    // are added to the entries sent).
                    self.state.presence.decorate_summaries(&mut fresh);
                    fresh
                        .into_iter()
                        .filter_map(|hit| principal.policy.summary(hit))
                        .map(|hit| self.entry_of(&crate::domain::Person::from(hit), principal))
                        .collect()
                };
                entries.retain(|(id, entry)| {
                    filter::matches(&request.filter, entry, id, &approx) == Some(true)
                });
                found.extend(entries);
                if found.len() >= want {
                    found.truncate(want);
                    break 'queries;
                }
                offset += page;
                // To the end of the candidates, as far as search paging goes: the best-ranked
                // ones may all be other readings of the words ("wei" also finds 王伟, whose
                // cn does not start with it).
                if hits < page || offset > crate::http::people::MAX_OFFSET {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Sets the `manager` of entries built from the index, when the caller may see managers.
    async fn add_managers(&self, page: &mut [(Uuid, Entry)], principal: &Principal) -> Result<()> {
        if page.is_empty() || !principal.policy.shows(crate::access::PersonField::Manager) {
            return Ok(());
        }
        let ids: Vec<Uuid> = page.iter().map(|(id, _)| *id).collect();
        let managers: std::collections::HashMap<Uuid, Uuid> = sqlx::query_as::<_, (Uuid, Uuid)>(
            "SELECT p.id, m.id FROM people p JOIN people m ON m.id = p.manager_id \
             AND m.deleted_at IS NULL WHERE p.id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&self.state.pool)
        .await?
        .into_iter()
        .collect();
        for (id, entry) in page {
            if let (Some(manager), Some(attr)) = (
                managers.get(id),
                entry.attributes.iter_mut().find(|a| a.name == "manager"),
            ) {
                if attr.values.is_empty() {
                    attr.values
                        .push(super::entry::person_dn(manager, &self.config.base_dn));
                }
            }
        }
        Ok(())
    }

    /// Why a partner may not run this search: it would list everyone, or it asks for less
    /// than `[partners] min_query_chars`.
    fn partner_refusal(&self, filter: &LdapFilter) -> Option<LdapResult> {
        let min = self.state.access.partners.min_query_chars;
        let short = |q: &str| crate::access::partners::query_length(q) < min;
        let refused = match filter::candidates(filter) {
            Candidates::Everyone => true,
            Candidates::Searches(queries) => queries.iter().any(|q| short(q)),
            Candidates::Ending(digits) => short(&digits),
            Candidates::Nothing => false,
        };
        refused.then(|| {
            result(
                LdapResultCode::UnwillingToPerform,
                &format!("partners search the directory, they do not list it: filter on a name, email or number of at least {min} characters"),
            )
        })
    }

    /// Counts a partner's searches for sweep detection, as `/shared/v1` does.
    fn note_partner_queries(&self, principal: &Principal, filter: &LdapFilter) {
        let Some(partner) = &principal.partner else {
            return;
        };
        let queries = match filter::candidates(filter) {
            Candidates::Searches(queries) => queries,
            Candidates::Ending(digits) => vec![digits],
            _ => Vec::new(),
        };
        for q in queries {
            self.state.access.note_partner_query(partner, &q, "ldap");
        }
    }

    /// An entry as `principal` sees it: under a partner's own id for the person.
    fn entry_of(&self, person: &crate::domain::Person, principal: &Principal) -> (Uuid, Entry) {
        match &principal.partner {
            Some(partner) => {
                let mut shown = person.clone();
                shown.id = partner.public_id(person.id);
                (person.id, Entry::of(&shown, &self.config.base_dn))
            }
            None => (person.id, Entry::of(person, &self.config.base_dn)),
        }
    }

    /// The entries of these people as `principal` may see them (out of scope: absent), in
    /// order.
    async fn entries(&self, ids: &[Uuid], principal: &Principal) -> Result<Vec<(Uuid, Entry)>> {
        let people = crate::db::people::get_many(&self.state.pool, ids).await?;
        let mut out = Vec::with_capacity(people.len());
        for mut person in people {
            self.state.presence.decorate_person(&mut person);
            let Some(person) = principal.policy.person(person) else {
                continue;
            };
            out.push(self.entry_of(&person, principal));
        }
        Ok(out)
    }

    /// A fixed entry (rootDSE, schema, the base) when the filter lets it through.
    fn fixed(&self, entry: Entry, request: &LdapSearchRequest) -> Answer {
        let shown = match &request.filter {
            LdapFilter::Present(a) if a.eq_ignore_ascii_case("objectClass") => true,
            LdapFilter::Equality(a, v) if a.eq_ignore_ascii_case("objectClass") => {
                entry.attributes.iter().any(|attr| {
                    attr.name == "objectClass"
                        && attr.values.iter().any(|x| x.eq_ignore_ascii_case(v))
                })
            }
            _ => false,
        };
        if !shown {
            return Answer::only(success());
        }
        let mut answer = Answer::only(success());
        answer
            .entries
            .push(wire_fixed(entry, &request.attrs, request.typesonly));
        answer
    }

    fn root_dse(&self) -> Entry {
        let mut extensions = vec![OID_WHOAMI.to_string()];
        if self.tls.is_some() {
            extensions.push(OID_STARTTLS.into());
        }
        fixed_entry(
            "",
            vec![
                ("objectClass", vec!["top".into()]),
                ("namingContexts", vec![self.config.base_dn.clone()]),
                ("defaultNamingContext", vec![self.config.base_dn.clone()]),
                ("supportedLDAPVersion", vec!["3".into()]),
                ("supportedControl", vec![OID_PAGED.into(), OID_SORT.into()]),
                ("supportedExtension", extensions),
                ("supportedSASLMechanisms", vec![]),
                ("subschemaSubentry", vec!["cn=Subschema".into()]),
                ("vendorName", vec!["Switchboard".into()]),
                ("vendorVersion", vec![env!("CARGO_PKG_VERSION").into()]),
            ],
        )
    }

    fn base_entry(&self) -> Entry {
        let rdn = self.config.base_dn.split(',').next().unwrap_or_default();
        let (kind, value) = rdn.split_once('=').unwrap_or(("ou", "people"));
        fixed_entry(
            &self.config.base_dn,
            vec![
                (
                    "objectClass",
                    vec!["top".into(), "organizationalUnit".into()],
                ),
                (leak_name(kind.trim()), vec![value.trim().to_string()]),
            ],
        )
    }
}

fn read_only() -> LdapResult {
    result(
        LdapResultCode::UnwillingToPerform,
        "this directory is read-only: change people in their source",
    )
}

/// The account a bind DN names: the value of its first RDN (`cn=desk-1,ou=devices,…` →
/// `desk-1`, `uid=jane,…` → `jane`), or the whole name when it is not a DN.
fn account_of(dn: &str) -> String {
    let first = dn.split(',').next().unwrap_or_default();
    match first.split_once('=') {
        Some((_, value)) if dn.contains('=') => value.trim().to_string(),
        _ => dn.trim().to_string(),
    }
}

/// The attribute names used by fixed entries (a few, known at compile time, plus the base's
/// RDN type, which is `ou`, `cn`, `o` or `dc` in practice).
fn leak_name(name: &str) -> &'static str {
    match name.to_ascii_lowercase().as_str() {
        "cn" => "cn",
        "o" => "o",
        "dc" => "dc",
        _ => "ou",
    }
}

fn fixed_entry(dn: &str, attributes: Vec<(&'static str, Vec<String>)>) -> Entry {
    Entry {
        photo: None,
        dn: dn.to_string(),
        attributes: attributes
            .into_iter()
            .map(|(name, values)| super::entry::Attribute {
                name,
                phone_keys: Vec::new(),
                values,
            })
            .collect(),
    }
}

/// The subschema subentry: what clients read to learn our two own attributes.
fn schema_entry() -> Entry {
    let classes = [
        "( 2.5.6.0 NAME 'top' ABSTRACT MUST objectClass )",
        "( 2.5.6.6 NAME 'person' SUP top STRUCTURAL MUST ( sn $ cn ) MAY ( telephoneNumber $ description ) )",
        "( 2.5.6.7 NAME 'organizationalPerson' SUP person STRUCTURAL MAY ( title $ ou $ l $ physicalDeliveryOfficeName $ facsimileTelephoneNumber ) )",
        "( 2.16.840.1.113730.3.2.2 NAME 'inetOrgPerson' SUP organizationalPerson STRUCTURAL MAY ( displayName $ givenName $ mail $ mobile $ homePhone $ manager $ o $ uid $ department $ ipPhone $ nickname $ switchboardPresence ) )",
        "( 2.5.6.5 NAME 'organizationalUnit' SUP top STRUCTURAL MUST ou )",
        "( 1.2.840.113556.1.5.9 NAME 'user' SUP organizationalPerson STRUCTURAL MAY ( objectCategory ) )",
    ];
    fixed_entry(
        "cn=Subschema",
        vec![
            (
                "objectClass",
                vec!["top".into(), "subentry".into(), "subschema".into()],
            ),
            ("cn", vec!["Subschema".into()]),
            ("attributeTypes", super::entry::attribute_types()),
            ("objectClasses", classes.map(String::from).to_vec()),
        ],
    )
}

/// Which attributes a search asked for: all user attributes (none listed, or `*`), none
/// (`1.1`), or those named.
fn selected(attrs: &[String], name: &str) -> bool {
    if attrs.is_empty() || attrs.iter().any(|a| a == "*") {
        return true;
    }
    attrs.iter().any(|a| {
        a.eq_ignore_ascii_case(name) || attribute(a).is_some_and(|(canonical, _)| canonical == name)
    })
}

fn wire_entry(entry: Entry, attrs: &[String], types_only: bool) -> LdapSearchResultEntry {
    LdapSearchResultEntry {
        dn: entry.dn,
        attributes: entry
            .attributes
            .into_iter()
            .filter(|a| !a.values.is_empty() && selected(attrs, a.name))
            .map(|a| LdapPartialAttribute {
                atype: a.name.to_string(),
                vals: if types_only {
                    Vec::new()
                } else {
                    a.values.into_iter().map(String::into_bytes).collect()
                },
            })
            .collect(),
    }
}

/// Fixed entries answer `+` (operational attributes) too: the rootDSE is read with it.
fn wire_fixed(entry: Entry, attrs: &[String], types_only: bool) -> LdapSearchResultEntry {
    let all = attrs.is_empty() || attrs.iter().any(|a| a == "*" || a == "+");
    let attrs: Vec<String> = if all { Vec::new() } else { attrs.to_vec() };
    wire_entry(entry, &attrs, types_only)
}

/// RFC 2891: by the first value of each key's attribute, in turn; entries without a value
/// last.
fn sort_entries(entries: &mut [(Uuid, Entry)], keys: &[ldap3_proto::control::ServerSortRequet]) {
    let keys: Vec<(&'static str, bool)> = keys
        .iter()
        .filter_map(|k| attribute(&k.attribute_name).map(|(name, _)| (name, k.reverse_order)))
        .collect();
    if keys.is_empty() {
        return;
    }
    entries.sort_by(|(_, a), (_, b)| {
        for (name, reverse) in &keys {
            let value = |e: &Entry| {
                e.get(name).and_then(|attr| {
                    attr.keys()
                        .into_iter()
                        .next()
                        .and_then(|k| k.into_iter().next())
                })
            };
            let ordering = match (value(a), value(b)) {
                (Some(x), Some(y)) => {
                    let o = x.cmp(&y);
                    if *reverse {
                        o.reverse()
                    } else {
                        o
                    }
                }
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            if ordering != std::cmp::Ordering::Equal {
                return ordering;
            }
        }
        std::cmp::Ordering::Equal
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_names_are_read_from_their_first_rdn() {
        assert_eq!(
            account_of("cn=desk-1,ou=devices,dc=example,dc=com"),
            "desk-1"
        );
        assert_eq!(account_of("uid=jane, ou=people"), "jane");
        assert_eq!(account_of("reception"), "reception");
        assert_eq!(account_of("jane@example.com"), "jane@example.com");
    }
}
