//! Products and their rules: a name, a kind, a price in minor units, a stock
//! (`None` unlimited), a per-user limit, how long a hold lasts and the sale
//! window. No I/O.

use kernel::text::Name;
use kernel::{Currency, FieldError, Money, Timestamp, Violations, text_form};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

pub use contracts::commerce::ProductId;

/// A hold lasts this long unless the product says otherwise.
pub const DEFAULT_HOLD_SECONDS: u32 = 600;
/// The longest hold a product may ask for: one day.
pub const MAX_HOLD_SECONDS: u32 = 86_400;
/// The most units a product may have; more is a typo, not a sale.
pub const MAX_STOCK: u32 = 100_000_000;

/// What a product is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProductKind {
    General,
    AnnualPass,
    EventTicket,
}

impl ProductKind {
    pub const ALL: [Self; 3] = [Self::General, Self::AnnualPass, Self::EventTicket];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::General => "GENERAL",
            Self::AnnualPass => "ANNUAL_PASS",
            Self::EventTicket => "EVENT_TICKET",
        }
    }
}

text_form!(ProductKind, "GENERAL, ANNUAL_PASS, EVENT_TICKET");

/// The body of `POST /products`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewProduct {
    pub name: String,
    pub kind: ProductKind,
    /// Minor units of `currency`, at least 0.
    pub price: i64,
    /// ISO 4217; default `KRW`.
    pub currency: Option<String>,
    /// Units on sale; null or absent is unlimited.
    pub stock: Option<i64>,
    /// Units one user may hold, order and buy; null or absent is no limit.
    pub per_user_limit: Option<i64>,
    /// How long a hold lasts; default 600.
    pub hold_seconds: Option<i64>,
    pub sale_starts_at: Timestamp,
    /// After `sale_starts_at`.
    pub sale_ends_at: Timestamp,
    pub valid_from: Option<Timestamp>,
    /// Not before `valid_from`.
    pub valid_until: Option<Timestamp>,
}

/// The body of `PATCH /products/{id}`: the fields to change. `stock: null`
/// makes the stock unlimited; an absent field stays as it is.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub price: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub stock: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub per_user_limit: Option<Option<i64>>,
    pub hold_seconds: Option<i64>,
    pub sale_starts_at: Option<Timestamp>,
    pub sale_ends_at: Option<Timestamp>,
}

/// A field that is present, null or not: absent stays `None` by `default`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A product as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: ProductId,
    pub name: Name,
    pub kind: ProductKind,
    pub price: Money,
    pub stock: Option<u32>,
    pub per_user_limit: Option<u32>,
    pub hold_seconds: u32,
    pub sale_starts_at: Timestamp,
    pub sale_ends_at: Timestamp,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The product's fields before the cross-field checks, as a request or a
/// patch leaves them.
struct Fields {
    name: Option<Name>,
    price: Option<i64>,
    currency: Option<Currency>,
    stock: Option<Option<u32>>,
    per_user_limit: Option<Option<u32>>,
    hold_seconds: Option<u32>,
}

fn count(raw: i64, min: u32, max: u32) -> Result<u32, String> {
    u32::try_from(raw)
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("must be between {min} and {max}"))
}

/// A `quantity` of units asked for at once (a hold, a place on the
/// waiting list): at least 1 and no more than any product could have.
pub fn units(raw: i64) -> Result<u32, Vec<FieldError>> {
    count(raw, 1, MAX_STOCK).map_err(|message| {
        vec![FieldError {
            field: "quantity".into(),
            message,
        }]
    })
}

fn price(raw: i64) -> Result<i64, &'static str> {
    if raw >= 0 {
        Ok(raw)
    } else {
        Err("must be at least 0")
    }
}

