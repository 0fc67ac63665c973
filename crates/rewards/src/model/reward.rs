//! The reward catalogue: what a reward gives, by type, parsed from JSON with
//! every problem reported at once.

use std::fmt;
use std::num::NonZeroU32;

use kernel::FieldError;
use kernel::text::{self, ControlCharacter, Name};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use contracts::commerce::CouponCampaignId;

use super::ids::RewardId;

pub const MAX_CATALOGUE_KEY_CHARS: usize = 100;

const TYPES: &str = "POINT, ITEM, COUPON, BADGE";

/// What a reward gives. Serialises tagged by `type`, with the type's fields
/// beside it: `{"type": "ITEM", "item_id": "…", "quantity": 2}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RewardKind {
    /// Points added to the wallet.
    Point {
        #[schema(value_type = u32, minimum = 1)]
        points: NonZeroU32,
    },
    /// Units of an item added to the wallet.
    Item {
        item_id: CatalogueKey,
        #[schema(value_type = u32, minimum = 1)]
        quantity: NonZeroU32,
    },
    /// A coupon of this campaign, issued by commerce.
    Coupon {
        coupon_campaign_id: CouponCampaignId,
    },
    /// A badge added to the wallet.
    Badge { badge_id: CatalogueKey },
}

impl RewardKind {
    /// Parses an object holding only `type` and that type's fields.
    pub fn parse(object: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let kind = parse_kind(object, &[], &mut errors);
        match kind {
            Some(kind) if errors.is_empty() => Ok(kind),
            _ => Err(errors),
        }
    }

    /// The reward as the catalogue shows it, for messages that carry it.
    #[must_use]
    pub fn as_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The `type` as the API names it.
    #[must_use]
    pub const fn type_name(&self) -> &'static str {
        match self {
            Self::Point { .. } => "POINT",
            Self::Item { .. } => "ITEM",
            Self::Coupon { .. } => "COUPON",
            Self::Badge { .. } => "BADGE",
        }
    }
}

