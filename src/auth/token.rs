//! Signed, expiring session tokens: what `POST /api/login` returns and what
//! `{"type":"login","token":T}` and `resume` present.
//!
//! A token is `name_key.expiry_unix_s.signature`, where the signature is
//! HMAC-SHA256 over a domain tag, the name key and the expiry, keyed with the
//! host's random secret (kept in the store's meta table, so tokens survive a
//! restart), in unpadded URL-safe base64. Names are `[a-z0-9_]` after keying,
//! so `.` cannot occur inside a part and the token needs no escaping in JSON
//! or a URL.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::protocol::names::validate_name;

type HmacSha256 = Hmac<Sha256>;

/// Longest token `verify` will look at: a 20-character name, a 20-digit
/// expiry and a 43-character signature fit with room to spare.
pub const TOKEN_CHARS_MAX: usize = 128;

/// Separates this use of the secret from any future one (and this format
/// from a future version of it).
const DOMAIN_TAG: &[u8] = b"mudshard-session-v1";

/// Why a token was refused; the protocol answers all of them the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not three well-formed parts, or too long.
    Malformed,
    /// The signature does not match (tampered, or another host's secret).
    BadSignature,
    /// Signed correctly, but past its expiry.
    Expired,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Malformed => write!(f, "token is malformed"),
            TokenError::BadSignature => write!(f, "token signature does not match"),
            TokenError::Expired => write!(f, "token has expired"),
        }
    }
}

impl std::error::Error for TokenError {}

/// Issues and checks tokens with one host's secret. Immutable, so shards can
/// share one behind an `Arc` or each keep a copy.
#[derive(Clone)]
pub struct TokenSigner {
    secret: Vec<u8>,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSigner { secret: <redacted> }")
    }
}

impl TokenSigner {
    /// A signer keyed with `secret` (the store's `Snapshot::token_secret`).
    pub fn new(secret: &[u8]) -> TokenSigner {
        assert!(
            secret.len() >= 16,
            "token secret must have at least 16 bytes"
        );
        TokenSigner {
            secret: secret.to_vec(),
        }
    }

    /// A token for `name_key` valid for `ttl_s` seconds from now.
    pub fn issue(&self, name_key: &str, ttl_s: u64) -> String {
        self.issue_at(name_key, unix_now_s(), ttl_s)
    }

    /// A token for `name_key` valid for `ttl_s` seconds from `now_unix_s`.
    pub fn issue_at(&self, name_key: &str, now_unix_s: u64, ttl_s: u64) -> String {
        debug_assert!(!name_key.contains('.'), "name keys never contain '.'");
        let expiry_unix_s = now_unix_s.saturating_add(ttl_s);
        let signature = self.mac(name_key, expiry_unix_s).finalize().into_bytes();
        format!(
            "{name_key}.{expiry_unix_s}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// The name key a valid token was issued for. The signature is compared in
    /// constant time, and checked before the expiry, so an attacker learns
    /// nothing from a forged token but "bad signature".
    pub fn verify(&self, token: &str, now_unix_s: u64) -> Result<String, TokenError> {
        if token.len() > TOKEN_CHARS_MAX {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(name_key), Some(expiry), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let expiry_unix_s: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        match validate_name(name_key) {
            Ok(key) if key == name_key => {}
            _ => return Err(TokenError::Malformed),
        }
        self.mac(name_key, expiry_unix_s)
            .verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        if now_unix_s >= expiry_unix_s {
            return Err(TokenError::Expired);
        }
        Ok(name_key.to_owned())
    }

    fn mac(&self, name_key: &str, expiry_unix_s: u64) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.secret).expect("HMAC takes keys of any length"); // ok: HMAC accepts keys of any length
        mac.update(DOMAIN_TAG);
        mac.update(b"|");
        mac.update(name_key.as_bytes());
        mac.update(b"|");
        mac.update(expiry_unix_s.to_string().as_bytes());
        mac
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn signer() -> TokenSigner {
        TokenSigner::new(&[7u8; 32])
    }

    #[test]
    fn an_issued_token_verifies_to_its_name_until_it_expires() {
        let token = signer().issue_at("alice", NOW, 3600);
        assert!(token.starts_with("alice.1700003600."), "{token}");
        assert!(token.len() <= TOKEN_CHARS_MAX);
        assert_eq!(signer().verify(&token, NOW), Ok("alice".to_owned()));
        assert_eq!(signer().verify(&token, NOW + 3599), Ok("alice".to_owned()));
        assert_eq!(
            signer().verify(&token, NOW + 3600),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_tampered_token_or_another_secret_is_a_bad_signature() {
        let token = signer().issue_at("alice", NOW, 3600);
        let other_name = token.replacen("alice", "mallo", 1);
        assert_eq!(
            signer().verify(&other_name, NOW),
            Err(TokenError::BadSignature)
        );
        let later = token.replacen("1700003600", "1700009999", 1);
        assert_eq!(signer().verify(&later, NOW), Err(TokenError::BadSignature));
        let mut flipped = token.clone();
        let last = flipped.pop().expect("non-empty");
        flipped.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(
            signer().verify(&flipped, NOW),
            Err(TokenError::BadSignature)
        );
        let stranger = TokenSigner::new(&[8u8; 32]);
        assert_eq!(stranger.verify(&token, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn garbage_is_malformed() {
        let token = signer().issue_at("alice", NOW, 3600);
        for bad in [
            "",
            "alice",
            "alice.1",
            "alice.x.AAAA",
            "alice.1.!!!",
            "Alice.1700003600.AAAA",
            &format!("{token}.extra"),
            &"a".repeat(TOKEN_CHARS_MAX + 1),
        ] {
            assert_eq!(
                signer().verify(bad, NOW),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }
}
