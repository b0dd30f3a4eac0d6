//! Google service-account authentication: the OAuth 2.0 JWT-bearer grant.
//!
//! In: a service-account key file (the JSON Google Cloud issues: its
//! `client_email`, `private_key` as a PKCS#8 PEM, optional `private_key_id`
//! and `token_uri`). Out: the token request (a JWT signed RS256 with the
//! private key, exchanged at the token URI for an access token) and the
//! token in its response.
//!
//! The private key lives only in a [`SecretString`]; it is parsed again for
//! each signature (once an hour), so that no long-lived value holds it
//! outside the secret.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::deliver::vendor::Token;
use crate::deliver::wire::{WireRequest, WireResponse};

/// The scope of the Data Manager API.
pub const SCOPE: &str = "https://www.googleapis.com/auth/datamanager";
/// Where a key without `token_uri` exchanges its assertions.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Google accepts assertions that live at most an hour.
const ASSERTION_LIFETIME: u64 = 3600;
/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, form-encoded.
const JWT_BEARER_GRANT: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";

/// A service-account key, its private key kept secret.
#[derive(Clone, Debug)]
pub struct ServiceAccount {
    pub client_email: String,
    pub key_id: Option<String>,
    /// Where assertions are exchanged for tokens (also the JWT's `aud`).
    pub token_uri: String,
    /// The PKCS#8 DER of the private key, base64 as in the PEM.
    private_key: SecretString,
}

impl ServiceAccount {
    /// Reads a key file. Errors name the file, never its contents.
    pub fn read(path: &str) -> Result<ServiceAccount, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("the service-account key file `{path}` cannot be read: {e}"))?;
        ServiceAccount::parse(&text)
            .map_err(|e| format!("the service-account key file `{path}`: {e}"))
    }

    /// Parses the JSON of a key file and checks that its key can sign.
    pub fn parse(text: &str) -> Result<ServiceAccount, String> {
        let key: Value = serde_json::from_str(text)
            .map_err(|_| "is not JSON (expected a service-account key)".to_string())?;
        let field = |name: &str| key.get(name).and_then(Value::as_str);
        if let Some(kind) = field("type").filter(|k| *k != "service_account") {
            return Err(format!("is a `{kind}` key, not a `service_account` key"));
        }
        let client_email = field("client_email")
            .ok_or("has no `client_email`")?
            .to_string();
        let pem = field("private_key").ok_or("has no `private_key`")?;
        let account = ServiceAccount {
            client_email,
            key_id: field("private_key_id").map(str::to_string),
            token_uri: field("token_uri").unwrap_or(DEFAULT_TOKEN_URI).to_string(),
            private_key: SecretString::from(pem_body(pem)?),
        };
        account.key_pair()?;
        Ok(account)
    }

    fn key_pair(&self) -> Result<RsaKeyPair, String> {
        let der = STANDARD
            .decode(self.private_key.expose_secret())
            .map_err(|_| "`private_key` is not valid PEM (bad base64)".to_string())?;
        RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| format!("`private_key` is not a PKCS#8 RSA key ({e})"))
    }

    /// The signed JWT that asserts this account's identity at `now`, for
    /// the token endpoint `audience`.
    pub fn assertion(&self, audience: &str, now: SystemTime) -> Result<String, String> {
        let iat = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| "the clock is before 1970".to_string())?
            .as_secs();
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = Value::String(kid.clone());
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": audience,
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME,
        });
        let signing_input = format!("{}.{}", base64_json(&header), base64_json(&claims));
        let signature = self.sign(signing_input.as_bytes())?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let key_pair = self.key_pair()?;
        let mut signature = vec![0; key_pair.public().modulus_len()];
        key_pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| "the private key could not sign the assertion".to_string())?;
        Ok(signature)
    }

    /// The token request: the assertion posted as a form to `token_uri`.
    pub fn token_request(&self, token_uri: &str, now: SystemTime) -> Result<WireRequest, String> {
        let assertion = self.assertion(token_uri, now)?;
        let mut request = WireRequest::new("POST", token_uri)
            .header("Content-Type", "application/x-www-form-urlencoded");
        request.body = format!("grant_type={JWT_BEARER_GRANT}&assertion={assertion}").into_bytes();
        Ok(request)
    }
}

