//! Bearer-token authentication: admin tokens may do everything, ingest tokens only post events.
//! Several tokens of each kind may be active (rotation); comparison is constant-time.

use super::ApiError;
use http::HeaderMap;
use std::fmt;
use subtle::ConstantTimeEq;

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Ingest,
    Admin,
}

#[derive(Clone, Default)]
pub struct Tokens {
    admin: Vec<String>,
    ingest: Vec<String>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tokens {{ admin: {} token(s), ingest: {} token(s) }}",
            self.admin.len(),
            self.ingest.len()
        )
    }
}

impl Tokens {
    /// Tokens from comma- or newline-separated lists; blanks are ignored.
    pub fn from_lists(admin: &str, ingest: &str) -> Self {
        let split = |s: &str| {
            s.split([',', '\n'])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        Self {
            admin: split(admin),
            ingest: split(ingest),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.admin.is_empty() && self.ingest.is_empty()
    }

    /// Checks the request's bearer token against what the route needs.
    pub fn authorize(&self, headers: &HeaderMap, need: Access) -> Result<(), ApiError> {
        let presented = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let is_admin = matches_any(&self.admin, presented);
        let is_ingest = matches_any(&self.ingest, presented);
        match (need, is_admin, is_ingest) {
            (_, true, _) => Ok(()),
            (Access::Ingest, false, true) => Ok(()),
            (Access::Admin, false, true) => Err(ApiError::Forbidden),
            _ => Err(ApiError::Unauthorized),
        }
    }
}

/// Compares against every token, without stopping early, in constant time per token.
fn matches_any(tokens: &[String], presented: &str) -> bool {
    tokens.iter().fold(false, |found, t| {
        found | bool::from(t.as_bytes().ct_eq(presented.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        );
        h
    }

    #[test]
    fn tokens_reach_only_their_routes() {
        let tokens = Tokens::from_lists("adm1, adm2", "ing1\ning2");
        assert!(tokens.authorize(&bearer("adm2"), Access::Admin).is_ok());
        assert!(tokens.authorize(&bearer("adm1"), Access::Ingest).is_ok());
        assert!(tokens.authorize(&bearer("ing2"), Access::Ingest).is_ok());
        assert!(matches!(
            tokens.authorize(&bearer("ing1"), Access::Admin),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(
            tokens.authorize(&bearer("nope"), Access::Ingest),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            tokens.authorize(&HeaderMap::new(), Access::Ingest),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            tokens.authorize(&bearer(""), Access::Ingest),
            Err(ApiError::Unauthorized)
        ));
        assert!(!format!("{tokens:?}").contains("adm1"));
    }

    #[test]
    fn empty_lists_admit_nobody() {
        let tokens = Tokens::from_lists("", " , ");
        assert!(tokens.is_empty());
        assert!(tokens.authorize(&bearer("x"), Access::Ingest).is_err());
    }
}
