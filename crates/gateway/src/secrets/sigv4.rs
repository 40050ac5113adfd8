//! AWS Signature Version 4, just enough for Secrets Manager's JSON protocol: a `POST /` with
//! no query string and a handful of headers.
//!
//! Written here on the workspace's `hmac` and `sha2` rather than taken from the `aws-sigv4`
//! crate, which would bring the smithy runtime (`aws-smithy-*`, `time`, a second
//! `hmac`/`sha2`/`digest` generation) and needs a newer Rust than this workspace's
//! `rust-version`, for the ~100 lines below. The tests check it against AWS's published SigV4
//! test suite, and the AWS integration tests against moto's signature verification.
//!
//! Reference: "Create a signed AWS API request" (AWS IAM user guide, Signature Version 4).

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// The signing algorithm's name, first word of the `Authorization` header.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// What is signed: one request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// Canonical (already URI-encoded, normalised) path, e.g. `/`.
    pub path: &'a str,
    /// Every header to sign, `host` and the date header included; names in any case.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub payload: &'a [u8],
}

/// Who signs, where, and when.
#[derive(Clone, Copy)]
pub struct Signer<'a> {
    /// Access key id (not secret; it names the key).
    pub access_key_id: &'a str,
    /// Secret access key.
    pub secret_access_key: &'a SecretString,
    /// Region, e.g. `eu-west-1`.
    pub region: &'a str,
    /// Service signing name, e.g. `secretsmanager`.
    pub service: &'a str,
    /// Request time as `YYYYMMDDTHHMMSSZ` (the `X-Amz-Date` value).
    pub amz_date: &'a str,
}

impl std::fmt::Debug for Signer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    #[expect(
        clippy::expect_used,
        reason = "HMAC takes keys of any length; new_from_slice cannot fail"
    )]
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The canonical request and the `SignedHeaders` list.
///
/// Header names are lower-cased and sorted, values trimmed with inner runs of spaces
/// collapsed, and repeated headers joined with commas, as the specification says.
pub fn canonical_request(req: &Request<'_>) -> (String, String) {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in req.headers {
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        headers
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(value);
    }
    let signed = headers.keys().cloned().collect::<Vec<_>>().join(";");
    let mut canonical = format!("{}\n{}\n\n", req.method, req.path);
    for (name, values) in &headers {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(&values.join(","));
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&signed);
    canonical.push('\n');
    canonical.push_str(&sha256_hex(req.payload));
    (canonical, signed)
}

impl Signer<'_> {
    fn date(&self) -> &str {
        self.amz_date.get(..8).unwrap_or(self.amz_date)
    }

    /// `DATE/REGION/SERVICE/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date(),
            self.region,
            self.service
        )
    }

    /// The string to sign for a canonical request.
    pub fn string_to_sign(&self, canonical_request: &str) -> String {
        format!(
            "{ALGORITHM}\n{}\n{}\n{}",
            self.amz_date,
            self.scope(),
            sha256_hex(canonical_request.as_bytes())
        )
    }

    /// The derived signing key: HMAC chain over date, region, service and `aws4_request`.
    fn signing_key(&self) -> [u8; 32] {
        let secret = format!("AWS4{}", self.secret_access_key.expose_secret());
        let k = hmac_sha256(secret.as_bytes(), self.date().as_bytes());
        let k = hmac_sha256(&k, self.region.as_bytes());
        let k = hmac_sha256(&k, self.service.as_bytes());
        hmac_sha256(&k, b"aws4_request")
    }

    /// The value of the `Authorization` header for `req`.
    pub fn authorization(&self, req: &Request<'_>) -> String {
        let (canonical, signed) = canonical_request(req);
        let signature = hex(&hmac_sha256(
            &self.signing_key(),
            self.string_to_sign(&canonical).as_bytes(),
        ));
        format!(
            "{ALGORITHM} Credential={}/{}, SignedHeaders={signed}, Signature={signature}",
            self.access_key_id,
            self.scope()
        )
    }
}

#[cfg(test)]
mod tests {
    //! Vectors from AWS's published SigV4 test suite: the 2015 suite (`example.amazonaws.com`,
    //! 20150830T123600Z, as shipped in awslabs/aws-c-auth `tests/aws-signing-test-suite/v4`)
    //! and the original 2011 suite (`host.foo.com`, as shipped in aws/aws-cli
    //! `tests/unit/auth/aws4_testsuite`). Both use the example key below.
    use super::*;

