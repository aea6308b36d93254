//! Searching partners' directories from our side: `[[federation.peers]]` names a partner's
//! Switchboard (or anything serving `/shared/v1`) and the key it gave us. A staff search with
//! `peers=all` (or a peer's name) asks every peer in parallel while our own search runs; each
//! peer has `[federation] timeout` to answer, so a slow or failing peer never holds our
//! results back longer than that, and its failure is a note beside them, not an error.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};
use crate::http::shared::{SharedPerson, SharedSearchResponse};

/// `[federation]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationConfig {
    /// How long each peer has to answer a search (`800ms`).
    pub timeout: String,
    pub peers: Vec<PeerConfig>,
}

impl Default for FederationConfig {
    fn default() -> Self {
        FederationConfig {
            timeout: "800ms".into(),
            peers: Vec::new(),
        }
    }
}

/// `[[federation.peers]]`: a partner directory we may search.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// What our staff see results labelled with, and ask for (`peers=NAME`).
    pub name: String,
    /// Where its shared directory is served (`https://directory.partner.example`).
    pub url: String,
    /// The key the partner gave us, or a file holding it (read at each search, so it can be
    /// rotated without a restart).
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl FederationConfig {
    pub fn timeout(&self) -> Result<Duration> {
        humantime::parse_duration(&self.timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                Error::Config(format!(
                    "federation.timeout: `{}` is not a duration like 800ms",
                    self.timeout
                ))
            })
    }

    pub fn check(&self) -> Result<()> {
        self.timeout()?;
        let mut names = std::collections::HashSet::new();
        for peer in &self.peers {
            if !names.insert(peer.name.to_lowercase()) {
                return Err(Error::Config(format!(
                    "federation.peers: `{}` is named twice",
                    peer.name
                )));
            }
            if peer.name.is_empty() || peer.name.eq_ignore_ascii_case("all") {
                return Err(Error::Config(format!(
                    "federation.peers: `{}` cannot be a peer's name",
                    peer.name
                )));
            }
            if !(peer.url.starts_with("http://") || peer.url.starts_with("https://")) {
                return Err(Error::Config(format!(
                    "federation.peers.{}: url `{}` is not http(s)",
                    peer.name, peer.url
                )));
            }
            if peer.key.is_some() == peer.key_file.is_some() {
                return Err(Error::Config(format!(
                    "federation.peers.{}: give `key` or `key_file` (one of them)",
                    peer.name
                )));
            }
        }
        Ok(())
    }
}

/// What one peer answered, or why it did not.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PeerResults {
    pub peer: String,
    /// Their people, labelled with their company (`organization`), best first.
    pub items: Vec<SharedPerson>,
    /// They have more matches than they sent.
    #[serde(default)]
    pub more: bool,
    /// Why there are no results from them (timed out, refused, unreachable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub elapsed_ms: u64,
}

/// The peers and a client to ask them.
pub struct Federation {
    peers: Vec<PeerConfig>,
    timeout: Duration,
    client: reqwest::Client,
}

