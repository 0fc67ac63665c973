//! Products on sale: the list (by kind, paged) with each one's stock, what
//! remains and where its sale window stands; staff create and edit them,
//! a refusal shown on its form with what was typed; each product's waiting
//! list in join order, with the ranks and the offers outstanding. Auditors
//! see it all without a form.

use std::str::FromStr;

use askama::Template;
use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use commerce::products::{NewProduct, ProductId, ProductKind, ProductPatch, ProductView};
use commerce::waitlist::{EntryStatus, WaitingListEntry};
use http::StatusCode;
use kernel::auth::Staff;
use kernel::{PageQuery, Problem, Timestamp};

use crate::Admin;
use crate::form::{choice, datetime_local, moment, optional_moment, optional_whole, whole};
use crate::page::{self, Chrome, FormError, Refusal};
use crate::session::{Fields, Signed};

const LIST_LENGTH: i64 = 50;
const ENTRIES_SHOWN: i64 = 100;
const REFUSED: &str = "Auditors read the products; only staff create or change them.";

/// `path?pairs…`, the pairs URL-encoded: a list's address with its filters.
pub(super) fn href(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        query.append_pair(name, value);
    }
    format!("{path}?{}", query.finish())
}

/// The staff proof and the id of a change, or the page refusing it.
pub(super) fn changing<Id: FromStr>(
    signed: &Signed,
    raw_id: &str,
    refusal: &str,
) -> Result<(Staff, Id), Box<Response>> {
    let Some(staff) = signed.staff else {
        return Err(Box::new(page::refused(refusal)));
    };
    raw_id
        .parse()
        .map(|id| (staff, id))
        .map_err(|_| Box::new(page::not_found()))
}

/// Where a product's sale stands as of its reading.
fn sale_status(product: &ProductView) -> &'static str {
    let now = product.remaining_as_of;
    if now < product.sale_starts_at {
        "SCHEDULED"
    } else if now >= product.sale_ends_at {
        "ENDED"
    } else if product.remaining == Some(0) {
        "SOLD_OUT"
    } else {
        "ON_SALE"
    }
}

struct Row {
    product: ProductView,
    status: &'static str,
}

impl From<ProductView> for Row {
    fn from(product: ProductView) -> Self {
        Self {
            status: sale_status(&product),
            product,
        }
    }
}

#[derive(serde::Deserialize, Default)]
struct ListQuery {
    kind: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "products.html")]
