//! Resume tokens: the unguessable secret a session (a guest's above all, which
//! has no account to sign a token for) presents with `resume` to reattach
//! after its connection dropped (DESIGN.md §4).
//!
//! A token is `s.` followed by 128 bits from the OS random source in unpadded
//! URL-safe base64 (22 characters), so it needs no escaping in JSON or a URL.
//! Holding it is the whole proof of identity, so it must be unguessable, and
//! it is compared in constant time so that timing tells nothing about how much
//! of a guess was right.
//!
//! Called a session token, not a "token", because `shard/session.rs` already
//! has rate-limit tokens and `auth/token.rs` signed account tokens.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Random bits in a token: 128, past any guessing for the token's lifetime.
pub const SESSION_TOKEN_RANDOM_BYTES: usize = 16;

/// Tells a session token apart from a signed account token of
/// `auth/token.rs`, `name_key.expiry_unix_s.signature`: a name key has at
/// least 3 characters, so an account token never has a `.` at index 1, and it
/// has two dots where a session token has one (URL-safe base64 has none).
pub const SESSION_TOKEN_PREFIX: &str = "s.";

/// Characters of a whole token: the prefix and 16 bytes in unpadded base64.
pub const SESSION_TOKEN_CHARS: usize =
    SESSION_TOKEN_PREFIX.len() + (SESSION_TOKEN_RANDOM_BYTES * 8).div_ceil(6);

/// The OS random source failed, so no token can be made. The caller refuses
/// the login that wanted one rather than hand out a guessable token.
#[derive(Debug)]
pub struct RandomUnavailable(getrandom::Error);

impl fmt::Display for RandomUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the OS random source failed: {}", self.0)
    }
}

impl std::error::Error for RandomUnavailable {}

/// Makes and checks resume tokens. Holds no state: the tokens themselves are
/// kept by whoever owns the sessions they resume.
pub struct SessionToken;

impl SessionToken {
    /// A new token with `SESSION_TOKEN_RANDOM_BYTES` bytes from the OS.
    pub fn generate() -> Result<String, RandomUnavailable> {
        let mut random = [0u8; SESSION_TOKEN_RANDOM_BYTES];
        getrandom::getrandom(&mut random).map_err(RandomUnavailable)?;
        let mut token = String::with_capacity(SESSION_TOKEN_CHARS);
        token.push_str(SESSION_TOKEN_PREFIX);
        URL_SAFE_NO_PAD.encode_string(random, &mut token);
        Ok(token)
    }

    /// Whether `token` has the shape of a session token (prefix, length,
    /// alphabet), so `resume` can tell it from an account token before
    /// looking anything up. Says nothing about whether it is valid.
    pub fn looks_like(token: &str) -> bool {
        let Some(encoded) = token.strip_prefix(SESSION_TOKEN_PREFIX) else {
            return false;
        };
        token.len() == SESSION_TOKEN_CHARS
            && encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    /// Whether `a` and `b` are the same token, in time that depends only on
    /// their lengths: every byte is compared, whatever differs. The lengths
    /// are not secret (every token has `SESSION_TOKEN_CHARS`), so unequal
    /// lengths return at once.
    pub fn matches(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
        // Keeps the optimizer from turning the fold into an early exit.
        std::hint::black_box(difference) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::token::{TokenError, TokenSigner};
    use std::collections::HashSet;

    fn token() -> String {
        SessionToken::generate().expect("the OS random source works in tests")
    }

    #[test]
    fn a_token_is_the_prefix_and_22_url_safe_characters() {
        let t = token();
        assert_eq!(SESSION_TOKEN_CHARS, 24);
        assert_eq!(t.len(), SESSION_TOKEN_CHARS, "{t}");
        assert!(t.starts_with(SESSION_TOKEN_PREFIX), "{t}");
        let encoded = &t[SESSION_TOKEN_PREFIX.len()..];
        assert!(
            encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{t}"
        );
        let random = URL_SAFE_NO_PAD.decode(encoded).expect("valid base64");
        assert_eq!(random.len(), SESSION_TOKEN_RANDOM_BYTES);
        assert!(SessionToken::looks_like(&t));
    }

    #[test]
    fn ten_thousand_tokens_are_distinct() {
        let tokens: HashSet<String> = (0..10_000).map(|_| token()).collect();
        assert_eq!(tokens.len(), 10_000);
    }

    #[test]
    fn every_bit_is_set_in_about_half_the_tokens() {
        let samples = 2000;
        let mut set = [0u32; SESSION_TOKEN_RANDOM_BYTES * 8];
        for _ in 0..samples {
            let t = token();
            let random = URL_SAFE_NO_PAD
                .decode(&t[SESSION_TOKEN_PREFIX.len()..])
                .expect("valid base64");
            for (bit, count) in set.iter_mut().enumerate() {
                *count += u32::from((random[bit / 8] >> (bit % 8)) & 1);
            }
        }
        // 35–65 % is over 13 standard deviations from half at 2000 samples:
        // a failure means a broken source, not bad luck.
        for (bit, &count) in set.iter().enumerate() {
            assert!(
                (700..=1300).contains(&count),
                "bit {bit} set in {count} of {samples} tokens"
            );
        }
    }

    #[test]
    fn a_session_token_is_never_taken_for_an_account_token() {
        let t = token();
        let signer = TokenSigner::new(&[7u8; 32]);
        assert_eq!(signer.verify(&t, 0), Err(TokenError::Malformed));
        let account = signer.issue_at("alice", 1_700_000_000, 3600);
        assert!(!SessionToken::looks_like(&account));
        // Even an account token whose name would spell the prefix.
        let account = signer.issue_at("s_x", 1_700_000_000, 3600);
        assert!(!SessionToken::looks_like(&account));
    }

    #[test]
    fn looks_like_refuses_wrong_shapes() {
        let t = token();
        let encoded = &t[SESSION_TOKEN_PREFIX.len()..];
        for bad in [
            String::new(),
            "s.".to_owned(),
            format!("g.{encoded}"),
            format!("{t}A"),
            t[..t.len() - 1].to_owned(),
            format!("s.{}!", &encoded[1..]),
            format!("s.{}=", &encoded[1..]),
            format!("s.{}.", &encoded[1..]),
            format!("s.{}é", &encoded[2..]),
        ] {
            assert!(!SessionToken::looks_like(&bad), "{bad}");
        }
    }

    #[test]
    fn the_constant_time_compare_agrees_with_equality() {
        let t = token();
        let u = token();
        let mut last_differs = t.clone();
        last_differs.pop();
        last_differs.push(if t.ends_with('A') { 'B' } else { 'A' });
        let mut first_differs = t.clone();
        first_differs.replace_range(0..1, "g");
        let cases = [
            (t.as_str(), t.as_str()),
            (t.as_str(), u.as_str()),
            (t.as_str(), last_differs.as_str()),
            (t.as_str(), first_differs.as_str()),
            (t.as_str(), &t[..t.len() - 1]),
            (t.as_str(), ""),
            ("", ""),
            ("abc", "abd"),
            ("abc", "abc"),
        ];
        for (a, b) in cases {
            assert_eq!(SessionToken::matches(a, b), a == b, "{a:?} vs {b:?}");
            assert_eq!(SessionToken::matches(b, a), a == b, "{b:?} vs {a:?}");
        }
        assert!(SessionToken::matches(&t, &t.clone()));
    }
}
