//! The root certificates every AWS connection is verified against, and the one HTTP client
//! that every SDK client of the process shares.
//!
//! The SDK's default client reads the host's trust store (every file of `/etc/ssl/certs` when
//! `SSL_CERT_FILE` and `SSL_CERT_DIR` are unset, as on Lambda) each time a process starts:
//! with a few hundred files that is most of a function's cold start. Here the roots are
//! Mozilla's, compiled into the binary (`webpki-root-certs`); they include the Amazon Trust
//! Services roots that every AWS endpoint chains to. An operator who brings their own CA sets
//! `SSL_CERT_FILE`, and then exactly that file's certificates are trusted. `SSL_CERT_DIR` is
//! not read.

use std::fmt;
use std::path::PathBuf;

use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// The variable that names a PEM file of trusted roots, as OpenSSL and most TLS clients read it.
pub const CERT_FILE_VAR: &str = "SSL_CERT_FILE";

/// Mozilla's roots in PEM, encoded at build time (`build.rs`) from `webpki-root-certs`.
const COMPILED_PEM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/roots.pem"));

/// Where the trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// Mozilla's roots, compiled in.
    Compiled,
    /// The certificates of a PEM file that the operator named.
    File(PathBuf),
}

impl Roots {
    /// The roots for the setting `SSL_CERT_FILE`, as the settings reader gives it (unset or
    /// empty: the compiled-in roots).
    pub fn from_cert_file(path: Option<PathBuf>) -> Self {
        match path {
            Some(path) if !path.as_os_str().is_empty() => Self::File(path),
            _ => Self::Compiled,
        }
    }

    /// The roots as one PEM document, which is what the SDK's trust store takes.
    pub fn pem(&self) -> Result<Vec<u8>, CertFileError> {
        match self {
            Self::Compiled => Ok(COMPILED_PEM.to_vec()),
            Self::File(path) => file_pem(path),
        }
    }

    /// The SDK's trust store of these roots, without the host's.
    pub fn trust_store(&self) -> Result<TrustStore, CertFileError> {
        Ok(TrustStore::empty().with_native_roots(false).with_pem_certificate(self.pem()?))
    }
}

/// The HTTP client for every AWS SDK client of the process (and the credential providers):
/// rustls on AWS-LC, as the SDK's default client, but verifying against `roots`.
pub fn http_client(roots: &Roots) -> Result<SharedHttpClient, CertFileError> {
    let context = TlsContext::builder()
        .with_trust_store(roots.trust_store()?)
        .build()
        .expect("a TLS context with a trust store always builds");
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https();
    Ok(RootsCheckedHere(client).into_shared())
}

/// The SDK's HTTP client without its start-up check. For each SDK client built on it, that
/// check builds a connector and throws it away so that the host's roots are read at start
/// rather than at the first call; with roots that are already in memory it would only parse
/// them again (about a millisecond for Mozilla's, for each of the several SDK clients a
/// function builds). The roots are checked here instead: an operator's file when it is read
/// ([`Roots::pem`]), the compiled-in ones by this module's tests. The connectors that carry
/// requests are built and cached by the SDK's client as before.
#[derive(Debug)]
struct RootsCheckedHere(SharedHttpClient);

impl HttpClient for RootsCheckedHere {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// Certificates in PEM, one line of base64 each (the SDK's PEM reader takes any line length).
fn to_pem<'a>(certificates: impl IntoIterator<Item = &'a CertificateDer<'a>>) -> Vec<u8> {
    let mut pem = Vec::new();
    for certificate in certificates {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        pem.extend_from_slice(aws_smithy_types::base64::encode(certificate.as_ref()).as_bytes());
        pem.extend_from_slice(b"\n-----END CERTIFICATE-----\n");
    }
    pem
}

/// The certificates of an operator's PEM file that can serve as roots. The SDK panics on a
/// certificate it cannot use, so those are left out here (and logged); a file with none left
/// is an error rather than a client that trusts nothing.
fn file_pem(path: &std::path::Path) -> Result<Vec<u8>, CertFileError> {
    let failed = |problem: String| CertFileError { path: path.to_owned(), problem };
    let contents = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
    let certificates = CertificateDer::pem_slice_iter(&contents)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(format!("not a PEM file: {e}")))?;
    let total = certificates.len();
    let usable: Vec<_> = certificates.into_iter().filter(is_usable_root).collect();
    if usable.is_empty() {
        return Err(failed(format!("none of its {total} certificates can serve as a root")));
    }
    if usable.len() < total {
        tracing::warn!(
            path = %path.display(),
            skipped = total - usable.len(),
            "certificates that cannot serve as roots are left out"
        );
    }
    Ok(to_pem(&usable))
}