impl Product {
    /// Checks a new product, reporting every invalid field at once.
    pub fn new(
        id: ProductId,
        request: &NewProduct,
        now: Timestamp,
    ) -> Result<Self, Vec<FieldError>> {
        let mut v = Violations::default();
        let fields = Fields {
            name: v.check("name", Name::parse(&request.name)),
            price: v.check("price", price(request.price)),
            currency: v.check(
                "currency",
                request
                    .currency
                    .as_deref()
                    .map_or(Ok(Currency::KRW), Currency::parse),
            ),
            stock: request
                .stock
                .map(|s| v.check("stock", count(s, 0, MAX_STOCK)))
                .map_or(Some(None), |s| s.map(Some)),
            per_user_limit: request
                .per_user_limit
                .map(|n| v.check("per_user_limit", count(n, 1, MAX_STOCK)))
                .map_or(Some(None), |n| n.map(Some)),
            hold_seconds: v.check(
                "hold_seconds",
                count(
                    request.hold_seconds.unwrap_or(DEFAULT_HOLD_SECONDS.into()),
                    1,
                    MAX_HOLD_SECONDS,
                ),
            ),
        };
        let product = match fields {
            Fields {
                name: Some(name),
                price: Some(price),
                currency: Some(currency),
                stock: Some(stock),
                per_user_limit: Some(per_user_limit),
                hold_seconds: Some(hold_seconds),
            } => Some(Self {
                id,
                name,
                kind: request.kind,
                price: Money::new(price, currency),
                stock,
                per_user_limit,
                hold_seconds,
                sale_starts_at: request.sale_starts_at,
                sale_ends_at: request.sale_ends_at,
                valid_from: request.valid_from,
                valid_until: request.valid_until,
                created_at: now,
                updated_at: now,
            }),
            _ => None,
        };
        if let Some(product) = &product {
            product.check_dates(&mut v);
        }
        crate::model::checked(product, v)
    }

    /// The product with `patch` applied, every invalid field reported at once.
    pub fn patched(&self, patch: &ProductPatch, now: Timestamp) -> Result<Self, Vec<FieldError>> {
        let mut v = Violations::default();
        let mut next = self.clone();
        if let Some(name) = &patch.name {
            next.name = v.check("name", Name::parse(name)).unwrap_or(next.name);
        }
        if let Some(raw) = patch.price
            && let Some(amount) = v.check("price", price(raw))
        {
            next.price = Money::new(amount, self.price.currency);
        }
        if let Some(stock) = patch.stock {
            next.stock = match stock {
                None => None,
                Some(raw) => v.check("stock", count(raw, 0, MAX_STOCK)).or(self.stock),
            };
        }
        if let Some(limit) = patch.per_user_limit {
            next.per_user_limit = match limit {
                None => None,
                Some(raw) => v
                    .check("per_user_limit", count(raw, 1, MAX_STOCK))
                    .or(self.per_user_limit),
            };
        }
        if let Some(raw) = patch.hold_seconds {
            next.hold_seconds = v
                .check("hold_seconds", count(raw, 1, MAX_HOLD_SECONDS))
                .unwrap_or(self.hold_seconds);
        }
        next.sale_starts_at = patch.sale_starts_at.unwrap_or(self.sale_starts_at);
        next.sale_ends_at = patch.sale_ends_at.unwrap_or(self.sale_ends_at);
        next.updated_at = now;
        next.check_dates(&mut v);
        crate::model::checked(Some(next), v)
    }

    fn check_dates(&self, v: &mut Violations) {
        if self.sale_ends_at <= self.sale_starts_at {
            v.add("sale_ends_at", "must be after sale_starts_at");
        }
        if let (Some(from), Some(until)) = (self.valid_from, self.valid_until)
            && until < from
        {
            v.add("valid_until", "must not be before valid_from");
        }
    }

    /// Whether units are sold at `now`: in `[sale_starts_at, sale_ends_at)`.
    #[must_use]
    pub fn is_on_sale(&self, now: Timestamp) -> bool {
        self.sale_starts_at <= now && now < self.sale_ends_at
    }

    /// Units left when `taken` are held, ordered or sold; `None` unlimited.
    #[must_use]
    pub fn remaining(&self, taken: u64) -> Option<u64> {
        self.stock
            .map(|stock| u64::from(stock).saturating_sub(taken))
    }
}

/// A product as the API shows it, with `remaining` and when it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProductView {
    pub id: ProductId,
    #[schema(value_type = String)]
    pub name: Name,
    pub kind: ProductKind,
    /// Minor units of `currency`.
    pub price: i64,
    pub currency: String,
    /// Units on sale; null is unlimited.
    pub stock: Option<u32>,
    /// Units neither held, ordered nor sold; null when unlimited.
    pub remaining: Option<u64>,
    /// When `remaining` was read.
    pub remaining_as_of: Timestamp,
    pub per_user_limit: Option<u32>,
    pub hold_seconds: u32,
    pub sale_starts_at: Timestamp,
    pub sale_ends_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Timestamp>,
}

