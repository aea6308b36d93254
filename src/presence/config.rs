//! `[presence]` and `[[presence.backends]]`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PresenceConfig {
    pub backends: Vec<BackendConfig>,
    /// The demo company's simulated presence (`switchboard demo` with no backends configured);
    /// no config file can ask for it.
    #[serde(skip)]
    pub simulated: bool,
}

/// One presence backend. `kind` picks the implementation; the kind-specific keys it needs are
/// checked by [`BackendConfig::validate`]. Secrets are never serialized and show as
/// `<redacted>` in Debug output.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    pub name: String,
    /// `xmpp`, `matrix`, `webhook`, `graph` or `slack`.
    pub kind: String,
    /// URI schemes of a person's IM handles this backend reads (default by kind: xmpp → `xmpp`,
    /// graph → `msteams`, slack → `slack`, matrix → `matrix`, webhook → `sip`, `tel`).
    #[serde(default)]
    pub schemes: Option<Vec<String>>,
    /// A handle made from the person's attributes, e.g. `xmpp:{uid}@corp.example`. Placeholders:
    /// `{uid}` / `{external_id}` (their id in their first source), `{email}`, `{email_local}`,
    /// `{given_name}`, `{family_name}`, `{id}`; lower-cased. People lacking one get no handle.
    #[serde(default)]
    pub handle: Option<String>,
    /// Seconds a reported state stays valid without news (default: 86400 for push backends, 3 ×
    /// the poll interval for polled ones).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    /// Seconds one call to the backend may take before its channels turn `unknown` (default 3).
    #[serde(default)]
    pub timeout_secs: Option<f64>,
    /// Seconds between polls of polled backends (default 30).
    #[serde(default)]
    pub poll_interval_secs: Option<f64>,

    // webhook
    /// Bearer token the webhook's callers present.
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
    /// Read `token` from this file instead (trailing newline ignored); likewise
    /// `password_file`, `access_token_file` and `client_secret_file`.
    #[serde(default)]
    pub token_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub password_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub access_token_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub client_secret_file: Option<std::path::PathBuf>,

    // xmpp
    /// The service account, e.g. `switchboard@corp.example`.
    #[serde(default)]
    pub jid: Option<String>,
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// `host:port` to connect to (default: the JID's domain, port 5222).
    #[serde(default)]
    pub server: Option<String>,
    /// Ask tracked people for a presence subscription when the roster lacks one (default true;
    /// turn off when the server shares rosters by group).
    #[serde(default)]
    pub subscribe: Option<bool>,
    /// Seconds between XEP-0199 pings to the server (default 30); a ping unanswered within
    /// `timeout_secs` drops the connection and reconnects.
    #[serde(default)]
    pub ping_secs: Option<f64>,
    /// Allow SASL PLAIN (the password in clear) over plain TCP to a server that is not on
    /// loopback (default false).
    #[serde(default)]
    pub allow_plaintext: Option<bool>,
    /// How the XMPP stream is encrypted: `starttls` (default: RFC 6120 STARTTLS, required off
    /// loopback unless `allow_plaintext`), `direct` (XEP-0368 TLS from the first byte, default
    /// port 5223) or `none`. The server's certificate must name the JID's domain.
    #[serde(default)]
    pub tls: Option<super::xmpp::XmppTls>,
    /// PEM file of the CA(s) that sign the server's certificate (default: the system's).
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,

    // matrix
    /// Homeserver base URL, e.g. `https://matrix.example.org`.
    #[serde(default)]
    pub homeserver: Option<String>,
    /// Access token of the directory's Matrix account.
    #[serde(default, skip_serializing)]
    pub access_token: Option<String>,

    // graph / slack
    /// API base URL (default `https://graph.microsoft.com/v1.0`, `https://slack.com/api`).
    #[serde(default)]
    pub api_url: Option<String>,
    /// OAuth2 token endpoint (default `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`).
    #[serde(default)]
    pub token_url: Option<String>,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing)]
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("BackendConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("schemes", &self.schemes)
            .field("handle", &self.handle)
            .field("ttl_secs", &self.ttl_secs)
            .field("timeout_secs", &self.timeout_secs)
            .field("poll_interval_secs", &self.poll_interval_secs)
            .field("token", &secret(&self.token))
            .field("jid", &self.jid)
            .field("password", &secret(&self.password))
            .field("server", &self.server)
            .field("subscribe", &self.subscribe)
            .field("ping_secs", &self.ping_secs)
            .field("allow_plaintext", &self.allow_plaintext)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("homeserver", &self.homeserver)
            .field("access_token", &secret(&self.access_token))
            .field("api_url", &self.api_url)
            .field("token_url", &self.token_url)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("client_secret", &secret(&self.client_secret))
            .finish()
    }
}

