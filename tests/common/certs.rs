//! Test certificates made with the `openssl` command line (installed by `scripts/setup`): a
//! throwaway CA and a server certificate it signed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (scripts/setup installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What [`issue`] wrote.
pub struct Issued {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// In `dir`: a CA `NAME-ca.pem` and a certificate it signed, `NAME.pem` with key `NAME.key`, for
/// the subject alternative names `san` (e.g. `IP:127.0.0.1,DNS:localhost`).
pub fn issue(dir: &Path, name: &str, san: &str) -> Issued {
    let ca = format!("{name}-ca");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let subject = format!("/CN=Switchboard test CA {name}");
    let (ca_key, ca_pem) = (format!("{ca}.key"), format!("{ca}.pem"));
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-nodes", "-days", "2", "-subj", &subject, "-keyout", &ca_key, "-out", &ca_pem,
    ]);
    openssl(dir, &args);
    let (key, csr, ext, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.ext"),
        format!("{name}.pem"),
    );
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend([
        "-nodes",
        "-subj",
        "/CN=switchboard-test",
        "-keyout",
        &key,
        "-out",
        &csr,
    ]);
    openssl(dir, &args);
    std::fs::write(
        dir.join(&ext),
        format!(
            "subjectAltName={san}\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &pem,
        ],
    );
    Issued {
        ca: dir.join(ca_pem),
        cert: dir.join(pem),
        key: dir.join(key),
    }
}