impl ProductView {
    /// `product` with `taken` units held, ordered or sold as of `as_of`.
    #[must_use]
    pub fn new(product: Product, taken: u64, as_of: Timestamp) -> Self {
        Self {
            remaining: product.remaining(taken),
            remaining_as_of: as_of,
            id: product.id,
            name: product.name,
            kind: product.kind,
            price: product.price.amount,
            currency: product.price.currency.to_string(),
            stock: product.stock,
            per_user_limit: product.per_user_limit,
            hold_seconds: product.hold_seconds,
            sale_starts_at: product.sale_starts_at,
            sale_ends_at: product.sale_ends_at,
            valid_from: product.valid_from,
            valid_until: product.valid_until,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn quantities_under_one_or_past_any_stock_are_refused() {
        for bad in [0, -1, i64::MIN, i64::MAX, i64::from(MAX_STOCK) + 1] {
            assert!(units(bad).is_err(), "{bad}");
        }
        assert_eq!(units(1), Ok(1));
        assert_eq!(units(MAX_STOCK.into()), Ok(MAX_STOCK));
        let refused = units(0).expect_err("refused");
        assert_eq!(refused[0].field, "quantity");
        assert_eq!(
            refused[0].message,
            format!("must be between 1 and {MAX_STOCK}")
        );
    }

    fn request() -> NewProduct {
        NewProduct {
            name: "Winter gala".into(),
            kind: ProductKind::EventTicket,
            price: 15_000,
            currency: None,
            stock: Some(20),
            per_user_limit: Some(4),
            hold_seconds: None,
            sale_starts_at: datetime!(2026-12-01 00:00 UTC).into(),
            sale_ends_at: datetime!(2026-12-31 00:00 UTC).into(),
            valid_from: None,
            valid_until: None,
        }
    }

    fn now() -> Timestamp {
        datetime!(2026-12-02 00:00 UTC).into()
    }

    #[test]
    fn a_new_product_takes_the_defaults_and_is_on_sale_in_its_window() {
        let product = Product::new(ProductId::new(), &request(), now()).expect("valid");
        assert_eq!(product.price, Money::new(15_000, Currency::KRW));
        assert_eq!(product.hold_seconds, DEFAULT_HOLD_SECONDS);
        assert!(product.is_on_sale(now()));
        assert!(!product.is_on_sale(product.sale_ends_at));
        assert_eq!(product.remaining(25), Some(0));
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let bad = NewProduct {
            name: " ".into(),
            price: -1,
            currency: Some("won".into()),
            stock: Some(-5),
            per_user_limit: Some(0),
            hold_seconds: Some(i64::MAX),
            sale_ends_at: datetime!(2026-11-01 00:00 UTC).into(),
            ..request()
        };
        let errors = Product::new(ProductId::new(), &bad, now()).expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "price",
                "currency",
                "stock",
                "per_user_limit",
                "hold_seconds"
            ]
        );
        let late = NewProduct {
            sale_ends_at: datetime!(2026-11-01 00:00 UTC).into(),
            ..request()
        };
        let errors = Product::new(ProductId::new(), &late, now()).expect_err("invalid");
        assert_eq!(errors[0].field, "sale_ends_at");
    }

    #[test]
    fn a_patch_changes_only_what_it_names_and_null_stock_is_unlimited() {
        let product = Product::new(ProductId::new(), &request(), now()).expect("valid");
        let patch: ProductPatch =
            serde_json::from_str(r#"{"stock": null, "price": 9000}"#).expect("a patch");
        let next = product.patched(&patch, now()).expect("valid");
        assert_eq!((next.stock, next.price.amount), (None, 9000));
        assert_eq!(next.per_user_limit, Some(4));

        let patch: ProductPatch = serde_json::from_str(r#"{"hold_seconds": 0}"#).expect("a patch");
        assert!(product.patched(&patch, now()).is_err());
    }
}
