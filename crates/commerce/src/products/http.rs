//! The product routes: staff create and edit, anyone reads.

use std::sync::Arc;

use kernel::auth::Staff;
use kernel::http::{Created, Json, Path, Query};
use kernel::{Page, PageQuery, Problem, ProblemDetails};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{NewProduct, ProductId, ProductKind, ProductPatch, ProductView};
use super::service::ProductService;

/// The `/api/v1` routes of products.
pub fn router(service: Arc<ProductService>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(create_product, list_products))
        .routes(routes!(get_product, update_product))
        .with_state(service)
}

type State = axum::extract::State<Arc<ProductService>>;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct KindQuery {
    /// Only products of this kind.
    kind: Option<ProductKind>,
}

/// Create a product (staff).
#[utoipa::path(post, path = "/products", tag = "products", security(("bearer" = [])),
    request_body = NewProduct,
    responses(
        (status = 201, description = "Created", body = ProductView),
        (status = 400, description = "Malformed JSON or wrong types", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::StaffOnly,
    ))]
async fn create_product(
    axum::extract::State(s): State,
    staff: Staff,
    Json(body): Json<NewProduct>,
) -> Result<Created<ProductView>, Problem> {
    Ok(Created(s.create(&staff, &body).await?))
}

/// List products, each with `remaining` and when it was read.
#[utoipa::path(get, path = "/products", tag = "products",
    params(PageQuery, KindQuery),
    responses(
        (status = 200, description = "A page of products", body = Page<ProductView>),
        (status = 400, description = "Bad cursor or kind", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`limit` out of range", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
async fn list_products(
    axum::extract::State(s): State,
    Query(q): Query<PageQuery>,
    Query(kind): Query<KindQuery>,
) -> Result<Json<Page<ProductView>>, Problem> {
    let page = q.parse("products")?;
    Ok(Json(s.list(kind.kind, page).await?))
}

/// One product with its live `remaining`.
#[utoipa::path(get, path = "/products/{id}", tag = "products",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The product", body = ProductView),
        (status = 404, description = "No such product", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::ById,
    ))]
async fn get_product(
    axum::extract::State(s): State,
    Path(id): Path<ProductId>,
) -> Result<Json<ProductView>, Problem> {
    Ok(Json(s.product(id).await?))
}

/// Change a product (staff).
#[utoipa::path(patch, path = "/products/{id}", tag = "products", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    request_body = ProductPatch,
    responses(
        (status = 200, description = "The changed product", body = ProductView),
        (status = 400, description = "Malformed id or body", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`STOCK_BELOW_TAKEN`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::StaffOnly,
    ))]
async fn update_product(
    axum::extract::State(s): State,
    staff: Staff,
    Path(id): Path<ProductId>,
    Json(body): Json<ProductPatch>,
) -> Result<Json<ProductView>, Problem> {
    Ok(Json(s.update(&staff, id, &body).await?))
}