pub const KINDS: &[&str] = &["webhook", "xmpp", "matrix", "graph", "slack"];

impl BackendConfig {
    pub fn new(name: &str, kind: &str) -> BackendConfig {
        BackendConfig {
            name: name.into(),
            kind: kind.into(),
            schemes: None,
            handle: None,
            ttl_secs: None,
            timeout_secs: None,
            poll_interval_secs: None,
            token: None,
            token_file: None,
            password_file: None,
            access_token_file: None,
            client_secret_file: None,
            jid: None,
            password: None,
            server: None,
            subscribe: None,
            ping_secs: None,
            allow_plaintext: None,
            tls: None,
            ca_file: None,
            homeserver: None,
            access_token: None,
            api_url: None,
            token_url: None,
            tenant: None,
            client_id: None,
            client_secret: None,
        }
    }

    pub fn schemes(&self) -> Vec<String> {
        if let Some(schemes) = &self.schemes {
            return schemes.iter().map(|s| s.to_ascii_lowercase()).collect();
        }
        let defaults: &[&str] = match self.kind.as_str() {
            "xmpp" => &["xmpp"],
            "graph" => &["msteams"],
            "slack" => &["slack"],
            "matrix" => &["matrix"],
            "webhook" => &["sip", "tel"],
            _ => &[],
        };
        defaults.iter().map(|s| s.to_string()).collect()
    }

    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.timeout_secs.unwrap_or(3.0))
    }

    pub fn poll_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.poll_interval_secs.unwrap_or(30.0))
    }

    fn require(&self, key: &str, value: &Option<String>) -> Result<()> {
        match value {
            Some(v) if !v.trim().is_empty() => Ok(()),
            _ => Err(Error::Config(format!(
                "presence backend {}: kind {} needs `{key}`",
                self.name, self.kind
            ))),
        }
    }

    pub fn validate(&self) -> Result<()> {
        let fail = |why: String| {
            Err(Error::Config(format!(
                "presence backend {}: {why}",
                self.name
            )))
        };
        if self.name.trim().is_empty() {
            return Err(Error::Config("a presence backend has no name".into()));
        }
        if !KINDS.contains(&self.kind.as_str()) {
            return fail(format!(
                "unknown kind `{}` (known: {})",
                self.kind,
                KINDS.join(", ")
            ));
        }
        for value in [self.timeout_secs, self.poll_interval_secs, self.ping_secs]
            .into_iter()
            .flatten()
        {
            if !(value.is_finite() && value > 0.0 && value < 86_400.0) {
                return fail(
                    "timeout_secs, poll_interval_secs and ping_secs must be positive".into(),
                );
            }
        }
        if let Some(template) = &self.handle {
            if let Err(why) = super::directory::check_template(template) {
                return fail(why);
            }
        }
        match self.kind.as_str() {
            "webhook" => self.require("token", &self.token),
            "xmpp" => {
                self.require("jid", &self.jid)?;
                self.require("password", &self.password)?;
                let jid = self.jid.as_deref().unwrap_or_default();
                if !jid.contains('@') || jid.contains('/') {
                    return fail(format!("jid `{jid}` is not a bare JID (user@domain)"));
                }
                Ok(())
            }
            "graph" => {
                self.require("client_id", &self.client_id)?;
                self.require("client_secret", &self.client_secret)?;
                if self.token_url.is_none() {
                    self.require("tenant", &self.tenant)?;
                }
                Ok(())
            }
            "slack" => self.require("token", &self.token),
            "matrix" => {
                self.require("homeserver", &self.homeserver)?;
                self.require("access_token", &self.access_token)
            }
            _ => Ok(()),
        }
    }
}