struct ProductsPage {
    chrome: Chrome,
    kind: String,
    kinds: [&'static str; 3],
    rows: Vec<Row>,
    next: Option<String>,
    first: Option<String>,
    create: Fields,
    error: Option<FormError>,
}

async fn listed(
    admin: &Admin,
    kind: &str,
    cursor: Option<String>,
) -> Result<(Vec<Row>, Option<String>), Problem> {
    let of_kind = Some(kind)
        .filter(|k| !k.is_empty())
        .map(ProductKind::from_str)
        .transpose()
        .map_err(|e| Problem::invalid_field("kind", e.to_string()))?;
    let page = PageQuery {
        limit: Some(LIST_LENGTH),
        cursor,
    }
    .parse("products")?;
    let found = admin.products.list(of_kind, page).await?;
    let next = found
        .next_cursor
        .map(|c| href("/admin/products", &[("kind", kind), ("cursor", &c)]));
    Ok((found.items.into_iter().map(Row::from).collect(), next))
}

async fn products_page(
    admin: &Admin,
    signed: &Signed,
    query: ListQuery,
    create: Fields,
    mut error: Option<FormError>,
) -> Response {
    let kind = query.kind.unwrap_or_default();
    let cursor = query.cursor.filter(|c| !c.is_empty());
    let first = cursor
        .is_some()
        .then(|| href("/admin/products", &[("kind", &kind)]));
    let (rows, next) = match listed(admin, &kind, cursor).await {
        Ok(found) => found,
        Err(problem) => {
            error.get_or_insert(FormError::new("filter", problem));
            (Vec::new(), None)
        }
    };
    page::render(
        error.status(),
        &ProductsPage {
            chrome: Chrome::of(signed, "/admin/products"),
            kind,
            kinds: ProductKind::ALL.map(ProductKind::as_str),
            rows,
            next,
            first,
            create,
            error,
        },
    )
}

async fn list(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Query(query): Query<ListQuery>,
) -> Response {
    let create = Fields(vec![("hold_seconds".to_owned(), "600".to_owned())]);
    products_page(&admin, &signed, query, create, None).await
}

fn new_product(fields: &Fields) -> Result<NewProduct, Problem> {
    Ok(NewProduct {
        name: fields.value("name").to_owned(),
        kind: choice(fields, "kind")?,
        price: whole(fields, "price")?,
        currency: Some(fields.value("currency").trim().to_owned()).filter(|c| !c.is_empty()),
        stock: optional_whole(fields, "stock")?,
        per_user_limit: optional_whole(fields, "per_user_limit")?,
        hold_seconds: optional_whole(fields, "hold_seconds")?,
        sale_starts_at: moment(fields, "sale_starts_at")?,
        sale_ends_at: moment(fields, "sale_ends_at")?,
        valid_from: optional_moment(fields, "valid_from")?,
        valid_until: optional_moment(fields, "valid_until")?,
    })
}

async fn create(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Extension(fields): Extension<Fields>,
) -> Response {
    let Some(staff) = signed.staff else {
        return page::refused(REFUSED);
    };
    let created = async {
        let request = new_product(&fields)?;
        Ok::<_, Problem>(admin.products.create(&staff, &request).await?)
    }
    .await;
    match created {
        Ok(product) => page::see_other(&format!("/admin/products/{}", product.id)),
        Err(problem) => {
            let error = Some(FormError::new("create", problem));
            products_page(&admin, &signed, ListQuery::default(), fields, error).await
        }
    }
}

#[derive(Template)]
#[template(path = "product.html")]
struct ProductPage {
    chrome: Chrome,
    row: Row,
    edit: Fields,
    error: Option<FormError>,
}

/// The edit form holding the product as it is.
fn as_typed(product: &ProductView) -> Fields {
    let optional = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
    Fields(vec![
        ("name".to_owned(), product.name.to_string()),
        ("price".to_owned(), product.price.to_string()),
        ("stock".to_owned(), optional(product.stock)),
        (
            "per_user_limit".to_owned(),
            optional(product.per_user_limit),
        ),
        ("hold_seconds".to_owned(), product.hold_seconds.to_string()),
        (
            "sale_starts_at".to_owned(),
            datetime_local(product.sale_starts_at),
        ),
        (
            "sale_ends_at".to_owned(),
            datetime_local(product.sale_ends_at),
        ),
    ])
}

async fn product_page(
    admin: &Admin,
    signed: &Signed,
    id: ProductId,
    edit: Option<Fields>,
    error: Option<FormError>,
) -> Response {
    let product = match admin.products.product(id).await {
        Ok(product) => product,
        Err(e) => return page::problem(e.into()),
    };
    page::render(
        error.status(),
        &ProductPage {
            chrome: Chrome::of(signed, "/admin/products"),
            edit: edit.unwrap_or_else(|| as_typed(&product)),
            row: Row::from(product),
            error,
        },
    )
}

async fn show(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse() else {
        return page::not_found();
    };
    product_page(&admin, &signed, id, None, None).await
}

fn product_patch(fields: &Fields) -> Result<ProductPatch, Problem> {
    Ok(ProductPatch {
        name: Some(fields.value("name").to_owned()),
        price: Some(whole(fields, "price")?),
        stock: Some(optional_whole(fields, "stock")?),
        per_user_limit: Some(optional_whole(fields, "per_user_limit")?),
        hold_seconds: Some(whole(fields, "hold_seconds")?),
        sale_starts_at: Some(moment(fields, "sale_starts_at")?),
        sale_ends_at: Some(moment(fields, "sale_ends_at")?),
    })
}

async fn edit(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Extension(fields): Extension<Fields>,
    Path(id): Path<String>,
) -> Response {
    let (staff, id) = match changing::<ProductId>(&signed, &id, REFUSED) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let changed = async {
        let patch = product_patch(&fields)?;
        Ok::<_, Problem>(admin.products.update(&staff, id, &patch).await?)
    }
    .await;
    if let Err(problem) = changed {
        let error = Some(FormError::new("edit", problem));
        return product_page(&admin, &signed, id, Some(fields), error).await;
    }
    page::see_other(&format!("/admin/products/{id}"))
}

#[derive(serde::Deserialize, Default)]
struct EntriesQuery {
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "waiting_list.html")]
struct WaitingListPage {
    chrome: Chrome,
    row: Row,
    entries: Vec<WaitingListEntry>,
    /// Of the entries shown: `(entries, units)` waiting and offered.
    waiting: (usize, u64),
    offered: (usize, u64),
    /// The earliest end of an outstanding offer.
    next_offer_end: Option<Timestamp>,
    next: Option<String>,
    first: Option<String>,
}

fn tally(entries: &[WaitingListEntry], status: EntryStatus) -> (usize, u64) {
    entries
        .iter()
        .filter(|e| e.status == status)
        .fold((0, 0), |(n, units), e| {
            (n + 1, units + u64::from(e.quantity))
        })
}

async fn waiting_list(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
    Query(query): Query<EntriesQuery>,
) -> Response {
    let Ok(id) = id.parse::<ProductId>() else {
        return page::not_found();
    };
    let cursor = query.cursor.filter(|c| !c.is_empty());
    let path = format!("/admin/products/{id}/waiting-list");
    let first = cursor.is_some().then(|| path.clone());
    let found = async {
        let product = admin.products.product(id).await?;
        let page = PageQuery {
            limit: Some(ENTRIES_SHOWN),
            cursor,
        }
        .parse("waiting-list")?;
        let entries = admin.waitlist.list(&signed.reader, id, page).await?;
        Ok::<_, Problem>((product, entries))
    }
    .await;
    let (product, entries) = match found {
        Ok(found) => found,
        Err(problem) => return page::problem(problem),
    };
    let items = entries.items;
    page::render(
        StatusCode::OK,
        &WaitingListPage {
            chrome: Chrome::of(&signed, "/admin/products"),
            row: Row::from(product),
            waiting: tally(&items, EntryStatus::Waiting),
            offered: tally(&items, EntryStatus::Offered),
            next_offer_end: items
                .iter()
                .filter(|e| e.status == EntryStatus::Offered)
                .filter_map(|e| e.offer_expires_at)
                .min(),
            entries: items,
            next: entries.next_cursor.map(|c| href(&path, &[("cursor", &c)])),
            first,
        },
    )
}

pub fn routes() -> Router<Admin> {
    Router::new()
        .route("/admin/products", get(list).post(create))
        .route("/admin/products/{id}", get(show).post(edit))
        .route("/admin/products/{id}/waiting-list", get(waiting_list))
}
