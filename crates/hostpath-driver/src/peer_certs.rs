//! Certificates for the peer link, made with the `openssl` command: a CA for the pair of
//! sites and one certificate per site, laid out as [`crate::peer_link`] reads them. The demo
//! and the tests use this; docs/install.md shows the same steps for a real installation. The
//! certificates also name `localhost` and 127.0.0.1, so tests can serve an `https://` csi-addons
//! endpoint with them.

use std::io;
use std::path::Path;
use std::process::Command;

use crate::peer_link::PEER_SERVER_NAME;

/// Writes `dir/ca.key`, `dir/ca.crt` and, for each of `sites`, `dir/<site>/{ca.crt,tls.crt,
/// tls.key}`: the directory to pass that site as `--peer-tls-dir`.
pub fn write(dir: &Path, sites: &[&str]) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let (ca_key, ca_crt) = (dir.join("ca.key"), dir.join("ca.crt"));
    openssl(
        Command::new("openssl")
            .args(["req", "-x509", "-nodes", "-days", "3650"])
            .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-subj", "/CN=lifeline-hostpath-peer-ca"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca_crt),
    )?;
    let extensions = dir.join("site.ext");
    std::fs::write(
        &extensions,
        format!(
            "subjectAltName=DNS:{PEER_SERVER_NAME},DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n\
             basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        ),
    )?;
    for site in sites {
        let out = dir.join(site);
        std::fs::create_dir_all(&out)?;
        let (key, csr, crt) = (
            out.join("tls.key"),
            out.join("tls.csr"),
            out.join("tls.crt"),
        );
        openssl(
            Command::new("openssl")
                .args(["req", "-new", "-nodes"])
                .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
                .args(["-subj", &format!("/CN={site}")])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&csr),
        )?;
        openssl(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "3650", "-CAcreateserial"])
                .arg("-in")
                .arg(&csr)
                .arg("-CA")
                .arg(&ca_crt)
                .arg("-CAkey")
                .arg(&ca_key)
                .arg("-extfile")
                .arg(&extensions)
                .arg("-out")
                .arg(&crt),
        )?;
        std::fs::remove_file(&csr)?;
        std::fs::copy(&ca_crt, out.join("ca.crt"))?;
    }
    Ok(())
}

fn openssl(command: &mut Command) -> io::Result<()> {
    let output = command.output().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot run openssl to make the peer link's certificates: {e}"),
        )
    })?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "openssl failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}
