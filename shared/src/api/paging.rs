//! Listing parameters and cursors: `page_size`, an opaque `cursor` naming the position after
//! the last entry shown, and the `Link: <…>; rel="next"` URL that keeps every other filter.

use super::{ApiError, query_param};
use crate::domain::delivery::DeliveryId;
use crate::domain::hook::HookPosition;
use crate::domain::receiver_check::CheckId;
use crate::domain::validation::ValidationError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, Uri};

pub const DEFAULT_PAGE_SIZE: usize = 20;
pub const MAX_PAGE_SIZE: usize = 100;
/// `page` walks the listing from its start; past this many entries a cursor is required.
pub const MAX_PAGE_OFFSET: usize = 10_000;

/// `page` (from 1), `page_size` (1 to 100) and `cursor`.
#[derive(Debug)]
pub struct Paging {
    pub page: usize,
    pub size: usize,
    /// As given; each listing decodes its own.
    pub cursor: Option<String>,
}

impl Paging {
    pub fn from_query(query: Option<&str>) -> Result<Self, ApiError> {
        let parse = |name: &str, default: usize, max: usize| -> Result<usize, ApiError> {
            match query_param(query, name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| {
                        ApiError::InvalidPagination(ValidationError::new(
                            name,
                            format!("must be an integer from 1 to {max}"),
                        ))
                    }),
            }
        };
        let page = parse("page", 1, 1_000_000)?;
        let size = parse("page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let cursor = query_param(query, "cursor");
        if page > 1 && cursor.is_some() {
            return Err(ApiError::InvalidPagination(ValidationError::new(
                "page",
                "cannot be combined with cursor",
            )));
        }
        if (page - 1).saturating_mul(size) > MAX_PAGE_OFFSET {
            return Err(ApiError::InvalidPagination(ValidationError::new(
                "page",
                format!("reaches past {MAX_PAGE_OFFSET} entries; follow the cursor instead"),
            )));
        }
        Ok(Self { page, size, cursor })
    }
}

/// The cursor after a delivery of a log listing.
pub fn encode_cursor(after: &DeliveryId) -> String {
    URL_SAFE_NO_PAD.encode(after.to_string())
}

pub fn decode_cursor(cursor: &str) -> Result<DeliveryId, ApiError> {
    decode(cursor)
        .and_then(|id| DeliveryId::parse(&id).ok())
        .ok_or_else(not_a_cursor)
}

/// The cursor after a hook of the hooks listing.
pub fn encode_hook_cursor(after: &HookPosition) -> String {
    URL_SAFE_NO_PAD.encode(after.sort_key())
}

pub fn decode_hook_cursor(cursor: &str) -> Result<HookPosition, ApiError> {
    decode(cursor)
        .and_then(|key| HookPosition::parse_sort_key(&key))
        .ok_or_else(not_a_cursor)
}

/// The cursor after a report of a hook's receiver checks.
pub fn encode_check_cursor(after: &CheckId) -> String {
    URL_SAFE_NO_PAD.encode(after.to_string())
}

pub fn decode_check_cursor(cursor: &str) -> Result<CheckId, ApiError> {
    decode(cursor)
        .and_then(|id| CheckId::parse(&id).ok())
        .ok_or_else(not_a_cursor)
}

fn decode(cursor: &str) -> Option<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

fn not_a_cursor() -> ApiError {
    ApiError::InvalidPagination(ValidationError::new(
        "cursor",
        "is not a cursor of this listing",
    ))
}

/// The URL of the next page: this request's URL with `cursor` set and `page` dropped.
pub fn next_link(uri: &Uri, headers: &HeaderMap, cursor: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(q) = uri.query() {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            if k != "cursor" && k != "page" {
                query.append_pair(&k, &v);
            }
        }
    }
    query.append_pair("cursor", cursor);
    let origin = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
        _ => {
            let host = headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            let scheme = headers
                .get("x-forwarded-proto")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("http");
            format!("{scheme}://{host}")
        }
    };
    format!("<{origin}{}?{}>; rel=\"next\"", uri.path(), query.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let id = DeliveryId::lowest_at(1_795_000_000_000);
        let cursor = encode_cursor(&id);
        assert_eq!(decode_cursor(&cursor).unwrap(), id);
        for bad in ["", "nope", "bXNnX25vcGU", "%%%"] {
            assert!(decode_cursor(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_next_link_keeps_every_filter() {
        let uri: Uri =
            "/api/hooks/hook_a/recent-logs?event=PostSignIn&page=2&cursor=old&result=Error"
                .parse()
                .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(
            next_link(&uri, &headers, "abc"),
            "<http://127.0.0.1:3000/api/hooks/hook_a/recent-logs?event=PostSignIn&result=Error&cursor=abc>; rel=\"next\""
        );
        let absolute: Uri = "https://api.example.com/api/hooks/h/recent-logs"
            .parse()
            .unwrap();
        assert_eq!(
            next_link(&absolute, &HeaderMap::new(), "c"),
            "<https://api.example.com/api/hooks/h/recent-logs?cursor=c>; rel=\"next\""
        );
    }

    #[test]
    fn page_and_cursor_are_bounded() {
        assert!(Paging::from_query(Some("page=2&page_size=100")).is_ok());
        assert!(Paging::from_query(Some("page=102&page_size=100")).is_err());
        let cursor = encode_cursor(&DeliveryId::lowest_at(5));
        assert!(Paging::from_query(Some(&format!("page=2&cursor={cursor}"))).is_err());
        assert!(decode_cursor("junk").is_err());
        let at = HookPosition {
            created_at: 1_795_000_000_000,
            id: crate::domain::hook::HookId::parse("hook_a1").unwrap(),
        };
        assert_eq!(decode_hook_cursor(&encode_hook_cursor(&at)).unwrap(), at);
        assert!(decode_hook_cursor(&encode_cursor(&DeliveryId::lowest_at(5))).is_err());
    }
}
