//! The roots of trust of the functions' HTTPS calls, compiled in (`shared/certs/roots.pem`,
//! whose README says which and why). The functions talk to a handful of AWS endpoints and to
//! WeChat's API; the system trust store would be read and parsed file by file at every cold
//! start (about 150 certificates), and would trust every CA of the system for them.

use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext, TrustStore};

/// The certificates of `roots.pem`.
pub const ROOTS_PEM: &[u8] = include_bytes!("../../certs/roots.pem");

/// The AWS SDK's HTTPS client (rustls with aws-lc, as the SDK's default) trusting
/// `ROOTS_PEM` alone.
pub fn aws_http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(ROOTS_PEM))
        .build()
        .expect("a trust store without server names builds");
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

/// `ROOTS_PEM` for reqwest (the WeChat client).
pub fn reqwest_roots() -> Result<Vec<reqwest::Certificate>, reqwest::Error> {
    reqwest::Certificate::from_pem_bundle(ROOTS_PEM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compiled_in_root_parses_as_a_ca_certificate() {
        let roots = reqwest_roots().unwrap();
        assert_eq!(roots.len(), 8);
        let text = std::str::from_utf8(ROOTS_PEM).unwrap();
        for subject in [
            "CN = Amazon Root CA 1",
            "CN = Amazon Root CA 4",
            "CN = Starfield Services Root Certificate Authority - G2",
            "CN = DigiCert Global Root G2",
        ] {
            assert!(text.contains(subject), "{subject} is missing");
        }
        // The AWS client parses them too (it panics on a certificate it cannot add) when it
        // builds its connector; building one here runs that path.
        let _ = aws_http_client();
    }
}