/// Whether rustls accepts the certificate as a trust anchor.
fn is_usable_root(certificate: &CertificateDer<'_>) -> bool {
    rustls::RootCertStore::empty().add(certificate.clone()).is_ok()
}

/// `SSL_CERT_FILE` names a file that cannot be read or holds no usable certificate.
#[derive(Debug)]
pub struct CertFileError {
    path: PathBuf,
    problem: String,
}

impl fmt::Display for CertFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{CERT_FILE_VAR}={}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for CertFileError {}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    /// The roots the Amazon Trust Services certificates of AWS endpoints chain to, with the
    /// SHA-256 fingerprints Amazon Trust Services publishes for them.
    const AMAZON_ROOTS: [(&str, &str); 5] = [
        ("Amazon Root CA 1", "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e"),
        ("Amazon Root CA 2", "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4"),
        ("Amazon Root CA 3", "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4"),
        ("Amazon Root CA 4", "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092"),
        (
            "Starfield Services Root Certificate Authority - G2",
            "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5",
        ),
    ];

    fn fingerprint(certificate: &[u8]) -> String {
        Sha256::digest(certificate).iter().map(|b| format!("{b:02x}")).collect()
    }

    fn certificates(pem: &[u8]) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().expect("valid PEM")
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    /// A PEM file in the temporary directory, removed when dropped.
    struct TempPem(PathBuf);

    impl TempPem {
        fn new(name: &str, contents: &[u8]) -> Self {
            let path = std::env::temp_dir().join(format!("colloquy-{}-{name}.pem", std::process::id()));
            std::fs::write(&path, contents).unwrap();
            Self(path)
        }
    }

    impl Drop for TempPem {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn the_compiled_roots_include_amazon_trust_services() {
        let roots = certificates(&Roots::Compiled.pem().unwrap());
        for (name, expected) in AMAZON_ROOTS {
            let root = roots.iter().find(|c| fingerprint(c) == expected);
            let root = root.unwrap_or_else(|| panic!("{name} is not among the compiled roots"));
            assert!(contains(root, name.as_bytes()), "the certificate with {name}'s fingerprint names {name}");
        }
    }

    #[test]
    fn every_compiled_root_reaches_the_trust_store() {
        let roots = certificates(&Roots::Compiled.pem().unwrap());
        assert_eq!(roots.as_slice(), webpki_root_certs::TLS_SERVER_ROOT_CERTS);
        assert!(roots.len() > 100, "Mozilla's program has well over a hundred roots");
        // The SDK panics on a root it cannot use: none of them is one.
        assert!(roots.iter().all(is_usable_root));
    }

    #[test]
    fn ssl_cert_file_is_honoured() {
        // An operator's bundle: one root, a comment, and a section that is not a certificate.
        let root = &webpki_root_certs::TLS_SERVER_ROOT_CERTS[0];
        let mut contents = b"# our own CA\n".to_vec();
        contents.extend(to_pem([root]));
        contents.extend(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
        let file = TempPem::new("bundle", &contents);

        let roots = Roots::from_cert_file(Some(file.0.clone()));
        assert_eq!(roots, Roots::File(file.0.clone()));
        // Exactly the file's certificate is trusted, none of the compiled-in ones besides.
        assert_eq!(certificates(&roots.pem().unwrap()), vec![root.clone()]);
        http_client(&roots).unwrap();
    }

    #[test]
    fn without_ssl_cert_file_the_compiled_roots_are_used() {
        assert_eq!(Roots::from_cert_file(None), Roots::Compiled);
        assert_eq!(Roots::from_cert_file(Some(PathBuf::new())), Roots::Compiled);
    }

    #[test]
    fn an_unusable_ssl_cert_file_is_an_error() {
        let missing = Roots::File(std::env::temp_dir().join("colloquy-no-such-bundle.pem"));
        assert!(missing.pem().unwrap_err().to_string().starts_with("SSL_CERT_FILE="));
        let empty = TempPem::new("empty", b"no certificates here\n");
        assert!(Roots::File(empty.0.clone()).pem().is_err());
        let not_a_root = TempPem::new("garbage", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        assert!(Roots::File(not_a_root.0.clone()).pem().is_err());
    }

    /// SDK clients build on the shared HTTP client.
    #[tokio::test]
    async fn sdk_clients_build_with_the_compiled_roots() {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .http_client(http_client(&Roots::Compiled).unwrap())
            .build();
        let client = crate::aws_clients::dynamodb(&config);
        assert!(client.config().http_client().is_some());
    }
}
