//! The OpenAPI document's frame: title, bearer scheme, shared schemas, and
//! the answers the middleware gives on every route. The paths come from each
//! module's `#[utoipa::path]` handlers.

use utoipa::Number;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, Parameter, ParameterIn};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayItems, KnownFormat, Object, Schema, SchemaFormat,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, ContentBuilder, Ref, RefOr, ResponseBuilder};
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
        for operation in operations(openapi) {
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

/// Every operation of the document.
fn operations(openapi: &mut utoipa::openapi::OpenApi) -> impl Iterator<Item = &mut Operation> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
        ]
        .into_iter()
        .flatten()
    })
}

/// Integer widths as the OpenAPI format registry names them, with their
/// ranges: utoipa spells an unsigned format `u-int32`, which no tool knows,
/// and without `non_strict_integers` declares a `u32` as `int32`, whose
/// range stops at 2^31 − 1 while the server accepts up to 2^32 − 1.
pub struct IntegerRanges;

impl IntegerRanges {
    /// The registry's name and the range of a width utoipa knows.
    fn registry(format: &KnownFormat) -> Option<(&'static str, i128, i128)> {
        Some(match format {
            KnownFormat::Int8 => ("int8", i128::from(i8::MIN), i128::from(i8::MAX)),
            KnownFormat::Int16 => ("int16", i128::from(i16::MIN), i128::from(i16::MAX)),
            KnownFormat::UInt8 => ("uint8", 0, i128::from(u8::MAX)),
            KnownFormat::UInt16 => ("uint16", 0, i128::from(u16::MAX)),
            KnownFormat::UInt32 => ("uint32", 0, i128::from(u32::MAX)),
            KnownFormat::UInt64 => ("uint64", 0, i128::from(u64::MAX)),
            _ => return None,
        })
    }

    fn number(value: i128) -> Option<Number> {
        usize::try_from(value)
            .map(Number::UInt)
            .ok()
            .or_else(|| isize::try_from(value).ok().map(Number::Int))
    }

    /// Renames the format and adds the width's bounds where the field has
    /// none of its own (a field's own bounds are narrower).
    fn fix(object: &mut Object) {
        let Some(SchemaFormat::KnownFormat(format)) = &object.format else {
            return;
        };
        let Some((name, min, max)) = Self::registry(format) else {
            return;
        };
        object.format = Some(SchemaFormat::Custom(name.to_owned()));
        if object.minimum.is_none() {
            object.minimum = Self::number(min);
        }
        if object.maximum.is_none() {
            object.maximum = Self::number(max);
        }
    }

    fn walk(schema: &mut RefOr<Schema>) {
        let RefOr::T(schema) = schema else {
            return;
        };
        match schema {
            Schema::Object(object) => {
                Self::fix(object);
                object.properties.values_mut().for_each(Self::walk);
                if let Some(AdditionalProperties::RefOr(inner)) =
                    object.additional_properties.as_deref_mut()
                {
                    Self::walk(inner);
                }
            }
            Schema::Array(array) => {
                if let ArrayItems::RefOrSchema(inner) = &mut array.items {
                    Self::walk(inner);
                }
            }
            Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(Self::walk),
            Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(Self::walk),
            Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(Self::walk),
            _ => {}
        }
    }

    fn walk_content(content: &mut RefOr<Content>) {
        if let RefOr::T(Content {
            schema: Some(schema),
            ..
        }) = content
        {
            Self::walk(schema);
        }
    }
}

impl Modify for IntegerRanges {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.schemas.values_mut().for_each(Self::walk);
        }
        for operation in operations(openapi) {
            for parameter in operation.parameters.iter_mut().flatten() {
                if let RefOr::T(Parameter {
                    schema: Some(schema),
                    ..
                }) = parameter
                {
                    Self::walk(schema);
                }
            }
            if let Some(RefOr::T(body)) = operation.request_body.as_mut() {
                body.content.values_mut().for_each(Self::walk_content);
            }
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response.content.values_mut().for_each(Self::walk_content);
                    for header in response.headers.values_mut() {
                        if let RefOr::T(Header {
                            schema: Some(schema),
                            ..
                        }) = header
                        {
                            Self::walk(schema);
                        }
                    }
                }
            }
        }
    }
}