impl Federation {
    pub fn new(config: &FederationConfig) -> Result<Federation> {
        config.check()?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(500))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Internal(e.into()))?;
        Ok(Federation {
            peers: config.peers.clone(),
            timeout: config.timeout()?,
            client,
        })
    }

    pub fn names(&self) -> Vec<String> {
        self.peers.iter().map(|p| p.name.clone()).collect()
    }

    /// The peers `which` names (`all`, or names separated by commas), and the names that are
    /// no configured peer (answered as notes).
    pub fn select(&self, which: &str) -> (Vec<PeerConfig>, Vec<String>) {
        if which.trim().eq_ignore_ascii_case("all") {
            return (self.peers.clone(), Vec::new());
        }
        let mut found = Vec::new();
        let mut unknown = Vec::new();
        for name in which.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match self
                .peers
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case(name))
            {
                Some(peer) if !found.iter().any(|p: &PeerConfig| p.name == peer.name) => {
                    found.push(peer.clone())
                }
                Some(_) => {}
                None if unknown.len() < 10 => unknown.push(name.chars().take(64).collect()),
                None => {}
            }
        }
        (found, unknown)
    }

    /// The note for a name that is no configured peer.
    pub fn unknown(name: String) -> PeerResults {
        PeerResults {
            peer: name,
            items: Vec::new(),
            more: false,
            note: Some("no such peer is configured".into()),
            elapsed_ms: 0,
        }
    }

    /// Asks each peer in parallel; every answer (or note) within the timeout.
    pub async fn search(&self, peers: &[PeerConfig], q: &str, limit: usize) -> Vec<PeerResults> {
        let asks = peers.iter().map(|peer| async move {
            let started = Instant::now();
            let answer = tokio::time::timeout(self.timeout, self.ask(peer, q, limit)).await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match answer {
                Ok(Ok(found)) => PeerResults {
                    peer: peer.name.clone(),
                    items: found.items,
                    more: found.more,
                    note: None,
                    elapsed_ms,
                },
                Ok(Err(why)) => {
                    tracing::warn!(peer = %peer.name, %why, "federated search failed");
                    PeerResults {
                        peer: peer.name.clone(),
                        items: Vec::new(),
                        more: false,
                        note: Some(why),
                        elapsed_ms,
                    }
                }
                Err(_) => PeerResults {
                    peer: peer.name.clone(),
                    items: Vec::new(),
                    more: false,
                    note: Some(format!(
                        "did not answer within {} ms",
                        self.timeout.as_millis()
                    )),
                    elapsed_ms,
                },
            }
        });
        futures_util::future::join_all(asks).await
    }

    async fn ask(
        &self,
        peer: &PeerConfig,
        q: &str,
        limit: usize,
    ) -> std::result::Result<SharedSearchResponse, String> {
        let key = key_of(peer).await?;
        let url = format!("{}/shared/v1/people", peer.url.trim_end_matches('/'));
        let response = self
            .client
            .get(&url)
            .bearer_auth(key)
            // Within a peer's cap (20 unless it says otherwise): more would be refused.
            .query(&[("q", q), ("limit", &limit.min(20).to_string())])
            .send()
            .await
            .map_err(|e| format!("unreachable: {}", without_url(&e)))?;
        let status = response.status();
        if !status.is_success() {
            // Their problem+json says why (too short a query, our key refused, their quota).
            let detail = response
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v["detail"].as_str().map(str::to_string))
                .unwrap_or_default();
            return Err(format!("answered {status}: {detail}")
                .trim_end_matches(": ")
                .to_string());
        }
        response.json::<SharedSearchResponse>().await.map_err(|e| {
            format!(
                "answered something other than a shared search: {}",
                without_url(&e)
            )
        })
    }
}

impl Federation {
    /// The configured peer called `name`.
    pub fn peer(&self, name: &str) -> Option<&PeerConfig> {
        self.peers
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// Opens a peer's presence stream for its ids (as its search gave them): the response, to
    /// be relayed as it comes.
    pub async fn presence_stream(
        &self,
        peer: &PeerConfig,
        ids: &str,
    ) -> std::result::Result<reqwest::Response, String> {
        let key = key_of(peer).await?;
        let url = format!(
            "{}/shared/v1/presence/stream",
            peer.url.trim_end_matches('/')
        );
        let response = tokio::time::timeout(
            self.timeout,
            self.client
                .get(&url)
                .bearer_auth(key)
                .query(&[("ids", ids)])
                .send(),
        )
        .await
        .map_err(|_| format!("did not answer within {} ms", self.timeout.as_millis()))?
        .map_err(|e| format!("unreachable: {}", without_url(&e)))?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        Ok(response)
    }
}

/// The key a peer gave us: as configured, or read from its file now (a rotation needs no restart).
async fn key_of(peer: &PeerConfig) -> std::result::Result<String, String> {
    match (&peer.key, &peer.key_file) {
        (Some(k), _) => Ok(k.trim().to_string()),
        (None, Some(file)) => Ok(tokio::fs::read_to_string(file)
            .await
            .map_err(|e| format!("cannot read its key from {}: {e}", file.display()))?
            .trim()
            .to_string()),
        (None, None) => Err("no key configured".into()),
    }
}

/// reqwest's error without the URL (which would carry the query).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text
            .replace(&format!(" ({url})"), "")
            .replace(url.as_str(), "");
    }
    text
}