/// An item or badge id from the catalogue outside this system: trimmed,
/// 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, min_length = 1, max_length = 100)]
pub struct CatalogueKey(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCatalogueKey {
    #[error("must not be blank")]
    Blank,
    #[error("must be at most {MAX_CATALOGUE_KEY_CHARS} characters")]
    TooLong,
    #[error(transparent)]
    Control(#[from] ControlCharacter),
}

impl CatalogueKey {
    pub fn parse(raw: &str) -> Result<Self, InvalidCatalogueKey> {
        let key = raw.trim();
        match key.chars().count() {
            0 => Err(InvalidCatalogueKey::Blank),
            n if n > MAX_CATALOGUE_KEY_CHARS => Err(InvalidCatalogueKey::TooLong),
            _ => {
                text::single_line(key)?;
                Ok(Self(key.to_owned()))
            }
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CatalogueKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A catalogue reward as the API shows it, flat:
/// `{"id", "name", "type", …the type's fields}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Reward {
    pub id: RewardId,
    pub name: Name,
    #[serde(flatten)]
    pub kind: RewardKind,
}

/// The body of `POST /rewards`: `name`, `type` and the type's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReward {
    pub name: Name,
    pub kind: RewardKind,
}

impl NewReward {
    /// Parses the body, reporting every problem at once. Members the type
    /// does not have are refused, so a misspelt field is not silently lost.
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = match body.get("name") {
            None => error(&mut errors, "name", "is required"),
            Some(Value::String(raw)) => Name::parse(raw)
                .map_err(|e| error::<()>(&mut errors, "name", e.to_string()))
                .ok(),
            Some(_) => error(&mut errors, "name", "must be a string"),
        };
        let kind = parse_kind(body, &["name"], &mut errors);
        match (name, kind) {
            (Some(name), Some(kind)) if errors.is_empty() => Ok(Self { name, kind }),
            _ => Err(errors),
        }
    }
}

/// Records a field error; returns `None` so a caller can end with it.
fn error<T>(errors: &mut Vec<FieldError>, field: &str, message: impl Into<String>) -> Option<T> {
    errors.push(FieldError {
        field: field.to_owned(),
        message: message.into(),
    });
    None
}

fn parse_kind(
    object: &Map<String, Value>,
    also_allowed: &[&str],
    errors: &mut Vec<FieldError>,
) -> Option<RewardKind> {
    let kind = match object.get("type") {
        None => return error(errors, "type", "is required"),
        Some(Value::String(s)) if matches!(s.as_str(), "POINT" | "ITEM" | "COUPON" | "BADGE") => {
            s.as_str()
        }
        Some(_) => return error(errors, "type", format!("must be one of {TYPES}")),
    };
    let fields: &[&str] = match kind {
        "POINT" => &["points"],
        "ITEM" => &["item_id", "quantity"],
        "COUPON" => &["coupon_campaign_id"],
        _ => &["badge_id"],
    };
    for key in object.keys() {
        let key = key.as_str();
        if key != "type" && !fields.contains(&key) && !also_allowed.contains(&key) {
            error::<()>(errors, key, format!("is not a member of a {kind} reward"));
        }
    }
    match kind {
        "POINT" => {
            let points = positive(object, "points", errors);
            Some(RewardKind::Point { points: points? })
        }
        "ITEM" => {
            let item_id = catalogue_key(object, "item_id", errors);
            let quantity = positive(object, "quantity", errors);
            Some(RewardKind::Item {
                item_id: item_id?,
                quantity: quantity?,
            })
        }
        "COUPON" => {
            let id = uuid(object, "coupon_campaign_id", errors);
            Some(RewardKind::Coupon {
                coupon_campaign_id: CouponCampaignId(id?),
            })
        }
        _ => {
            let badge_id = catalogue_key(object, "badge_id", errors);
            Some(RewardKind::Badge {
                badge_id: badge_id?,
            })
        }
    }
}

fn positive(
    object: &Map<String, Value>,
    key: &str,
    errors: &mut Vec<FieldError>,
) -> Option<NonZeroU32> {
    match object.get(key) {
        None => error(errors, key, "is required"),
        Some(value) => match value.as_u64() {
            Some(n) if n > u64::from(u32::MAX) => {
                error(errors, key, format!("must be at most {}", u32::MAX))
            }
            Some(n) => match u32::try_from(n).ok().and_then(NonZeroU32::new) {
                Some(n) => Some(n),
                None => error(errors, key, "must be a positive integer"),
            },
            None => error(errors, key, "must be a positive integer"),
        },
    }
}

fn catalogue_key(
    object: &Map<String, Value>,
    key: &str,
    errors: &mut Vec<FieldError>,
) -> Option<CatalogueKey> {
    match object.get(key) {
        None => error(errors, key, "is required"),
        Some(Value::String(raw)) => match CatalogueKey::parse(raw) {
            Ok(k) => Some(k),
            Err(e) => error(errors, key, e.to_string()),
        },
        Some(_) => error(errors, key, "must be a string"),
    }
}

fn uuid(object: &Map<String, Value>, key: &str, errors: &mut Vec<FieldError>) -> Option<Uuid> {
    match object.get(key) {
        None => error(errors, key, "is required"),
        Some(Value::String(raw)) => match Uuid::parse_str(raw) {
            Ok(id) => Some(id),
            Err(_) => error(errors, key, "must be a UUID"),
        },
        Some(_) => error(errors, key, "must be a UUID"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("a JSON object")
    }

    fn new_reward(value: Value) -> NewReward {
        NewReward::parse(&object(value)).expect("a valid reward")
    }

    fn refusals(value: Value) -> Vec<(String, String)> {
        NewReward::parse(&object(value))
            .expect_err("an invalid reward")
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect()
    }

    fn fields(value: Value) -> Vec<String> {
        refusals(value).into_iter().map(|(f, _)| f).collect()
    }

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("not zero")
    }

    const CAMPAIGN: &str = "0192f0a4-7c3e-7a55-9b1e-3f2d6c8e9a10";

    #[test]
    fn each_reward_type_parses_into_its_typed_value() {
        assert_eq!(
            new_reward(json!({"name": " 100 points ", "type": "POINT", "points": 100})),
            NewReward {
                name: Name::parse("100 points").expect("valid"),
                kind: RewardKind::Point { points: nz(100) },
            }
        );
        assert_eq!(
            new_reward(
                json!({"name": "Hats", "type": "ITEM", "item_id": "hat-red", "quantity": 2})
            )
            .kind,
            RewardKind::Item {
                item_id: CatalogueKey::parse("hat-red").expect("valid"),
                quantity: nz(2),
            }
        );
        assert_eq!(
            new_reward(
                json!({"name": "10% off", "type": "COUPON", "coupon_campaign_id": CAMPAIGN})
            )
            .kind,
            RewardKind::Coupon {
                coupon_campaign_id: CAMPAIGN.parse().expect("a uuid"),
            }
        );
        assert_eq!(
            new_reward(json!({"name": "Early bird", "type": "BADGE", "badge_id": "early"})).kind,
            RewardKind::Badge {
                badge_id: CatalogueKey::parse("early").expect("valid"),
            }
        );
    }

    #[test]
    fn a_reward_serialises_flat_as_the_contract_says() {
        let id = RewardId::new();
        for (kind, extra) in [
            (
                RewardKind::Point { points: nz(100) },
                json!({"points": 100}),
            ),
            (
                RewardKind::Item {
                    item_id: CatalogueKey::parse("hat").expect("valid"),
                    quantity: nz(2),
                },
                json!({"item_id": "hat", "quantity": 2}),
            ),
            (
                RewardKind::Coupon {
                    coupon_campaign_id: CAMPAIGN.parse().expect("a uuid"),
                },
                json!({"coupon_campaign_id": CAMPAIGN}),
            ),
            (
                RewardKind::Badge {
                    badge_id: CatalogueKey::parse("early").expect("valid"),
                },
                json!({"badge_id": "early"}),
            ),
        ] {
            let type_name = kind.type_name();
            let reward = Reward {
                id,
                name: Name::parse("Prize").expect("valid"),
                kind,
            };

            let v = serde_json::to_value(&reward).expect("serialises");

            let mut expected = json!({"id": id.to_string(), "name": "Prize", "type": type_name});
            if let (Some(all), Value::Object(more)) = (expected.as_object_mut(), extra) {
                all.extend(more);
            }
            assert_eq!(v, expected);
        }
    }

    #[test]
    fn a_serialised_reward_kind_parses_back_to_itself() {
        for kind in [
            RewardKind::Point { points: nz(1) },
            RewardKind::Item {
                item_id: CatalogueKey::parse("x").expect("valid"),
                quantity: nz(u32::MAX),
            },
            RewardKind::Coupon {
                coupon_campaign_id: CAMPAIGN.parse().expect("a uuid"),
            },
        ] {
            let v = object(serde_json::to_value(&kind).expect("serialises"));

            assert_eq!(RewardKind::parse(&v), Ok(kind));
        }
    }

    #[test]
    fn an_unknown_or_missing_type_is_a_field_error_on_type() {
        assert_eq!(
            refusals(json!({"name": "x", "type": "GEM", "gems": 1})),
            [("type".to_owned(), format!("must be one of {TYPES}"))]
        );
        assert_eq!(
            refusals(json!({"name": "x"})),
            [("type".to_owned(), "is required".to_owned())]
        );
        assert_eq!(fields(json!({"name": "x", "type": "point"})), ["type"]);
        assert_eq!(fields(json!({"name": "x", "type": 1})), ["type"]);
    }

    #[test]
    fn points_and_quantities_must_be_positive_integers() {
        for bad in [json!(0), json!(-5), json!(1.5), json!("10"), json!(null)] {
            assert_eq!(
                refusals(json!({"name": "x", "type": "POINT", "points": bad})),
                [("points".to_owned(), "must be a positive integer".to_owned())],
                "points {bad}"
            );
            assert_eq!(
                fields(json!({"name": "x", "type": "ITEM", "item_id": "i", "quantity": bad})),
                ["quantity"],
                "quantity {bad}"
            );
        }
        assert_eq!(
            refusals(json!({"name": "x", "type": "POINT", "points": u64::from(u32::MAX) + 1})),
            [("points".to_owned(), format!("must be at most {}", u32::MAX))]
        );
    }

    #[test]
    fn each_type_requires_its_own_fields() {
        assert_eq!(
            refusals(json!({"name": "x", "type": "POINT"})),
            [("points".to_owned(), "is required".to_owned())]
        );
        assert_eq!(
            fields(json!({"name": "x", "type": "ITEM"})),
            ["item_id", "quantity"]
        );
        assert_eq!(
            fields(json!({"name": "x", "type": "COUPON"})),
            ["coupon_campaign_id"]
        );
        assert_eq!(fields(json!({"name": "x", "type": "BADGE"})), ["badge_id"]);
    }

    #[test]
    fn item_and_badge_ids_are_non_empty_and_at_most_100_characters() {
        assert!(
            NewReward::parse(&object(
                json!({"name": "x", "type": "BADGE", "badge_id": "b".repeat(100)})
            ))
            .is_ok()
        );
        for (bad, message) in [
            (json!(""), "must not be blank"),
            (json!("   "), "must not be blank"),
            (json!("b".repeat(101)), "must be at most 100 characters"),
            (json!("AB\u{0}CD"), "must not contain control characters"),
            (json!("early\nbird"), "must not contain control characters"),
            (json!(7), "must be a string"),
        ] {
            assert_eq!(
                refusals(json!({"name": "x", "type": "BADGE", "badge_id": bad})),
                [("badge_id".to_owned(), message.to_owned())]
            );
            assert_eq!(
                fields(json!({"name": "x", "type": "ITEM", "item_id": bad, "quantity": 1})),
                ["item_id"]
            );
        }
    }

    #[test]
    fn a_coupon_campaign_id_must_be_a_uuid() {
        for bad in [json!("campaign-1"), json!(""), json!(42)] {
            assert_eq!(
                refusals(json!({"name": "x", "type": "COUPON", "coupon_campaign_id": bad})),
                [("coupon_campaign_id".to_owned(), "must be a UUID".to_owned())]
            );
        }
    }

    #[test]
    fn members_of_another_type_are_refused() {
        assert_eq!(
            refusals(json!({"name": "x", "type": "POINT", "points": 5, "quantity": 1})),
            [(
                "quantity".to_owned(),
                "is not a member of a POINT reward".to_owned()
            )]
        );
        assert!(
            NewReward::parse(&object(
                json!({"type": "BADGE", "badge_id": "b", "name": "x"})
            ))
            .is_ok()
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errors = fields(
            json!({"name": "  ", "type": "ITEM", "item_id": "", "quantity": 0, "colour": "red"}),
        );

        assert_eq!(errors, ["name", "colour", "item_id", "quantity"]);
    }

    #[test]
    fn the_name_is_required_and_checked() {
        assert_eq!(
            refusals(json!({"type": "POINT", "points": 1})),
            [("name".to_owned(), "is required".to_owned())]
        );
        assert_eq!(
            refusals(json!({"name": 5, "type": "POINT", "points": 1})),
            [("name".to_owned(), "must be a string".to_owned())]
        );
        assert_eq!(
            refusals(json!({"name": "a\u{0}b", "type": "POINT", "points": 1})),
            [(
                "name".to_owned(),
                "must not contain control characters".to_owned()
            )]
        );
        assert_eq!(
            refusals(json!({"name": "n".repeat(201), "type": "POINT", "points": 1})),
            [(
                "name".to_owned(),
                "must be at most 200 characters".to_owned()
            )]
        );
    }

    #[test]
    fn a_lone_reward_kind_refuses_a_name() {
        let errors = RewardKind::parse(&object(json!({"type": "POINT", "points": 1, "name": "x"})))
            .expect_err("name is not part of a kind");

        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "name");
    }
}