impl PresenceConfig {
    /// Reads every `*_file` secret into its key (a file wins over the key).
    pub fn read_secret_files(&mut self) -> Result<()> {
        for b in &mut self.backends {
            for (key, file, value) in [
                ("token_file", &b.token_file, &mut b.token),
                ("password_file", &b.password_file, &mut b.password),
                (
                    "access_token_file",
                    &b.access_token_file,
                    &mut b.access_token,
                ),
                (
                    "client_secret_file",
                    &b.client_secret_file,
                    &mut b.client_secret,
                ),
            ] {
                if let Some(path) = file {
                    *value = Some(crate::config::read_secret(
                        &format!("presence backend {}: {key}", b.name),
                        path,
                    )?);
                }
            }
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        let mut names = std::collections::HashSet::new();
        for backend in &self.backends {
            backend.validate()?;
            if !names.insert(backend.name.as_str()) {
                return Err(Error::Config(format!(
                    "presence backend {} is declared twice",
                    backend.name
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_neither_shown_nor_serialized() {
        let mut b = BackendConfig::new("all", "graph");
        b.token = Some("webhook-s3cret".into());
        b.password = Some("xmpp-s3cret".into());
        b.access_token = Some("matrix-s3cret".into());
        b.client_secret = Some("graph-s3cret".into());
        b.client_id = Some("app-id".into());
        for shown in [format!("{b:?}"), serde_json::to_string(&b).expect("json")] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("app-id"), "{shown}");
        }
        assert!(format!("{b:?}").contains("<redacted>"));
    }

    #[test]
    fn kinds_need_their_keys() {
        let mut b = BackendConfig::new("pbx", "webhook");
        assert!(b.validate().is_err());
        b.token = Some("t0ken".into());
        b.validate().expect("valid");
        let mut x = BackendConfig::new("chat", "xmpp");
        x.jid = Some("svc@corp.example".into());
        assert!(x.validate().is_err(), "no password");
        x.password = Some("pw".into());
        x.validate().expect("valid");
        x.jid = Some("svc@corp.example/res".into());
        assert!(x.validate().is_err(), "full JID");
        assert!(BackendConfig::new("x", "icq").validate().is_err());
    }

    #[test]
    fn bad_templates_and_duplicates_are_refused() {
        let mut b = BackendConfig::new("pbx", "webhook");
        b.token = Some("t".into());
        b.handle = Some("sip:{nickname}@pbx".into());
        assert!(b.validate().is_err());
        b.handle = Some("sip:{uid}@pbx".into());
        b.validate().expect("valid");
        let config = PresenceConfig {
            backends: vec![b.clone(), b],
            ..Default::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn the_example_config_declares_valid_backends() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy/switchboard.example.toml");
        let config = crate::config::Config::load(Some(&path)).expect("example config loads");
        let kinds: Vec<&str> = config
            .presence
            .backends
            .iter()
            .map(|b| b.kind.as_str())
            .collect();
        assert_eq!(kinds, ["xmpp", "webhook"]);
    }

    #[test]
    fn schemes_default_by_kind() {
        assert_eq!(BackendConfig::new("a", "xmpp").schemes(), ["xmpp"]);
        assert_eq!(BackendConfig::new("a", "webhook").schemes(), ["sip", "tel"]);
        let mut b = BackendConfig::new("a", "webhook");
        b.schemes = Some(vec!["SIP".into()]);
        assert_eq!(b.schemes(), ["sip"]);
    }
}
