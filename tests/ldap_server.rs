//! The read-only LDAP server as devices use it, through OpenLDAP's own clients (`ldapsearch`,
//! `ldapwhoami`, `ldapdelete`, installed by `scripts/setup`): binds, the filters phones and mail
//! clients send, caller-ID lookups in any number format, paging, sorting, limits, StartTLS and
//! LDAPS, the policy's scope, refused writes and the audit trail.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::{options, TestApp};
use switchboard::access::policy::Policy;
use switchboard::addressbook::ldap::{LdapServer, LdapServerConfig};
use switchboard::config::Config;

const BASE: &str = "ou=people,dc=example,dc=com";
const DEVICE_DN: &str = "cn=desk-1,ou=devices,dc=example,dc=com";

const PEOPLE: &str = "\
external_id,given_name,family_name,email,phone,mobile,extension,title,department,location,nickname,manager_email
1,Jane,Smith,jane.smith@example.com,+44 20 7946 0018,+44 7400 123456,,Head of Sales,Sales,London,,
2,Janet,Jones,janet.jones@example.com,+44 20 7946 0019,,4711,Account Manager,Sales,London,,jane.smith@example.com
3,Jürgen,Müller,juergen.mueller@example.com,+49 30 901820,,,Engineer,Engineering,Berlin,,
4,Margaret,Hughes,margaret.hughes@example.com,+44 20 7946 0020,,,Office Manager,Facilities,London,Peggy,
5,Olga,Petrova,olga.petrova@example.com,+7 495 123 4567,,,Analyst,Finance,Moscow,,
6,Jan,Novák,jan.novak@example.com,+420 222 123 456,,,Engineer,Engineering,Prague,,
";

struct Server {
    app: TestApp,
    url: String,
    ldaps: String,
    ca: PathBuf,
    password: String,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::watch::Sender<bool>,
}

async fn server(config: Config, allow_anonymous: bool, anonymous_policy: Option<Policy>) -> Server {
    let mut app = TestApp::with(config, switchboard::presence::PresenceHub::disabled()).await;
    let report = app
        .import_csv(PEOPLE, &options("hr"))
        .await
        .expect("import");
    assert_eq!(report.counts.added, 6, "{:?}", report.rejects);
    let dir = tempfile::tempdir().expect("tmp");
    let issued = common::certs::issue(dir.path(), "ldap", "IP:127.0.0.1,DNS:localhost");
    let tls = switchboard::tls::TlsConfig {
        cert_file: issued.cert.clone(),
        key_file: issued.key.clone(),
        client_certificates: false,
    };
    let certs = switchboard::tls::Certificates::load(&tls).expect("certificate");
    let config = LdapServerConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        ldaps_listen: Some("127.0.0.1:0".parse().expect("address")),
        base_dn: BASE.into(),
        allow_anonymous,
        anonymous_policy,
        max_results: 500,
        tls: None,
    };
    let ldap = LdapServer::new(app.state.clone(), config, Some(certs)).expect("server");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let served = ldap.start(stopped).await.expect("listen");
    let password = app.device("desk-1").await;
    Server {
        app,
        url: served[0].0.clone(),
        ldaps: served[1].0.clone(),
        ca: issued.ca,
        password,
        _dir: dir,
        _stop: stop,
    }
}

