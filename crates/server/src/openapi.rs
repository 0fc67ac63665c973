//! The OpenAPI document's frame: title, bearer scheme, shared schemas, and
//! the answers the middleware gives on every route. The paths come from each
//! module's `#[utoipa::path]` handlers.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Stampede",
        description = "Promotions and limited sales under a rush. Errors are `application/problem+json` with a stable `code`.",
    ),
    components(schemas(kernel::ProblemDetails, kernel::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "identity", description = "Sign-up, login, tokens, users and roles"),
        (name = "rewards", description = "Events, the reward catalogue and event rewards"),
        (name = "coupons", description = "Coupon campaigns and first-come coupon issuance"),
        (name = "products", description = "Products on sale, with their live remaining stock"),
        (name = "park", description = "Attractions with hashtags, waiting lines, calls and admission"),
        (name = "reservations", description = "Holds of products' units, all or none, that expire by themselves"),
        (name = "orders", description = "Orders placed from holds, with coupons, on their way to payment"),
        (name = "tickets", description = "Tickets of paid orders and check-in"),
        (name = "waiting-lists", description = "Waiting lists of sold-out products: live rank, offers when units come back"),
        (name = "operations", description = "Health and readiness"),
        (name = "webhooks", description = "Outbound webhooks for integrators: endpoints, delivery log, replay"),
        (name = "bus", description = "Dead letters: deliveries that exhausted their retries"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from POST /api/v1/auth/login"))
                    .build(),
            ),
        );
    }
}

/// Answers no handler writes, given before or around it by the middleware
/// and the extractors: a route's own rows name what its use case answers,
/// and this adds, where they can happen, the rest — so that a generated
/// client or a schema-driven fuzzer meets no undocumented status. Applied
/// to the finished document, once the routes are in.
pub struct MiddlewareAnswers;

impl MiddlewareAnswers {
    fn answers(operation: &Operation) -> Vec<(&'static str, &'static str)> {
        let secured = operation
            .security
            .as_ref()
            .is_some_and(|requirements| !requirements.is_empty());
        let parameters = operation.parameters.as_deref().unwrap_or_default();
        let has_query = parameters
            .iter()
            .any(|p| matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Query)));
        let has_body = operation.request_body.is_some();
        let mut answers = Vec::new();
        if has_body || !parameters.is_empty() {
            answers.push((
                "400",
                "Malformed JSON, a wrong type, or a malformed path or query value",
            ));
        }
        if secured {
            answers.push(("401", "Not signed in, or a bad token"));
        }
        if has_body {
            answers.push(("413", "The body is over `body_limit_bytes`"));
            answers.push(("415", "The body is not `application/json`"));
        }
        if has_body || has_query {
            answers.push(("422", "Well-formed but invalid values"));
        }
        answers.push(("408", "The request body did not arrive in time"));
        answers.push(("429", "Rate limited; see `Retry-After`"));
        answers.push(("503", "A dependency is unavailable; see `Retry-After`"));
        answers
    }
}

impl Modify for MiddlewareAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                for (status, description) in Self::answers(operation) {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| {
                            ResponseBuilder::new()
                                .description(description)
                                .content(
                                    kernel::error::PROBLEM_CONTENT_TYPE,
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name("ProblemDetails")))
                                        .build(),
                                )
                                .build()
                                .into()
                        });
                }
            }
        }
    }
}
