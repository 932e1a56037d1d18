//! Signing keys and request signatures (§4): every delivery carries both Logto's
//! `logto-signature-sha-256` and the Standard Webhooks headers, so existing Logto receivers
//! and the official `standardwebhooks` libraries verify it unchanged.

use std::fmt;

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

const KEY_PREFIX: &str = "whsec_";
const MIN_KEY_CHARS: usize = 24;
const MAX_KEY_CHARS: usize = 256;

/// Standard base64 with canonical padding; non-zero trailing bits are ignored, as Go's
/// `StdEncoding`, Python's `b64decode` and the JavaScript library do.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// A hook's signing key as shown to the operator.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SigningKey(String);

impl SigningKey {
    /// `whsec_` + standard base64 of 32 bytes from the OS CSPRNG.
    ///
    /// # Panics
    /// If the operating system cannot provide random bytes: no key can be issued safely then.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random number generator must be available");
        Self(format!("{KEY_PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// Imports an existing key (e.g. from a Logto installation): 24 to 256 printable ASCII
    /// characters without whitespace.
    pub fn import(s: &str) -> Result<Self, SigningKeyError> {
        let chars = s.chars().count();
        if chars < MIN_KEY_CHARS {
            return Err(SigningKeyError::TooShort);
        }
        if chars > MAX_KEY_CHARS {
            return Err(SigningKeyError::TooLong);
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SigningKeyError::InvalidCharacters);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The Standard Webhooks HMAC secret, derived as the official libraries do: an optional
    /// `whsec_` prefix is dropped and the rest base64-decoded (a 32-character alphanumeric
    /// Logto key decodes to 24 bytes). A key that is not valid base64 signs with its UTF-8
    /// bytes as given, prefix included.
    pub fn standard_secret(&self) -> Vec<u8> {
        let encoded = self.0.strip_prefix(KEY_PREFIX).unwrap_or(&self.0);
        SECRET_BASE64
            .decode(encoded)
            .unwrap_or_else(|_| self.0.as_bytes().to_vec())
    }
}

impl PartialEq for SigningKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for SigningKey {}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl fmt::Display for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SigningKeyError {
    #[error("signing key must be at least {MIN_KEY_CHARS} characters long")]
    TooShort,
    #[error("signing key must be at most {MAX_KEY_CHARS} characters long")]
    TooLong,
    #[error("signing key may only contain printable ASCII characters without whitespace")]
    InvalidCharacters,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("no v1 webhook signature present")]
    MissingSignature,
    #[error("webhook timestamp is not a unix timestamp in seconds")]
    BadTimestamp,
    #[error("webhook timestamp is outside the tolerated window")]
    TimestampOutOfTolerance,
    #[error("no signature matches the payload")]
    Mismatch,
}

fn mac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// Logto's `logto-signature-sha-256`: lowercase hex HMAC-SHA256 keyed with the key string as
/// shown, over the body.
pub fn logto_signature(key: &SigningKey, body: &[u8]) -> String {
    hex::encode(logto_digest(key, body))
}

fn logto_digest(key: &SigningKey, body: &[u8]) -> [u8; 32] {
    let mut mac = mac(key.expose().as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// One Standard Webhooks signature: `v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`.
pub fn standard_signature(key: &SigningKey, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1,{}",
        STANDARD.encode(standard_digest(key, msg_id, timestamp, body))
    )
}

fn standard_digest(key: &SigningKey, msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
    let mut mac = mac(&key.standard_secret());
    mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Signature header values for one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignatureHeaders {
    pub webhook_id: String,
    pub webhook_timestamp: String,
    pub webhook_signature: String,
    pub logto_signature: String,
}

/// Signs one attempt. `keys[0]` is the hook's current key; further keys (rotated keys still in
/// their grace period) add space-separated `webhook-signature` entries. Logto's header has
/// room for one signature only and uses `keys[0]`. With no keys both signatures are empty.
pub fn sign(keys: &[&SigningKey], msg_id: &str, timestamp: i64, body: &[u8]) -> SignatureHeaders {
    let webhook_signature = keys
        .iter()
        .map(|key| standard_signature(key, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ");
    SignatureHeaders {
        webhook_id: msg_id.to_owned(),
        webhook_timestamp: timestamp.to_string(),
        webhook_signature,
        logto_signature: keys
            .first()
            .map(|key| logto_signature(key, body))
            .unwrap_or_default(),
    }
}

/// Verifies a Standard Webhooks delivery from its `webhook-id`, `webhook-timestamp` and
/// `webhook-signature` header values. Accepts when any `v1` signature matches; rejects a
/// timestamp more than `tolerance_secs` away from `now` (unix seconds) in either direction.
pub fn verify(
    key: &SigningKey,
    msg_id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let candidates: Vec<&str> = signatures
        .split_whitespace()
        .filter_map(|s| s.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .map(|(_, sig)| sig)
        .collect();
    if candidates.is_empty() {
        return Err(VerifyError::MissingSignature);
    }
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    if now.abs_diff(ts) > tolerance_secs.max(0).unsigned_abs() {
        return Err(VerifyError::TimestampOutOfTolerance);
    }
    let expected = STANDARD.encode(standard_digest(key, msg_id, ts, body));
    let matched = candidates.iter().fold(subtle::Choice::from(0), |acc, sig| {
        acc | sig.as_bytes().ct_eq(expected.as_bytes())
    });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// Verifies a `logto-signature-sha-256` header value (hex in either case).
pub fn verify_logto(key: &SigningKey, signature_hex: &str, body: &[u8]) -> Result<(), VerifyError> {
    let signature_hex = signature_hex.trim();
    if signature_hex.is_empty() {
        return Err(VerifyError::MissingSignature);
    }
    let given = hex::decode(signature_hex).map_err(|_| VerifyError::Mismatch)?;
    if bool::from(given.ct_eq(&logto_digest(key, body))) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values below were computed independently with Python's hmac/hashlib/base64,
    // not with this module.
    const LOGTO_KEY: &str = "Jk8fQx2LmP9aZr4TbN7vWc1YdE6hGs3U";
    const BODY: &[u8] = br#"{"hookId":"hk_7f3a","event":"PostRegister","createdAt":"2024-05-01T12:00:00.000Z","userId":"u_1"}"#;
    const MSG_ID: &str = "msg_01HZX3Q7VKT2N8M4R6W9Y5B0CD";
    const TS: i64 = 1_714_564_800;

    fn key(s: &str) -> SigningKey {
        SigningKey::import(s).expect("test key is valid")
    }

    #[test]
    fn standard_webhooks_reference_vector() {
        let k = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(
            standard_signature(
                &k,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn logto_hex_vectors() {
        assert_eq!(
            logto_signature(&key(LOGTO_KEY), BODY),
            "a209896cd9f458776b7723d0af631777bf0ed39fbde579d9f4a932b6fbdc5c02"
        );
        // The Logto header keys with the string as shown, prefix included.
        assert_eq!(
            logto_signature(
                &key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                br#"{"test": 2432232314}"#
            ),
            "80ec8a89ce3cd22133a1066caecb4d04fea7467657c8514d717ec42c38a5c94c"
        );
    }

    #[test]
    fn logto_key_is_base64_decoded_for_standard_webhooks() {
        let k = key(LOGTO_KEY);
        assert_eq!(k.standard_secret().len(), 24);
        assert_eq!(
            standard_signature(&k, MSG_ID, TS, BODY),
            "v1,zyD7UMpBCT8WUWE3gRKXLasnhTWMASBLAQsvVW5uk4c="
        );
    }

    #[test]
    fn non_base64_keys_sign_with_their_utf8_bytes() {
        let cases = [
            // '-' is outside the standard alphabet.
            (
                "legacy-signing-key-for-receivers",
                "v1,cHtKPH7NmCNl097KqLrKfQ+68sY7e7UAXSBdxQkGTd4=",
            ),
            // 33 characters: not a whole number of base64 quads.
            (
                "Jk8fQx2LmP9aZr4TbN7vWc1YdE6hGs3Ux",
                "v1,OuSwUa+y3egcTBoR/7l8+8mkOKk1n+4Dd2z+OCpE/SA=",
            ),
            // The prefix stays part of the secret when the rest does not decode.
            (
                "whsec_not-base64-imported-key",
                "v1,Ui25qnX/JoUfRpbG5jpy1/mY86+rKnvSbHwRLZAnTMg=",
            ),
        ];
        for (raw, expected) in cases {
            let k = key(raw);
            assert_eq!(k.standard_secret(), raw.as_bytes());
            assert_eq!(standard_signature(&k, MSG_ID, TS, BODY), expected, "{raw}");
        }
    }

    #[test]
    fn trailing_base64_bits_are_ignored_like_the_official_libraries() {
        let k = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAAAAAAAAAAB=");
        assert_eq!(k.standard_secret().len(), 32);
        assert_eq!(
            standard_signature(&k, MSG_ID, TS, BODY),
            "v1,ul1946H+tk0e++bz6RFZpj6eLXBWjUEgLf8fMpqoaYw="
        );
    }

    #[test]
    fn generated_keys_are_prefixed_32_random_bytes() {
        let a = SigningKey::generate();
        let b = SigningKey::generate();
        let encoded = a.expose().strip_prefix("whsec_").expect("prefix");
        assert_eq!(STANDARD.decode(encoded).expect("base64").len(), 32);
        assert_eq!(a.standard_secret().len(), 32);
        assert_ne!(a, b);
        assert_eq!(SigningKey::import(a.expose()), Ok(a.clone()));
    }

    #[test]
    fn import_rules() {
        assert_eq!(
            SigningKey::import(&"a".repeat(23)),
            Err(SigningKeyError::TooShort)
        );
        assert!(SigningKey::import(&"a".repeat(24)).is_ok());
        assert!(SigningKey::import(&"a".repeat(256)).is_ok());
        assert_eq!(
            SigningKey::import(&"a".repeat(257)),
            Err(SigningKeyError::TooLong)
        );
        for bad in [
            "abcdefghijkl mnopqrstuvwxyz",
            "abcdefghijklmnopqrstuvwxyz\t",
            "abcdefghijklmnopqrstuvwxyzé",
        ] {
            assert_eq!(
                SigningKey::import(bad),
                Err(SigningKeyError::InvalidCharacters)
            );
        }
        let err = SigningKey::import("secret-but-short")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret-but-short"));
    }

    #[test]
    fn key_never_printed() {
        let k = key(LOGTO_KEY);
        assert_eq!(format!("{k:?}"), "SigningKey(***)");
        assert_eq!(k.to_string(), "SigningKey(***)");
        let headers = sign(&[&k], MSG_ID, TS, BODY);
        assert!(!format!("{headers:?}").contains(LOGTO_KEY));
    }

    #[test]
    fn serde_is_a_plain_string_without_validation() {
        let k: SigningKey = serde_json::from_str("\"short\"").expect("legacy keys load");
        assert_eq!(k.expose(), "short");
        assert_eq!(serde_json::to_string(&k).expect("serializes"), "\"short\"");
    }

    #[test]
    fn sign_with_rotated_keys() {
        let current = SigningKey::generate();
        let previous = key(LOGTO_KEY);
        let h = sign(&[&current, &previous], MSG_ID, TS, BODY);
        assert_eq!(h.webhook_id, MSG_ID);
        assert_eq!(h.webhook_timestamp, TS.to_string());
        assert_eq!(h.logto_signature, logto_signature(&current, BODY));
        let sigs: Vec<&str> = h.webhook_signature.split(' ').collect();
        assert_eq!(sigs.len(), 2);
        for (k, sig) in [(&current, sigs[0]), (&previous, sigs[1])] {
            verify(k, MSG_ID, &h.webhook_timestamp, sig, BODY, TS, 300).expect("own key verifies");
            verify(
                k,
                MSG_ID,
                &h.webhook_timestamp,
                &h.webhook_signature,
                BODY,
                TS,
                300,
            )
            .expect("header verifies");
        }
        assert!(matches!(
            verify(
                &previous,
                MSG_ID,
                &h.webhook_timestamp,
                sigs[0],
                BODY,
                TS,
                300
            ),
            Err(VerifyError::Mismatch)
        ));
        verify_logto(&current, &h.logto_signature, BODY).expect("logto verifies");
    }

    #[test]
    fn verify_rejects_tampering_wrong_key_and_stale_timestamps() {
        let k = SigningKey::generate();
        let h = sign(&[&k], MSG_ID, TS, BODY);
        let check = |key: &SigningKey, id: &str, ts: &str, sigs: &str, body: &[u8], now: i64| {
            verify(key, id, ts, sigs, body, now, 300)
        };
        let (ts, sigs) = (h.webhook_timestamp.as_str(), h.webhook_signature.as_str());
        assert!(check(&k, MSG_ID, ts, sigs, BODY, TS + 300).is_ok());
        assert!(check(&k, MSG_ID, ts, sigs, BODY, TS - 300).is_ok());
        assert!(matches!(
            check(&k, MSG_ID, ts, sigs, b"{}", TS),
            Err(VerifyError::Mismatch)
        ));
        assert!(matches!(
            check(&k, "msg_other", ts, sigs, BODY, TS),
            Err(VerifyError::Mismatch)
        ));
        assert!(matches!(
            check(&SigningKey::generate(), MSG_ID, ts, sigs, BODY, TS),
            Err(VerifyError::Mismatch)
        ));
        assert!(matches!(
            check(&k, MSG_ID, ts, sigs, BODY, TS + 301),
            Err(VerifyError::TimestampOutOfTolerance)
        ));
        assert!(matches!(
            check(&k, MSG_ID, ts, sigs, BODY, TS - 301),
            Err(VerifyError::TimestampOutOfTolerance)
        ));
        // A signature for another timestamp does not verify under this one.
        let other_ts = (TS + 1).to_string();
        assert!(matches!(
            check(&k, MSG_ID, &other_ts, sigs, BODY, TS),
            Err(VerifyError::Mismatch)
        ));
        assert!(matches!(
            check(&k, MSG_ID, "soon", sigs, BODY, TS),
            Err(VerifyError::BadTimestamp)
        ));
        assert!(matches!(
            check(&k, MSG_ID, ts, "", BODY, TS),
            Err(VerifyError::MissingSignature)
        ));
        let v2 = sigs.replacen("v1,", "v2,", 1);
        assert!(matches!(
            check(&k, MSG_ID, ts, &v2, BODY, TS),
            Err(VerifyError::MissingSignature)
        ));
    }

    #[test]
    fn verify_logto_accepts_either_hex_case_and_rejects_tampering() {
        let k = key(LOGTO_KEY);
        let sig = "a209896cd9f458776b7723d0af631777bf0ed39fbde579d9f4a932b6fbdc5c02";
        verify_logto(&k, sig, BODY).expect("lowercase");
        verify_logto(&k, &sig.to_uppercase(), BODY).expect("uppercase");
        assert!(matches!(
            verify_logto(&k, sig, b"{}"),
            Err(VerifyError::Mismatch)
        ));
        assert!(matches!(
            verify_logto(&SigningKey::generate(), sig, BODY),
            Err(VerifyError::Mismatch)
        ));
        assert!(matches!(
            verify_logto(&k, "zz", BODY),
            Err(VerifyError::Mismatch)
        ));
        assert!(matches!(
            verify_logto(&k, &sig[..62], BODY),
            Err(VerifyError::Mismatch)
        ));
        assert!(matches!(
            verify_logto(&k, "", BODY),
            Err(VerifyError::MissingSignature)
        ));
    }
}
