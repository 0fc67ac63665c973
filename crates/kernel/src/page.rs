//! Keyset pagination: `?limit=1..100&cursor=…` in, `{items, next_cursor}` out.
//! Ids are UUID v7, so "after this id" is "after this point in time".

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::Problem;

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// The raw paging parameters of a list endpoint.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Opaque cursor from a previous page's `next_cursor`.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

/// A validated page request: how many, and after which id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<Uuid>,
}

impl PageRequest {
    /// Rows to fetch: one more than the page, to learn whether another follows.
    #[must_use]
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

impl PageQuery {
    /// Validates the query for the list named `scope`; a cursor minted for
    /// another list, or not minted here at all, is a 400.
    pub fn parse(&self, scope: &str) -> Result<PageRequest, Problem> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Problem::invalid_field(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let after = match &self.cursor {
            None => None,
            Some(c) => Some(
                decode_cursor(scope, c)
                    .ok_or_else(|| Problem::bad_request("the cursor is not valid for this list"))?,
            ),
        };
        Ok(PageRequest {
            limit: u32::try_from(limit).unwrap_or(20),
            after,
        })
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `fetch_limit()` rows ordered by `key`.
    pub fn from_rows(
        mut rows: Vec<T>,
        request: PageRequest,
        scope: &str,
        key: impl Fn(&T) -> Uuid,
    ) -> Self {
        let limit = request.limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| encode_cursor(scope, key(last)))
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

fn check(scope: &str, id: &Uuid) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(b"stampede-cursor-v1")
        .chain_update(scope.as_bytes())
        .chain_update(id.as_bytes())
        .finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn encode_cursor(scope: &str, id: Uuid) -> String {
    let mut raw = Vec::with_capacity(20);
    raw.extend_from_slice(id.as_bytes());
    raw.extend_from_slice(&check(scope, &id));
    URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(scope: &str, cursor: &str) -> Option<Uuid> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    if raw.len() != 20 {
        return None;
    }
    let id = Uuid::from_slice(&raw[..16]).ok()?;
    (raw[16..] == check(scope, &id)).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(limit: Option<i64>, cursor: Option<&str>) -> PageQuery {
        PageQuery {
            limit,
            cursor: cursor.map(str::to_owned),
        }
    }

    #[test]
    fn limit_defaults_to_twenty_and_must_be_in_range() {
        assert_eq!(
            query(None, None).parse("users").map(|r| r.limit).ok(),
            Some(20)
        );
        assert_eq!(
            query(Some(0), None)
                .parse("users")
                .map_err(|p| p.status)
                .err(),
            Some(422)
        );
        assert_eq!(
            query(Some(101), None)
                .parse("users")
                .map_err(|p| p.status)
                .err(),
            Some(422)
        );
        assert!(query(Some(100), None).parse("users").is_ok());
    }

    #[test]
    fn a_cursor_round_trips_only_in_its_own_list() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let request = query(Some(2), None).parse("users").expect("valid");
        let page = Page::from_rows(ids.clone(), request, "users", |id| *id);
        let cursor = page.next_cursor.expect("a next page");
        let next = query(Some(2), Some(&cursor))
            .parse("users")
            .expect("own cursor");
        assert_eq!(next.after, Some(ids[1]));
        let foreign = query(Some(2), Some(&cursor))
            .parse("events")
            .map_err(|p| p.status);
        assert_eq!(foreign.err(), Some(400));
    }

    #[test]
    fn forged_cursors_are_rejected() {
        for forged in ["", "abc", "AAAAAAAAAAAAAAAAAAAAAAAAAAA", "!!!"] {
            let r = query(None, Some(forged))
                .parse("users")
                .map_err(|p| p.status);
            assert_eq!(r.err(), Some(400), "{forged:?}");
        }
    }

    #[test]
    fn the_last_page_has_no_cursor() {
        let request = query(Some(5), None).parse("users").expect("valid");
        let page = Page::from_rows(vec![Uuid::now_v7()], request, "users", |id| *id);
        assert!(page.next_cursor.is_none());
        assert_eq!(page.items.len(), 1);
    }
}