/// Runs an OpenLDAP client; answers its exit status and standard output.
async fn run(tool: &str, args: &[&str], ca: Option<&Path>) -> (i32, String) {
    let mut command = tokio::process::Command::new(tool);
    command.args(args).env("LDAPTLS_REQCERT", "demand");
    // No ldap.conf of the machine: only what the test says (LDAPNOINIT would also drop the
    // LDAPTLS_* variables).
    command
        .env("LDAPCONF", "/dev/null")
        .env("LDAPRC", "/dev/null");
    if let Some(ca) = ca {
        command.env("LDAPTLS_CACERT", ca);
    }
    let out = command
        .output()
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

impl Server {
    /// `ldapsearch` without a bind.
    async fn anonymous(&self, filter: &str, attrs: &[&str]) -> (i32, String) {
        let mut args = vec!["-LLL", "-x", "-H", &self.url, "-b", BASE, filter];
        args.extend(attrs);
        run("ldapsearch", &args, None).await
    }

    /// `ldapsearch` at `url`, bound as the device, for the entries' `cn`; with `ca`, trusting
    /// that CA.
    async fn search_at(
        &self,
        url: &str,
        extra: &[&str],
        filter: &str,
        ca: Option<&Path>,
    ) -> (i32, String) {
        self.search_with(url, extra, filter, &["cn"], ca).await
    }

    async fn search_with(
        &self,
        url: &str,
        extra: &[&str],
        filter: &str,
        attrs: &[&str],
        ca: Option<&Path>,
    ) -> (i32, String) {
        let mut args = vec![
            "-LLL",
            "-x",
            "-H",
            url,
            "-D",
            DEVICE_DN,
            "-w",
            &self.password,
            "-b",
            BASE,
        ];
        args.extend(extra);
        args.push(filter);
        args.extend(attrs);
        run("ldapsearch", &args, ca).await
    }

    /// `ldapsearch` bound as the device, with extra arguments before the filter.
    async fn search(&self, extra: &[&str], filter: &str, attrs: &[&str]) -> (i32, String) {
        self.search_with(&self.url, extra, filter, attrs, None)
            .await
    }
}

/// The entries of an LDIF answer: DN → attribute → values (base64 values left encoded).
fn entries(ldif: &str) -> Vec<(String, HashMap<String, Vec<String>>)> {
    let mut out: Vec<(String, HashMap<String, Vec<String>>)> = Vec::new();
    let unfolded = ldif.replace("\n ", "");
    for line in unfolded.lines() {
        if let Some(dn) = line.strip_prefix("dn: ") {
            out.push((dn.to_string(), HashMap::new()));
        } else if let Some((name, value)) = line.split_once(": ") {
            // `cn:: …`: base64, for values that are not plain ASCII.
            let value = match name.strip_suffix(':') {
                Some(_) => {
                    use base64::Engine;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(value.trim())
                        .expect("base64");
                    String::from_utf8(bytes).expect("UTF-8")
                }
                None => value.to_string(),
            };
            if let Some((_, attrs)) = out.last_mut() {
                attrs
                    .entry(name.trim_end_matches(':').to_string())
                    .or_default()
                    .push(value);
            }
        }
    }
    out
}

fn names(ldif: &str) -> Vec<String> {
    let mut names: Vec<String> = entries(ldif)
        .into_iter()
        .filter_map(|(_, attrs)| attrs.get("cn").and_then(|v| v.first().cloned()))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn devices_bind_and_find_people_by_name_and_number() {
    let mut s = server(Config::default(), false, None).await;

    // The rootDSE is readable before a bind; it names the base and what we support.
    let (code, out) = run(
        "ldapsearch",
        &[
            "-LLL",
            "-x",
            "-H",
            &s.url,
            "-s",
            "base",
            "-b",
            "",
            "(objectClass=*)",
            "+",
            "*",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("namingContexts: {BASE}")), "{out}");
    assert!(
        out.contains("supportedControl: 1.2.840.113556.1.4.319"),
        "{out}"
    );
    assert!(
        out.contains("supportedExtension: 1.3.6.1.4.1.1466.20037"),
        "{out}"
    );

    // Anonymous, a wrong password and an unknown device are refused; nothing is listed.
    let (code, out) = run(
        "ldapsearch",
        &["-LLL", "-x", "-H", &s.url, "-b", BASE, "(cn=*)"],
        None,
    )
    .await;
    assert_eq!(code, 50, "insufficientAccess: {out}");
    assert!(!out.contains("dn: uid="), "{out}");
    let (code, out) = run(
        "ldapsearch",
        &[
            "-LLL", "-x", "-H", &s.url, "-D", DEVICE_DN, "-w", "wrong", "-b", BASE, "(cn=*)",
        ],
        None,
    )
    .await;
    assert_eq!(code, 49, "invalidCredentials: {out}");

    // A name typed on a phone: the entry carries what a phone shows and dials.
    let (code, out) = s.search(&[], "(|(cn=smi*)(sn=smi*))", &[]).await;
    assert_eq!(code, 0, "{out}");
    let found = entries(&out);
    assert_eq!(found.len(), 1, "{out}");
    let (dn, jane) = &found[0];
    assert!(dn.starts_with("uid=") && dn.ends_with(BASE), "{dn}");
    assert_eq!(jane["cn"], ["Jane Smith"]);
    assert_eq!(jane["sn"], ["Smith"]);
    assert_eq!(jane["givenName"], ["Jane"]);
    assert_eq!(jane["telephoneNumber"], ["+442079460018"]);
    assert_eq!(jane["mobile"], ["+447400123456"]);
    assert_eq!(jane["mail"], ["jane.smith@example.com"]);
    assert_eq!(jane["title"], ["Head of Sales"]);
    assert_eq!(jane["department"], ["Sales"]);
    assert_eq!(jane["l"], ["London"]);
    assert!(jane["objectClass"].contains(&"inetOrgPerson".to_string()));

    // Caller ID: a number in any format finds its owner; an extension too.
    for filter in [
        "(telephoneNumber=+442079460018)",
        "(telephoneNumber=020 7946 0018)",
        "(telephoneNumber=*0018)",
        "(|(telephoneNumber=+447400123456)(mobile=+447400123456))",
        "(mobile=07400 123456)",
    ] {
        let (code, out) = s.search(&[], filter, &["cn"]).await;
        assert_eq!(code, 0, "{filter}: {out}");
        assert_eq!(names(&out), ["Jane Smith"], "{filter}");
    }
    let (_, out) = s
        .search(
            &[],
            "(|(telephoneNumber=4711)(ipPhone=4711))",
            &["cn", "ipPhone"],
        )
        .await;
    assert_eq!(names(&out), ["Janet Jones"], "{out}");

    // Accents, other spellings, nicknames; an attribute we do not know is Undefined (RFC 4511
    // §4.5.1.7), not an error for the whole search.
    let (_, out) = s.search(&[], "(sn=mueller)", &["cn"]).await;
    assert_eq!(entries(&out).len(), 1, "{out}");
    let (_, out) = s.search(&[], "(nickname=peggy)", &["cn"]).await;
    assert_eq!(names(&out), ["Margaret Hughes"]);
    let (code, out) = s
        .search(&[], "(|(favouriteColour=blue)(givenName=janet))", &["cn"])
        .await;
    assert_eq!(
        (code, names(&out)),
        (0, vec!["Janet Jones".to_string()]),
        "{out}"
    );
    let (_, out) = s.search(&[], "(cn~=jnae smith)", &["cn"]).await;
    assert_eq!(names(&out), ["Jane Smith"], "approximate: typo-tolerant");

    // Photos go to clients that ask for them by name, and only to them.
    let digest = "0123456789abcdef0123456789abcdef";
    sqlx::query("INSERT INTO photos (digest, content_type, bytes) VALUES ($1, 'image/jpeg', $2)")
        .bind(digest)
        .bind(&b"\xff\xd8\xff\xe0 a tiny jpeg"[..])
        .execute(&s.app.db.pool)
        .await
        .expect("photo");
    // As a directory sync stores a photo: the row, and the change the indexer follows.
    sqlx::query("UPDATE people SET photo_url = $1 WHERE family_name = 'Smith'")
        .bind(format!("/api/v1/photos/{digest}"))
        .execute(&s.app.db.pool)
        .await
        .expect("photo url");
    sqlx::query(
        "INSERT INTO change_log (person_id, kind) SELECT id, 'updated' FROM people WHERE family_name = 'Smith'",
    )
    .execute(&s.app.db.pool)
    .await
    .expect("change");
    s.app.indexer.catch_up().await.expect("index");
    let (_, out) = s.search(&[], "(sn=Smith)", &["cn", "jpegPhoto"]).await;
    assert!(
        out.contains("jpegPhoto:: /9j/4CBhIHRpbnkganBlZw=="),
        "{out}"
    );
    let (_, out) = s.search(&[], "(sn=Smith)", &[]).await;
    assert!(!out.contains("jpegPhoto"), "{out}");

    // Managers as DNs, read for the entries sent; and found by them.
    let (_, out) = s.search(&[], "(sn=Smith)", &["cn"]).await;
    let jane_dn = entries(&out)[0].0.clone();
    let (_, out) = s.search(&[], "(sn=Jones)", &["manager"]).await;
    assert_eq!(
        entries(&out)[0].1["manager"],
        std::slice::from_ref(&jane_dn),
        "{out}"
    );
    let (_, out) = s
        .search(&[], &format!("(manager={jane_dn})"), &["cn"])
        .await;
    assert_eq!(names(&out), ["Janet Jones"], "{out}");

    // Only the attributes asked for.
    let (_, out) = s.search(&[], "(sn=Smith)", &["mail"]).await;
    let (_, jane) = &entries(&out)[0];
    assert_eq!(jane.keys().collect::<Vec<_>>(), ["mail"], "{out}");

    // Limits, paging (RFC 2696) and sorting (RFC 2891), as ldapsearch asks for them.
    let (code, out) = s
        .search(&["-z", "2"], "(objectClass=person)", &["cn"])
        .await;
    assert_eq!(code, 4, "sizeLimitExceeded: {out}");
    assert_eq!(entries(&out).len(), 2);
    let (code, out) = s
        .search(&["-E", "pr=2/noprompt"], "(objectClass=*)", &["cn"])
        .await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(entries(&out).len(), 6, "every page: {out}");
    let (code, out) = s
        .search(&["-E", "sss=sn"], "(objectClass=person)", &["sn"])
        .await;
    assert_eq!(code, 0, "{out}");
    let order: Vec<String> = entries(&out)
        .into_iter()
        .map(|(_, a)| a["sn"][0].clone())
        .collect();
    assert_eq!(order[..2], ["Hughes", "Jones"], "{order:?}");
    assert_eq!(order[5], "Smith", "{order:?}");

    // whoami, and writes refused.
    let (code, out) = run(
        "ldapwhoami",
        &["-x", "-H", &s.url, "-D", DEVICE_DN, "-w", &s.password],
        None,
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("dn:{DEVICE_DN}")), "{out}");
    let (code, out) = run(
        "ldapdelete",
        &[
            "-x",
            "-H",
            &s.url,
            "-D",
            DEVICE_DN,
            "-w",
            &s.password,
            &format!("uid=x,{BASE}"),
        ],
        None,
    )
    .await;
    assert_eq!(code, 53, "unwillingToPerform: {out}");

    // StartTLS and LDAPS with the test CA; a client that does not trust it is refused.
    let jane = (0, vec!["Jane Smith".to_string()]);
    let (code, out) = s
        .search_at(&s.url, &["-ZZ"], "(sn=Smith)", Some(&s.ca))
        .await;
    assert_eq!((code, names(&out)), jane, "StartTLS: {out}");
    let (code, out) = s.search_at(&s.ldaps, &[], "(sn=Smith)", Some(&s.ca)).await;
    assert_eq!((code, names(&out)), jane, "LDAPS: {out}");
    let (code, out) = s.search_at(&s.ldaps, &[], "(sn=Smith)", None).await;
    assert_ne!(code, 0, "an untrusted certificate: {out}");

    // Binds are audited, failed ones too; a device's searches as every device lookup is
    // (staff lookups are not audited in this configuration).
    let actions = s.app.audit_actions().await;
    assert!(
        actions.contains(&("device:desk-1".to_string(), "ldap.search".to_string())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("device:desk-1".to_string(), "ldap.bind".to_string())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&(
            "anonymous:desk-1".to_string(),
            "ldap.bind_failed".to_string()
        )),
        "{actions:?}"
    );
}

#[tokio::test]
async fn the_policy_scope_hides_people_as_if_they_did_not_exist() {
    let mut config = common::viewers_see_only(&["Sales"]);
    config.audit.staff_lookups = true;
    let mut s = server(config, true, None).await;

    let (code, out) = s.search(&[], "(objectClass=person)", &["cn"]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(names(&out), ["Jane Smith", "Janet Jones"]);
    let (_, out) = s.search(&[], "(sn=Hughes)", &["cn"]).await;
    assert!(entries(&out).is_empty(), "{out}");

    // An out-of-scope person's DN answers exactly as a DN nobody has.
    let (_, _, body) = s.app.get("/api/v1/people?q=hughes").await;
    let hughes = body["items"][0]["id"].as_str().expect("id").to_string();
    let hidden = format!("uid={hughes},{BASE}");
    let nobody = format!("uid=00000000-0000-0000-0000-000000000000,{BASE}");
    let mut answers = Vec::new();
    for dn in [&hidden, &nobody] {
        let (code, out) = run(
            "ldapsearch",
            &[
                "-LLL",
                "-x",
                "-H",
                &s.url,
                "-D",
                DEVICE_DN,
                "-w",
                &s.password,
                "-s",
                "base",
                "-b",
                dn,
                "(objectClass=*)",
            ],
            None,
        )
        .await;
        answers.push((code, out.replace(dn.as_str(), "DN")));
    }
    assert_eq!(answers[0].0, 32, "noSuchObject: {}", answers[0].1);
    assert_eq!(answers[0], answers[1]);

    // Anonymous binds, allowed here, see what a viewer sees.
    let (code, out) = s.anonymous("(objectClass=person)", &["cn"]).await;
    assert_eq!(
        (code, names(&out)),
        (0, vec!["Jane Smith".to_string(), "Janet Jones".to_string()])
    );

    // Staff lookups are audited here: the search, with the filter and who was returned.
    let actions = s.app.audit_actions().await;
    assert!(
        actions.contains(&("device:desk-1".to_string(), "ldap.search".to_string())),
        "{actions:?}"
    );
    let (query, people): (Option<String>, Vec<uuid::Uuid>) = sqlx::query_as(
        "SELECT query, people FROM audit_log WHERE action = 'ldap.search' AND query LIKE '%(sn=Hughes)%'",
    )
    .fetch_one(&s.app.db.pool)
    .await
    .expect("audited");
    assert!(query.is_some_and(|q| q.contains(BASE)));
    assert!(people.is_empty(), "nobody returned: {people:?}");
}

#[tokio::test]
async fn the_python_ldap3_client_binds_pages_sorts_and_is_refused_writes() {
    let s = server(Config::default(), false, None).await;
    let python =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp/addressbook-venv/bin/python");
    let script = common::fixture("ldap/ldap3_client.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .args([&s.url, DEVICE_DN, &s.password, BASE])
        .output()
        .await
        .unwrap_or_else(|e| panic!("{} (scripts/setup installs it): {e}", python.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(report["bound"], true);
    assert_eq!(report["naming_contexts"], serde_json::json!([BASE]));
    assert_eq!(report["whoami"], format!("dn:{DEVICE_DN}"));
    assert_eq!(
        report["paged_entries"],
        serde_json::json!([
            "Jan Novák",
            "Jane Smith",
            "Janet Jones",
            "Jürgen Müller",
            "Margaret Hughes",
            "Olga Petrova"
        ])
    );
    assert_eq!(
        report["sorted"],
        serde_json::json!(["Hughes", "Jones", "Müller", "Novák", "Petrova", "Smith"])
    );
    assert_eq!(report["caller"], serde_json::json!(["Jane Smith"]));
    assert_eq!(report["modify"], "unwillingToPerform");
    assert_eq!(report["wrong_password"], false);
    assert_eq!(report["wrong_password_result"], "invalidCredentials");
}

/// The filters desk phones and mail clients send (`tests/fixtures/ldap/device_filters.txt`, each
/// with its source), as typed "jan", a number's start, or an incoming caller's number.
#[tokio::test]
async fn the_filters_devices_send_find_whom_they_should() {
    let s = server(Config::default(), false, None).await;
    let fixture =
        std::fs::read_to_string(common::fixture("ldap/device_filters.txt")).expect("fixture");
    let mut checked = 0;
    for line in fixture
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let fields: Vec<&str> = line.split(" | ").collect();
        assert_eq!(fields.len(), 4, "{line}");
        let (client, expanded) = (fields[0], fields[3]);
        // Thunderbird drops the empty piece of "*jan**" before sending it (libldap refuses it).
        let mut filter = expanded.replace("**", "*");
        // A number typed on the keypad: the start of London numbers 020 7946 001x.
        filter = filter.replace("=0018*", "=020 7946 001*");
        let expected: &[&str] = if filter.contains("+442079460018") {
            &["Jane Smith"]
        } else if filter.contains("7946 001") {
            &["Jane Smith", "Janet Jones"]
        } else if filter.contains("jan*") || filter.contains("*jan") || filter.contains("anr=jan") {
            &["Jan Novák", "Jane Smith", "Janet Jones"]
        } else {
            // Mac OS X 10.5 compares whole values: only a person called exactly Jan.
            &["Jan Novák"]
        };
        let (code, out) = s.search(&[], &filter, &["cn"]).await;
        assert_eq!(code, 0, "{client}: {filter}: {out}");
        let mut found: Vec<String> = entries(&out)
            .into_iter()
            .map(|(dn, attrs)| attrs.get("cn").map(|v| v[0].clone()).unwrap_or(dn))
            .collect();
        found.sort();
        assert_eq!(found, expected, "{client}: {filter}");
        checked += 1;
    }
    assert!(checked >= 12, "{checked} filters");
}

#[tokio::test]
async fn an_anonymous_policy_says_less_than_a_viewer_sees() {
    let mut finance = Policy::staff_default();
    finance.scope.department = vec!["Finance".into()];
    finance.fields = [switchboard::access::PersonField::Title]
        .into_iter()
        .collect();
    let s = server(Config::default(), true, Some(finance)).await;
    let (code, out) = s.anonymous("(objectClass=person)", &[]).await;
    assert_eq!(code, 0, "{out}");
    let found = entries(&out);
    assert_eq!(found.len(), 1, "{out}");
    let (_, olga) = &found[0];
    assert_eq!(olga["cn"], ["Olga Petrova"]);
    assert_eq!(olga["title"], ["Analyst"]);
    assert!(
        !olga.contains_key("telephoneNumber") && !olga.contains_key("mail"),
        "{out}"
    );
    // The device still sees what a viewer sees.
    let (_, out) = s.search(&[], "(objectClass=person)", &["cn"]).await;
    assert_eq!(entries(&out).len(), 6, "{out}");
}

#[tokio::test]
async fn a_partner_binds_with_its_key_and_searches_under_its_policy_without_listing() {
    let mut s = server(Config::default(), false, None).await;
    let settings = serde_json::from_value(serde_json::json!({
        "fields": ["name", "title", "work_phone", "email"], "scope": {"department": ["Sales"]}
    }))
    .expect("settings");
    let (partner, key) =
        switchboard::access::partners::add(&s.app.db.pool, &Default::default(), "acme", &settings)
            .await
            .expect("partner");
    let bind_dn = "cn=acme,ou=partners,dc=example,dc=com";
    let search = |filter: &str, key: &str| {
        let args: Vec<String> = [
            "-LLL",
            "-x",
            "-H",
            &s.url,
            "-D",
            bind_dn,
            "-w",
            key,
            "-b",
            BASE,
            filter,
            "cn",
            "telephoneNumber",
            "mobile",
            "uid",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run("ldapsearch", &args, None).await
        }
    };
    let (code, out) = search("(sn=J*)", &key).await;
    assert_eq!(
        code, 53,
        "a short value is refused, as a partner may not list: {out}"
    );
    let (code, out) = search("(cn=Jan*)", &key).await;
    assert_eq!(code, 0, "{out}");
    let found = entries(&out);
    assert_eq!(names(&out), ["Jane Smith", "Janet Jones"], "Sales only");
    // Under the partner's own ids, with only the numbers it may see.
    let jane = found
        .iter()
        .find(|(_, a)| a["cn"] == ["Jane Smith"])
        .expect("jane");
    let ours: uuid::Uuid = sqlx::query_scalar("SELECT id FROM people WHERE family_name = 'Smith'")
        .fetch_one(&s.app.db.pool)
        .await
        .expect("id");
    let theirs = partner.public_id(ours);
    assert_eq!(jane.0, format!("uid={theirs},{BASE}"));
    assert!(!jane.1.contains_key("mobile"), "{jane:?}");
    assert!(jane.1.contains_key("telephoneNumber"), "{jane:?}");
    // Listing everyone is refused, however it is asked.
    for filter in ["(objectClass=*)", "(objectClass=person)", "(cn=*)"] {
        let (code, out) = search(filter, &key).await;
        assert_eq!(code, 53, "{filter}: unwillingToPerform: {out}");
    }
    // Another partner's name with this key, or a wrong key: invalid credentials.
    let wrong = run(
        "ldapsearch",
        &[
            "-LLL",
            "-x",
            "-H",
            &s.url,
            "-D",
            "cn=beta,dc=example,dc=com",
            "-w",
            &key,
            "-b",
            BASE,
            "(cn=Jane*)",
        ],
        None,
    )
    .await;
    assert_eq!(wrong.0, 49, "{}", wrong.1);
    assert_eq!(search("(cn=Jane*)", "sbp_not-a-key").await.0, 49);
    let actions = s.app.audit_actions().await;
    assert!(
        actions.contains(&("partner:acme".to_string(), "ldap.search".to_string())),
        "{actions:?}"
    );
}
