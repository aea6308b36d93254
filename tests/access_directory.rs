//! Staff sign-in by a bind against the directory: a real OpenLDAP `slapd` (groups found under a
//! group base) and a real Samba AD DC (groups from `memberOf`), through the real router.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::samba::SambaDc;
use common::slapd::{base_ldif, Slapd, SlapdOptions, SUFFIX};
use common::TestApp;
use switchboard::access::directory::LdapLoginConfig;
use switchboard::access::{Role, RoleGroups};
use switchboard::config::{Config, SourceConfig};

async fn login(app: &TestApp, user: &str, password: &str) -> (StatusCode, serde_json::Value) {
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    let request = Request::post("/api/v1/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let (status, _, json) = app.send(request).await;
    (status, json)
}

fn config(source: SourceConfig, group_base_dn: Option<String>) -> Config {
    let mut config = Config::default();
    config.access.ldap = Some(LdapLoginConfig {
        source: source.name.clone(),
        login_attributes: Vec::new(),
        group_base_dn,
        roles: RoleGroups {
            admin: vec!["sb-admins".into()],
            receptionist: vec!["Reception".into()],
            viewer: Vec::new(),
            default_role: None,
        },
    });
    config.sources = vec![source];
    config
}

#[tokio::test]
async fn openldap_bind_with_groups_under_a_base() {
    let ldif = format!(
        "{}dn: uid=alice,ou=People,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: alice\ncn: Alice Admin\n\
         sn: Admin\nmail: alice@example.com\nuserPassword: alice-secret\n\n\
         dn: uid=bob,ou=People,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: bob\ncn: Bob Desk\n\
         sn: Desk\nmail: bob@example.com\nuserPassword: bob-secret\n\n\
         dn: uid=carol,ou=People,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: carol\ncn: Carol Nogroup\n\
         sn: Nogroup\nmail: carol@example.com\nuserPassword: carol-secret\n\n\
         dn: ou=Groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: Groups\n\n\
         dn: cn=sb-admins,ou=Groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: sb-admins\n\
         member: uid=alice,ou=People,{SUFFIX}\n\n\
         dn: cn=reception,ou=Groups,{SUFFIX}\nobjectClass: groupOfUniqueNames\ncn: reception\n\
         uniqueMember: uid=bob,ou=People,{SUFFIX}\n\n",
        base_ldif()
    );
    let mut slapd = Slapd::start(SlapdOptions::default(), &ldif);
    let source = slapd.source("corp");
    let app = TestApp::with(
        config(source, Some(format!("ou=Groups,{SUFFIX}"))),
        switchboard::presence::PresenceHub::disabled(),
    )
    .await;

    let (status, me) = login(&app, "alice", "alice-secret").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["role"], "admin");
    assert_eq!(
        me["principal"],
        format!("ldap:corp:uid=alice,ou=people,{SUFFIX}")
    );
    assert_eq!(me["display_name"], "Alice Admin");
    let (status, me) = login(&app, "alice@example.com", "alice-secret").await;
    assert_eq!(
        (status, me["role"].as_str()),
        (StatusCode::OK, Some("admin")),
        "by mail"
    );
    let (status, me) = login(&app, "bob", "bob-secret").await;
    assert_eq!(
        (status, me["role"].as_str()),
        (StatusCode::OK, Some("receptionist"))
    );

    assert_eq!(
        login(&app, "alice", "wrong").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&app, "alice", "").await.0,
        StatusCode::BAD_REQUEST,
        "an empty password is never an (unauthenticated) bind: refused before any"
    );
    assert_eq!(
        login(&app, "carol", "carol-secret").await.0,
        StatusCode::UNAUTHORIZED,
        "in no group"
    );
    assert_eq!(
        login(&app, "*", "alice-secret").await.0,
        StatusCode::UNAUTHORIZED,
        "filter input is escaped"
    );
    assert_eq!(login(&app, "nobody", "x").await.0, StatusCode::UNAUTHORIZED);

    // A directory that is down is an outage, not a wrong password.
    slapd.stop();
    let (status, body) = login(&app, "alice", "alice-secret").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["code"], "directory_unavailable");
}

#[tokio::test]
async fn active_directory_bind_with_member_of() {
    let Some(dc) = SambaDc::start() else {
        eprintln!("skipped: set TEST_SAMBA_AD=1 to run against Samba (scripts/test does)");
        return;
    };
    dc.tool(&[
        "user",
        "create",
        "greta",
        "Gr3ta!Passw0rd",
        "--given-name=Greta",
        "--surname=Boss",
        "--mail-address=greta@example.test",
    ]);
    dc.tool(&[
        "user",
        "create",
        "rudi",
        "Rud1!Passw0rd",
        "--given-name=Rudi",
        "--surname=Desk",
    ]);
    dc.tool(&[
        "user",
        "create",
        "nora",
        "N0ra!Passw0rd",
        "--given-name=Nora",
        "--surname=Nogroup",
    ]);
    dc.tool(&["group", "add", "sb-admins"]);
    dc.tool(&["group", "add", "Reception"]);
    dc.tool(&["group", "addmembers", "sb-admins", "greta"]);
    dc.tool(&["group", "addmembers", "Reception", "rudi"]);
    let source = dc.source("ad", common::samba::BASE);
    let app = TestApp::with(
        config(source, None),
        switchboard::presence::PresenceHub::disabled(),
    )
    .await;

    let (status, me) = login(&app, "greta", "Gr3ta!Passw0rd").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["role"], "admin");
    assert!(
        me["principal"]
            .as_str()
            .is_some_and(|p| p.starts_with("ldap:ad:cn=greta boss")),
        "{me}"
    );
    let (status, me) = login(&app, "greta@example.test", "Gr3ta!Passw0rd").await;
    assert_eq!(
        (status, me["role"].as_str()),
        (StatusCode::OK, Some("admin")),
        "by mail"
    );
    let (status, me) = login(&app, "rudi", "Rud1!Passw0rd").await;
    assert_eq!(
        (status, me["role"].as_str()),
        (StatusCode::OK, Some(Role::Receptionist.as_str()))
    );
    assert_eq!(
        login(&app, "greta", "wrong").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&app, "nora", "N0ra!Passw0rd").await.0,
        StatusCode::UNAUTHORIZED,
        "in no group"
    );
}
