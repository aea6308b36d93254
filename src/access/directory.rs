//! Staff sign-in by a bind against a configured LDAP / Active Directory source: the person is
//! found by `uid`, `sAMAccountName` or `mail` with the source's service account, then bound as
//! that DN with the password they typed; their groups give the role.

use serde::{Deserialize, Serialize};

use super::sessions::SignedIn;
use super::RoleGroups;
use crate::config::SourceConfig;
use crate::error::{Error, Result};
use crate::sources::ldap::{escape_filter_value, Flavor, LdapSettings};

/// `[access.ldap]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapLoginConfig {
    /// A `[[sources]]` entry of kind `ldap` or `active_directory`: its URL, TLS settings,
    /// service account, base DN and filter.
    pub source: String,
    /// Attributes a typed name is looked up by (default: `uid`, `mail` for OpenLDAP;
    /// `sAMAccountName`, `userPrincipalName`, `mail` for Active Directory).
    #[serde(default)]
    pub login_attributes: Vec<String>,
    /// Where groups live, for directories without `memberOf` (groups naming the person by
    /// `member`, `uniqueMember` or `memberUid` count). With `memberOf`, it is read too.
    pub group_base_dn: Option<String>,
    /// Which groups give which role.
    #[serde(default)]
    pub roles: RoleGroups,
}

pub struct LdapLogin {
    settings: LdapSettings,
    login_attributes: Vec<String>,
    group_base_dn: Option<String>,
    roles: RoleGroups,
}

impl LdapLogin {
    pub fn new(config: &LdapLoginConfig, sources: &[SourceConfig]) -> Result<LdapLogin> {
        let source = sources
            .iter()
            .find(|s| s.name == config.source && s.is_directory())
            .ok_or_else(|| {
                Error::Config(format!(
                    "access.ldap.source: no source `{}` of kind ldap or active_directory",
                    config.source
                ))
            })?;
        let settings = LdapSettings::from_config(source)?;
        let login_attributes = if config.login_attributes.is_empty() {
            match settings.flavor {
                Flavor::OpenLdap => vec!["uid".into(), "mail".into()],
                Flavor::ActiveDirectory => vec![
                    "sAMAccountName".into(),
                    "userPrincipalName".into(),
                    "mail".into(),
                ],
            }
        } else {
            config.login_attributes.clone()
        };
        Ok(LdapLogin {
            settings,
            login_attributes,
            group_base_dn: config.group_base_dn.clone(),
            roles: config.roles.clone(),
        })
    }

    /// The person's identity when `login` names exactly one entry and `password` binds as it;
    /// `None` for an unknown name, an ambiguous one, a wrong password, or someone in no group
    /// that gives a role. A directory that cannot be reached is an error, not a refusal.
    pub async fn authenticate(&self, login: &str, password: &str) -> Result<Option<SignedIn>> {
        let login = login.trim();
        if login.is_empty() || password.is_empty() {
            return Ok(None);
        }
        let value = escape_filter_value(login);
        let any: String = self
            .login_attributes
            .iter()
            .map(|a| format!("({a}={value})"))
            .collect();
        let filter = format!("(&{}(|{any}))", self.settings.filter);
        let mut ldap = self.settings.connect().await?;
        let mut found = self
            .settings
            .search_entries(
                &mut ldap,
                &self.settings.base_dn,
                &filter,
                vec!["memberOf", "mail", "displayName", "cn", "uid"],
            )
            .await?;
        if found.len() != 1 {
            let _ = ldap.unbind().await;
            return Ok(None);
        }
        let entry = found.remove(0);
        if !self.settings.check_password(&entry.dn, password).await? {
            let _ = ldap.unbind().await;
            return Ok(None);
        }
        let first = |name: &str| {
            entry
                .attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.first().cloned())
        };
        let mut groups: Vec<String> = entry
            .attrs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("memberOf"))
            .flat_map(|(_, v)| v.iter().cloned())
            .collect();
        if let Some(base) = &self.group_base_dn {
            let dn = escape_filter_value(&entry.dn);
            let uid = first("uid").map(|u| format!("(memberUid={})", escape_filter_value(&u)));
            let filter = format!(
                "(|(member={dn})(uniqueMember={dn}){})",
                uid.unwrap_or_default()
            );
            let entries = self
                .settings
                .search_entries(&mut ldap, base, &filter, vec!["cn"])
                .await?;
            groups.extend(entries.into_iter().map(|g| g.dn));
        }
        let _ = ldap.unbind().await;
        let Some(role) = self.roles.role_of(&groups) else {
            tracing::info!(dn = %entry.dn, "directory sign-in refused: in no group with a role");
            return Ok(None);
        };
        let email = first("mail").map(|m| m.to_lowercase());
        Ok(Some(SignedIn {
            subject: format!("ldap:{}:{}", self.settings.name, entry.dn.to_lowercase()),
            display_name: first("displayName")
                .or_else(|| first("cn"))
                .unwrap_or_else(|| login.to_string()),
            role,
            method: "ldap",
            email,
        }))
    }
}