    const KEY_ID: &str = "AKIDEXAMPLE";
    // tollgate:ignore-next-line (AWS's published example secret key of the SigV4 test suite)
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn sign(
        method: &str,
        headers: &[(&str, &str)],
        payload: &[u8],
        service: &str,
        amz_date: &str,
    ) -> String {
        let secret = SecretString::from(SECRET.to_owned());
        let signer = Signer {
            access_key_id: KEY_ID,
            secret_access_key: &secret,
            region: "us-east-1",
            service,
            amz_date,
        };
        signer.authorization(&Request {
            method,
            path: "/",
            headers,
            payload,
        })
    }

    fn suite_2015(method: &str, extra: &[(&str, &str)]) -> String {
        let mut headers = vec![
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ];
        headers.extend_from_slice(extra);
        sign(method, &headers, b"", "service", "20150830T123600Z")
    }

    fn suite_2011(headers: &[(&str, &str)], payload: &[u8]) -> String {
        sign("POST", headers, payload, "host", "20110909T233600Z")
    }

    #[test]
    fn get_vanilla() {
        assert_eq!(
            suite_2015("GET", &[]),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn post_vanilla() {
        assert_eq!(
            suite_2015("POST", &[]),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
    }

    #[test]
    fn post_sts_header_before() {
        const TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
        assert_eq!(
            suite_2015("POST", &[("X-Amz-Security-Token", TOKEN)]),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
        );
    }

    #[test]
    fn post_x_www_form_urlencoded_with_a_body() {
        assert_eq!(
            suite_2011(
                &[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Date", "Mon, 09 Sep 2011 23:36:00 GMT"),
                    ("Host", "host.foo.com"),
                ],
                b"foo=bar"
            ),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/host/aws4_request, SignedHeaders=content-type;date;host, Signature=5a15b22cf462f047318703b92e6f4f38884e4a7ab7b1d6426ca46a8bd1c26cbc"
        );
    }

    #[test]
    fn post_header_key_sort_and_case() {
        assert_eq!(
            suite_2011(
                &[
                    ("DATE", "Mon, 09 Sep 2011 23:36:00 GMT"),
                    ("host", "host.foo.com"),
                    ("ZOO", "zoobar"),
                ],
                b""
            ),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/host/aws4_request, SignedHeaders=date;host;zoo, Signature=b7a95a52518abbca0964a999a880429ab734f35ebbf1235bd79a5de87756dc4a"
        );
    }

    #[test]
    fn post_header_value_case_is_kept() {
        assert_eq!(
            suite_2011(
                &[
                    ("DATE", "Mon, 09 Sep 2011 23:36:00 GMT"),
                    ("host", "host.foo.com"),
                    ("zoo", "ZOOBAR"),
                ],
                b""
            ),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/host/aws4_request, SignedHeaders=date;host;zoo, Signature=273313af9d0c265c531e11db70bbd653f3ba074c1009239e8559d3987039cad7"
        );
    }

    #[test]
    fn header_values_are_trimmed() {
        assert_eq!(
            suite_2011(
                &[
                    ("DATE", "Mon, 09 Sep 2011 23:36:00 GMT"),
                    ("host", "host.foo.com"),
                    ("p", " phfft "),
                ],
                b""
            ),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/host/aws4_request, SignedHeaders=date;host;p, Signature=debf546796015d6f6ded8626f5ce98597c33b47b9164cf6b17b4642036fcb592"
        );
    }

    #[test]
    fn canonical_request_matches_the_suite_layout() {
        let (c, signed) = canonical_request(&Request {
            method: "POST",
            path: "/",
            headers: &[
                ("Host", "example.amazonaws.com"),
                ("My-Header1", "  a   b  c "),
            ],
            payload: b"",
        });
        assert_eq!(signed, "host;my-header1");
        assert_eq!(
            c,
            "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:a b c\n\nhost;my-header1\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn signer_debug_hides_the_secret() {
        let secret = SecretString::from(SECRET.to_owned());
        let s = Signer {
            access_key_id: KEY_ID,
            secret_access_key: &secret,
            region: "us-east-1",
            service: "s",
            amz_date: "20150830T123600Z",
        };
        assert!(!format!("{s:?}").contains("EXAMPLEKEY"));
    }
}
