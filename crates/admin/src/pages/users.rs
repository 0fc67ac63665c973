//! Users (ADMIN): search by email and change roles. The last ADMIN's row
//! says why its ADMIN role cannot be taken away, before anyone tries.

use askama::Template;
use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::StatusCode;
use identity::model::User;
use kernel::Role;
use kernel::{PageRequest, Problem};

use crate::Admin;
use crate::page::{self, Chrome};
use crate::session::{Fields, Signed};

const LIST_LENGTH: u32 = 50;

struct Row {
    user: User,
    /// The role names it holds, for the checkboxes.
    holds: Vec<&'static str>,
    /// The only ADMIN: its ADMIN box is locked, with the reason.
    last_admin: bool,
}

impl Row {
    fn holds(&self, role: &str) -> bool {
        self.holds.contains(&role)
    }
}

#[derive(Template)]
#[template(path = "users.html")]
struct List {
    chrome: Chrome,
    email: String,
    roles: Vec<&'static str>,
    rows: Vec<Row>,
}

#[derive(serde::Deserialize)]
struct Search {
    email: Option<String>,
}

async fn list(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Query(search): Query<Search>,
) -> Response {
    let Some(caller) = signed.admin else {
        return page::refused("Only an ADMIN manages users and roles.");
    };
    let email = search.email.unwrap_or_default();
    let wanted = Some(email.trim().to_owned()).filter(|e| !e.is_empty());
    let page_of = PageRequest {
        limit: LIST_LENGTH,
        after: None,
    };
    let users = match admin.identity.list_users(&caller, wanted, page_of).await {
        Ok(page) => page.items,
        Err(e) => return page::problem(e.into()),
    };
    let last_admin = match admin.identity.admin_count(&caller).await {
        Ok(1) => users
            .iter()
            .find(|u| u.roles.contains(Role::Admin))
            .map(|u| u.id),
        Ok(_) => None,
        Err(e) => return page::problem(e.into()),
    };
    let rows = users
        .into_iter()
        .map(|user| Row {
            holds: Role::ALL
                .into_iter()
                .filter(|r| user.roles.contains(*r))
                .map(Role::as_str)
                .collect(),
            last_admin: last_admin == Some(user.id),
            user,
        })
        .collect();
    page::render(
        StatusCode::OK,
        &List {
            chrome: Chrome::of(&signed, "/admin/users"),
            email,
            roles: Role::ALL.into_iter().map(Role::as_str).collect(),
            rows,
        },
    )
}

async fn set_roles(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Extension(fields): Extension<Fields>,
    Path(id): Path<String>,
) -> Response {
    let Some(caller) = signed.admin else {
        return page::refused("Only an ADMIN manages users and roles.");
    };
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return page::not_found();
    };
    let roles: Vec<String> = fields.all("role").map(str::to_owned).collect();
    if roles.is_empty() {
        return page::problem(Problem::invalid_field("roles", "choose at least one role"));
    }
    match admin
        .identity
        .set_roles(&caller, kernel::UserId(id), &roles)
        .await
    {
        Ok(_) => page::see_other("/admin/users"),
        Err(e) => page::problem(e.into()),
    }
}

pub fn routes() -> Router<Admin> {
    Router::new()
        .route("/admin/users", get(list))
        .route("/admin/users/{id}/roles", post(set_roles))
}
