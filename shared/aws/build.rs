//! Mozilla's root certificates (`webpki-root-certs`) as the one PEM document the SDK's trust
//! store takes, written at build time: a function then hands it over as it is instead of
//! encoding 118 certificates each time it starts. `trust`'s tests check that it holds exactly
//! the crate's roots.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

fn main() {
    let mut pem = String::new();
    for certificate in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        pem.push_str(&STANDARD.encode(certificate.as_ref()));
        pem.push_str("\n-----END CERTIFICATE-----\n");
    }
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("roots.pem"), pem).expect("OUT_DIR is writable");
    println!("cargo::rerun-if-changed=build.rs");
}
