//! The problem answers many routes share, as response sets for
//! `#[utoipa::path(responses(...))]`: a route lists its own answers and names
//! the set its role rule or its paging brings (`StaffOnly`, `Paged`), so the
//! same rows are not written out at every route.

use utoipa::IntoResponses;

use crate::error::ProblemDetails;

/// Any signed-in caller.
#[derive(IntoResponses)]
pub enum SignedIn {
    #[response(
        status = 401,
        description = "Not signed in",
        content_type = "application/problem+json"
    )]
    NotSignedIn(ProblemDetails),
}

/// `OPERATOR` or `ADMIN`.
#[derive(IntoResponses)]
pub enum StaffOnly {
    #[response(
        status = 401,
        description = "Not signed in",
        content_type = "application/problem+json"
    )]
    NotSignedIn(ProblemDetails),
    #[response(
        status = 403,
        description = "Not staff",
        content_type = "application/problem+json"
    )]
    NotStaff(ProblemDetails),
}

/// `ADMIN` only.
#[derive(IntoResponses)]
pub enum AdminOnly {
    #[response(
        status = 401,
        description = "Not signed in",
        content_type = "application/problem+json"
    )]
    NotSignedIn(ProblemDetails),
    #[response(
        status = 403,
        description = "Not an ADMIN",
        content_type = "application/problem+json"
    )]
    NotAdmin(ProblemDetails),
}

/// Readers: `AUDITOR`, `OPERATOR` or `ADMIN`.
#[derive(IntoResponses)]
pub enum ReadersOnly {
    #[response(
        status = 401,
        description = "Not signed in",
        content_type = "application/problem+json"
    )]
    NotSignedIn(ProblemDetails),
    #[response(
        status = 403,
        description = "Not a reader",
        content_type = "application/problem+json"
    )]
    NotReader(ProblemDetails),
}

/// A route whose path carries one id.
#[derive(IntoResponses)]
pub enum ById {
    #[response(
        status = 400,
        description = "Malformed id",
        content_type = "application/problem+json"
    )]
    MalformedId(ProblemDetails),
}

/// A keyset-paginated listing (`limit`, `cursor`).
#[derive(IntoResponses)]
pub enum Paged {
    #[response(
        status = 400,
        description = "Bad cursor",
        content_type = "application/problem+json"
    )]
    BadCursor(ProblemDetails),
    #[response(
        status = 422,
        description = "`limit` out of range",
        content_type = "application/problem+json"
    )]
    LimitOutOfRange(ProblemDetails),
}