/// The token in a token endpoint's response, or the endpoint's reason.
pub fn parse_token(response: &WireResponse) -> Result<Token, String> {
    let body = response.json();
    if !(200..300).contains(&response.status) {
        let reason = body
            .get("error_description")
            .or_else(|| body.get("error"))
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        return Err(format!(
            "Google refused the service account's token request (HTTP {}): {reason}",
            response.status
        ));
    }
    let value = body
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or("Google's token response has no `access_token`")?;
    Ok(Token {
        value: SecretString::from(value.to_string()),
        expires_in: body
            .get("expires_in")
            .and_then(Value::as_u64)
            .map(Duration::from_secs),
    })
}

/// The base64 between a PEM's armour lines.
fn pem_body(pem: &str) -> Result<String, String> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("-----"))
        .collect();
    if !pem.contains("-----BEGIN PRIVATE KEY-----") || body.is_empty() {
        return Err("`private_key` is not a PEM `PRIVATE KEY`".into());
    }
    Ok(body)
}

fn base64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    const KEY_FILE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/keys/google_service_account_TEST_ONLY.json"
    );

    fn account() -> ServiceAccount {
        ServiceAccount::read(KEY_FILE).unwrap()
    }

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn the_assertion_carries_the_claims_google_requires() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let jwt = account()
            .assertion("https://oauth2.googleapis.com/token", now)
            .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = decode(parts[0]);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], "test-key-1");
        let claims = decode(parts[1]);
        assert_eq!(
            claims["iss"],
            "accord-test@accord-test.iam.gserviceaccount.com"
        );
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        assert_eq!(claims["iat"], 1_700_000_000u64);
        assert_eq!(claims["exp"], 1_700_003_600u64);
    }

    #[test]
    fn the_signature_verifies_with_the_public_key() {
        let account = account();
        let jwt = account
            .assertion("https://example.test/token", SystemTime::now())
            .unwrap();
        let (signed, signature) = jwt.rsplit_once('.').unwrap();
        let public = account.key_pair().unwrap().public_key().as_ref().to_vec();
        let key = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public);
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        key.verify(signed.as_bytes(), &signature).unwrap();
        let mut tampered = signed.to_string();
        tampered.push('x');
        assert!(key.verify(tampered.as_bytes(), &signature).is_err());
    }

    #[test]
    fn the_token_request_is_a_jwt_bearer_form() {
        let request = account()
            .token_request("https://example.test/token", SystemTime::now())
            .unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "https://example.test/token");
        let body = String::from_utf8(request.body).unwrap();
        let form: Vec<&str> = body.split('&').collect();
        assert_eq!(
            form[0],
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
        );
        assert!(form[1].starts_with("assertion=") && form[1].matches('.').count() == 2);
    }

    #[test]
    fn bad_keys_are_clear_errors_without_the_key() {
        let not_json = ServiceAccount::parse("nope").unwrap_err();
        assert!(not_json.contains("not JSON"), "{not_json}");
        let user_key = ServiceAccount::parse(r#"{"type":"authorized_user"}"#).unwrap_err();
        assert!(user_key.contains("authorized_user"), "{user_key}");
        let no_email = ServiceAccount::parse(r#"{"private_key":"x"}"#).unwrap_err();
        assert!(no_email.contains("client_email"), "{no_email}");
        let garbage = r#"{"client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}"#;
        let error = ServiceAccount::parse(garbage).unwrap_err();
        assert!(error.contains("PKCS#8"), "{error}");
        assert!(!error.contains("AAAA"));
        let missing = ServiceAccount::read("/nonexistent/key.json").unwrap_err();
        assert!(missing.contains("/nonexistent/key.json"), "{missing}");
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let account = account();
        let shown = format!("{account:?}");
        let body = account.private_key.expose_secret();
        assert!(!shown.contains(&body[..40]));
    }

    #[test]
    fn tokens_are_read_and_refusals_explained() {
        let ok = WireResponse {
            status: 200,
            headers: vec![],
            body: br#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#.to_vec(),
        };
        let token = parse_token(&ok).unwrap();
        assert_eq!(token.expires_in, Some(Duration::from_secs(3599)));
        assert_eq!(crate::deliver::vendor::secret(&token.value), "ya29.x");
        let refused = WireResponse {
            status: 400,
            headers: vec![],
            body: br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#
                .to_vec(),
        };
        let error = parse_token(&refused).unwrap_err();
        assert!(error.contains("Invalid JWT Signature"), "{error}");
    }
}
