//! Discounts: a percentage off, or a fixed amount of money off.

use kernel::money::{Currency, Money};
use kernel::{FieldError, Violations};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::checked;

/// A percentage off: 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Percent(u8);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be between 1 and 100")]
pub struct InvalidPercent;

impl Percent {
    pub fn new(value: i64) -> Result<Self, InvalidPercent> {
        u8::try_from(value)
            .ok()
            .filter(|p| (1..=100).contains(p))
            .map(Self)
            .ok_or(InvalidPercent)
    }

    #[must_use]
    pub const fn get(self) -> u8 {
        self.0
    }
}

/// What a coupon takes off an order. Serialises as its [`DiscountSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "DiscountSpec")]
pub enum Discount {
    /// A percentage of the order.
    Percent(Percent),
    /// A fixed amount, at least one minor unit.
    Fixed(Money),
}

/// A discount as JSON, in and out: `{"kind": "PERCENT" | "FIXED", "value",
/// "currency"?}`. Also how a discount is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Discount)]
pub struct DiscountSpec {
    /// `PERCENT` or `FIXED`.
    #[schema(example = "PERCENT")]
    pub kind: String,
    /// The percentage (1 to 100), or the amount off in minor units of
    /// `currency` (at least 1).
    #[schema(minimum = 1, example = 10)]
    pub value: i64,
    /// ISO 4217, for `FIXED` only; `KRW` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "KRW")]
    pub currency: Option<String>,
}

impl Discount {
    /// Checks a discount's JSON. Errors name `discount.kind`,
    /// `discount.value` or `discount.currency`.
    pub fn parse(spec: &DiscountSpec) -> Result<Self, Vec<FieldError>> {
        let mut v = Violations::default();
        let discount = match spec.kind.as_str() {
            "PERCENT" => {
                if spec.currency.is_some() {
                    v.add("discount.currency", "only a FIXED discount has a currency");
                }
                v.check("discount.value", Percent::new(spec.value))
                    .map(Self::Percent)
            }
            "FIXED" => {
                if spec.value < 1 {
                    v.add(
                        "discount.value",
                        "must be at least 1 (minor units of the currency)",
                    );
                }
                let currency = spec
                    .currency
                    .as_deref()
                    .map_or(Ok(Currency::KRW), Currency::parse);
                v.check("discount.currency", currency).map(|currency| {
                    Self::Fixed(Money {
                        amount: spec.value,
                        currency,
                    })
                })
            }
            _ => {
                v.add("discount.kind", "must be PERCENT or FIXED");
                None
            }
        };
        checked(discount, v)
    }
}

impl From<Discount> for DiscountSpec {
    fn from(discount: Discount) -> Self {
        match discount {
            Discount::Percent(p) => Self {
                kind: "PERCENT".into(),
                value: i64::from(p.get()),
                currency: None,
            },
            Discount::Fixed(m) => Self {
                kind: "FIXED".into(),
                value: m.amount,
                currency: Some(m.currency.as_str().to_owned()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(kind: &str, value: i64, currency: Option<&str>) -> DiscountSpec {
        DiscountSpec {
            kind: kind.into(),
            value,
            currency: currency.map(str::to_owned),
        }
    }

    fn fields(result: Result<Discount, Vec<FieldError>>) -> Vec<String> {
        result
            .expect_err("invalid")
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_percentage_is_1_to_100_without_a_currency() {
        assert_eq!(
            Discount::parse(&spec("PERCENT", 100, None)),
            Ok(Discount::Percent(Percent(100)))
        );
        assert!(Discount::parse(&spec("PERCENT", 1, None)).is_ok());
        for value in [0, 101, -5, 256 + 10] {
            assert_eq!(
                fields(Discount::parse(&spec("PERCENT", value, None))),
                ["discount.value"],
                "{value}"
            );
        }
        assert_eq!(
            fields(Discount::parse(&spec("PERCENT", 10, Some("KRW")))),
            ["discount.currency"]
        );
    }

    #[test]
    fn a_fixed_amount_is_positive_in_an_iso_currency_defaulting_to_krw() {
        assert_eq!(
            Discount::parse(&spec("FIXED", 5000, None)),
            Ok(Discount::Fixed(Money {
                amount: 5000,
                currency: Currency::KRW
            }))
        );
        let usd = Discount::parse(&spec("FIXED", 1, Some("USD"))).expect("valid");
        assert_eq!(
            usd,
            Discount::Fixed(Money {
                amount: 1,
                currency: Currency::parse("USD").expect("valid")
            })
        );
        assert_eq!(
            fields(Discount::parse(&spec("FIXED", 0, Some("usd")))),
            ["discount.value", "discount.currency"]
        );
        for bad in ["", "KR", "KRWX", "K1W", "krw", "원화"] {
            assert!(Currency::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_unknown_kind_is_refused() {
        assert_eq!(
            fields(Discount::parse(&spec("percent", 10, None))),
            ["discount.kind"]
        );
    }

    #[test]
    fn discounts_serialise_as_the_contract_says() {
        let percent = Discount::parse(&spec("PERCENT", 15, None)).expect("valid");
        let fixed = Discount::parse(&spec("FIXED", 3000, None)).expect("valid");

        assert_eq!(
            serde_json::to_value(percent).expect("serialises"),
            json!({"kind": "PERCENT", "value": 15})
        );
        assert_eq!(
            serde_json::to_value(fixed).expect("serialises"),
            json!({"kind": "FIXED", "value": 3000, "currency": "KRW"})
        );
        assert_eq!(
            Discount::parse(&DiscountSpec::from(fixed)),
            Ok(fixed),
            "the stored form reads back"
        );
    }
}
