//! The OpenAPI document's frame: title, bearer scheme, shared schemas. The
//! paths come from each module's `#[utoipa::path]` handlers.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
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
        (name = "reservations", description = "Holds of products' units, all or none, that expire by themselves"),
        (name = "orders", description = "Orders placed from holds, with coupons, on their way to payment"),
        (name = "tickets", description = "Tickets of paid orders and check-in"),
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
