//! Token formats and keys: EdDSA (Ed25519) access tokens and their JWKS, and
//! opaque refresh tokens that are stored only as hashes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use kernel::auth::AuthError;
use kernel::{Role, Roles, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

pub const ISSUER: &str = "stampede";

/// Why a key could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the system random source failed: {0}")]
    Random(String),
    #[error("not an Ed25519 private key in PKCS#8 form: {0}")]
    Format(String),
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: UserId,
    /// The login the token was issued in.
    pub sid: Uuid,
    pub roles: Vec<Role>,
    /// The user's token version at issue; a role change or revoked login bumps it.
    pub ver: i64,
    pub iat: i64,
    pub exp: i64,
}

/// One signing key: its id, the private half for signing and the public half
/// for checking and publishing.
pub struct KeyRing {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public_x: String,
    validation: Validation,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// A fresh random key as PKCS#8 DER.
    pub fn generate_pkcs8() -> Result<Vec<u8>, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        SigningKey::from_bytes(&seed)
            .to_pkcs8_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|e| KeyError::Format(e.to_string()))
    }

    /// Reads a PEM file's Ed25519 private key as PKCS#8 DER.
    pub fn pkcs8_from_pem(pem: &str) -> Result<Vec<u8>, KeyError> {
        SigningKey::from_pkcs8_pem(pem)
            .and_then(|k| k.to_pkcs8_der())
            .map(|d| d.as_bytes().to_vec())
            .map_err(|e| KeyError::Format(e.to_string()))
    }

    /// The key id a DER key would be published under.
    pub fn kid_of(der: &[u8]) -> Result<String, KeyError> {
        let key = SigningKey::from_pkcs8_der(der).map_err(|e| KeyError::Format(e.to_string()))?;
        Ok(kid(&key))
    }

    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let key = SigningKey::from_pkcs8_der(der).map_err(|e| KeyError::Format(e.to_string()))?;
        let public = key.verifying_key().to_bytes();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        // Expiry is checked against the service's clock, not inside the library.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss"]);
        Ok(Self {
            kid: kid(&key),
            encoding: EncodingKey::from_ed_der(der),
            decoding: DecodingKey::from_ed_der(&public),
            public_x: URL_SAFE_NO_PAD.encode(public),
            validation,
        })
    }

    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }

    /// Checks signature, algorithm, key id, issuer and expiry.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims, AuthError> {
        let claims = self.verify_signature(token)?;
        claims.check_expiry(now)?;
        Ok(claims)
    }

    /// Checks signature, algorithm, key id and issuer — everything that does
    /// not change with time, so the result can be cached.
    pub fn verify_signature(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        if header.alg != Algorithm::EdDSA || header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(AuthError::Invalid);
        }
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| AuthError::Invalid)
    }

    /// The public key set, for `/.well-known/jwks.json`.
    #[must_use]
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![Jwk {
                kty: "OKP",
                crv: "Ed25519",
                alg: "EdDSA",
                key_use: "sig",
                kid: self.kid.clone(),
                x: self.public_x.clone(),
            }],
        }
    }
}

fn kid(key: &SigningKey) -> String {
    let digest = Sha256::digest(key.verifying_key().as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

/// A JSON Web Key Set.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One public key.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Jwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub key_use: &'static str,
    pub kid: String,
    /// The public key, base64url.
    pub x: String,
}

impl Claims {
    #[must_use]
    pub fn roles(&self) -> Roles {
        Roles::of(&self.roles)
    }

    pub fn check_expiry(&self, now: Timestamp) -> Result<(), AuthError> {
        if self.exp <= now.unix_timestamp() {
            Err(AuthError::Expired)
        } else {
            Ok(())
        }
    }
}

/// A new refresh token: 256 random bits, base64url. Only its hash is stored.
pub fn new_refresh_token() -> Result<String, KeyError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a refresh token. The token is 256 random bits, so a
/// plain SHA-256 is enough (no salt or slow hash needed); lookups are by
/// hash, so no comparison of secrets happens in application code.
#[must_use]
pub fn refresh_token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Random bytes for referral codes.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn ring() -> KeyRing {
        KeyRing::from_pkcs8(&KeyRing::generate_pkcs8().expect("random")).expect("key")
    }

    fn claims(now: Timestamp) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: UserId::new(),
            sid: Uuid::now_v7(),
            roles: vec![Role::User],
            ver: 0,
            iat: now.unix_timestamp(),
            exp: now.unix_timestamp() + 600,
        }
    }

    fn now() -> Timestamp {
        datetime!(2026-11-22 12:00 UTC).into()
    }

    #[test]
    fn a_signed_token_verifies_and_names_its_key() {
        let ring = ring();
        let token = ring.sign(&claims(now())).expect("sign");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.kid.as_deref(), Some(ring.kid()));
        assert_eq!(ring.verify(&token, now()).map(|c| c.ver).ok(), Some(0));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let ring = ring();
        let token = ring.sign(&claims(now())).expect("sign");
        let later = now() + time::Duration::seconds(600);
        assert_eq!(ring.verify(&token, later).err(), Some(AuthError::Expired));
    }

    #[test]
    fn a_token_from_a_foreign_key_is_refused() {
        let (ours, theirs) = (ring(), ring());
        let token = theirs.sign(&claims(now())).expect("sign");
        assert_eq!(ours.verify(&token, now()).err(), Some(AuthError::Invalid));
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let ring = ring();
        let token = ring.sign(&claims(now())).expect("sign");
        let parts: Vec<&str> = token.split('.').collect();
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        payload["roles"] = serde_json::json!(["ADMIN"]);
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            parts[2]
        );
        assert_eq!(ring.verify(&forged, now()).err(), Some(AuthError::Invalid));
    }

    #[test]
    fn alg_none_is_refused() {
        let ring = ring();
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, ring.kid()));
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(now())).expect("json"));
        let token = format!("{header}.{payload}.");
        assert!(ring.verify(&token, now()).is_err());
    }

    #[test]
    fn jwks_publishes_the_public_key_under_the_kid() {
        let ring = ring();
        let jwks = serde_json::to_value(ring.jwks()).expect("json");
        assert_eq!(jwks["keys"][0]["kid"], ring.kid());
        assert_eq!(jwks["keys"][0]["kty"], "OKP");
        assert_eq!(jwks["keys"][0]["use"], "sig");
        let x = jwks["keys"][0]["x"].as_str().expect("x");
        let from_jwk = DecodingKey::from_ed_components(x).expect("usable");
        let token = ring.sign(&claims(now())).expect("sign");
        let mut v = Validation::new(Algorithm::EdDSA);
        v.validate_exp = false;
        assert!(jsonwebtoken::decode::<Claims>(&token, &from_jwk, &v).is_ok());
    }

    #[test]
    fn refresh_tokens_are_long_random_and_hashed() {
        let a = new_refresh_token().expect("random");
        let b = new_refresh_token().expect("random");
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(refresh_token_hash(&a).len(), 32);
        assert_ne!(refresh_token_hash(&a), a.as_bytes());
    }
}
