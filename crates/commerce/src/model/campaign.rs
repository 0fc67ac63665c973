//! Coupon campaigns: what their coupons take off, how many there are, how
//! many one user may get, when they are handed out and until when they can
//! be used.

use kernel::text::Name;
use kernel::{FieldError, Timestamp, Violations};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::checked;
use super::discount::{Discount, DiscountSpec};
use super::ids::CouponCampaignId;

/// When a campaign hands its coupons out, `[issue_starts_at, issue_ends_at)`,
/// and until when they can be used: `valid_until`, not before the issue
/// window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
pub struct Schedule {
    issue_starts_at: Timestamp,
    issue_ends_at: Timestamp,
    valid_until: Timestamp,
}

/// A schedule out of order; says which field is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSchedule {
    #[error("must be after issue_starts_at")]
    IssueEndsBeforeItStarts,
    #[error("must not be before issue_ends_at")]
    ValidUntilBeforeIssueEnds,
}

impl InvalidSchedule {
    /// The field the message is about.
    #[must_use]
    pub const fn field(self) -> &'static str {
        match self {
            Self::IssueEndsBeforeItStarts => "issue_ends_at",
            Self::ValidUntilBeforeIssueEnds => "valid_until",
        }
    }
}

impl Schedule {
    /// Requires `issue_starts_at < issue_ends_at <= valid_until`.
    pub fn new(
        issue_starts_at: Timestamp,
        issue_ends_at: Timestamp,
        valid_until: Timestamp,
    ) -> Result<Self, InvalidSchedule> {
        if issue_ends_at <= issue_starts_at {
            Err(InvalidSchedule::IssueEndsBeforeItStarts)
        } else if valid_until < issue_ends_at {
            Err(InvalidSchedule::ValidUntilBeforeIssueEnds)
        } else {
            Ok(Self {
                issue_starts_at,
                issue_ends_at,
                valid_until,
            })
        }
    }

    #[must_use]
    pub const fn issue_starts_at(self) -> Timestamp {
        self.issue_starts_at
    }

    #[must_use]
    pub const fn issue_ends_at(self) -> Timestamp {
        self.issue_ends_at
    }

    #[must_use]
    pub const fn valid_until(self) -> Timestamp {
        self.valid_until
    }

    /// Whether coupons are handed out at `now`: in `[issue_starts_at, issue_ends_at)`.
    #[must_use]
    pub fn is_issuing(self, now: Timestamp) -> bool {
        self.issue_starts_at <= now && now < self.issue_ends_at
    }
}

/// The body of `POST /coupon-campaigns`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewCampaign {
    pub name: String,
    pub discount: DiscountSpec,
    /// Coupons on offer to the public; at least 1.
    #[schema(minimum = 1)]
    pub total_quantity: i64,
    /// Coupons one user may get; at least 1 (default 1).
    #[schema(minimum = 1)]
    pub per_user_limit: Option<i64>,
    pub issue_starts_at: Timestamp,
    /// After `issue_starts_at`.
    pub issue_ends_at: Timestamp,
    /// Issued coupons can be used until then; not before `issue_ends_at`.
    pub valid_until: Timestamp,
}

/// A coupon campaign as stored. Nothing in it changes as coupons are issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Campaign {
    pub id: CouponCampaignId,
    pub name: Name,
    #[schema(value_type = DiscountSpec)]
    pub discount: Discount,
    /// Coupons on offer to the public; reward grants come on top.
    pub total_quantity: u32,
    /// Coupons one user may get from the public stock.
    pub per_user_limit: u32,
    /// `issue_starts_at`, `issue_ends_at` and `valid_until`.
    #[serde(flatten)]
    pub schedule: Schedule,
    pub created_at: Timestamp,
}

/// A count of at least 1 that fits a `u32`.
fn positive(raw: i64) -> Result<u32, &'static str> {
    u32::try_from(raw)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or("must be between 1 and 4294967295")
}

impl Campaign {
    /// Checks a new campaign, reporting every invalid field at once.
    pub fn new(
        id: CouponCampaignId,
        request: &NewCampaign,
        created_at: Timestamp,
    ) -> Result<Self, Vec<FieldError>> {
        let mut v = Violations::default();
        let name = v.check("name", Name::parse(&request.name));
        let discount = match Discount::parse(&request.discount) {
            Ok(discount) => Some(discount),
            Err(errors) => {
                for e in errors {
                    v.add(&e.field, e.message);
                }
                None
            }
        };
        let total_quantity = v.check("total_quantity", positive(request.total_quantity));
        let per_user_limit = v.check(
            "per_user_limit",
            positive(request.per_user_limit.unwrap_or(1)),
        );
        let schedule = Schedule::new(
            request.issue_starts_at,
            request.issue_ends_at,
            request.valid_until,
        )
        .map_err(|e| v.add(e.field(), e.to_string()))
        .ok();
        let campaign = match (name, discount, total_quantity, per_user_limit, schedule) {
            (
                Some(name),
                Some(discount),
                Some(total_quantity),
                Some(per_user_limit),
                Some(schedule),
            ) => Some(Self {
                id,
                name,
                discount,
                total_quantity,
                per_user_limit,
                schedule,
                created_at,
            }),
            _ => None,
        };
        checked(campaign, v)
    }
}

/// A campaign as the API shows it: with the coupons still on offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CouponCampaign {
    #[serde(flatten)]
    pub campaign: Campaign,
    /// Coupons still on offer to the public, live from the stock gate.
    /// Reward grants do not use them up.
    pub remaining: u32,
}

/// How many coupons of a campaign have been handed out, for the readers'
/// analytics: from the coupons table, the truth the stock gate follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CampaignIssues {
    pub campaign_id: CouponCampaignId,
    pub name: String,
    pub total_quantity: u32,
    /// Coupons issued to the public (they use the stock up).
    pub issued: u64,
    /// Coupons granted by rewards (outside the stock).
    pub granted: u64,
    /// `total_quantity − issued`.
    pub remaining: u64,
}

impl CampaignIssues {
    #[must_use]
    pub fn new(
        campaign_id: CouponCampaignId,
        name: String,
        total_quantity: u32,
        issued: u64,
        granted: u64,
    ) -> Self {
        Self {
            campaign_id,
            name,
            total_quantity,
            issued,
            granted,
            remaining: u64::from(total_quantity).saturating_sub(issued),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::Duration;
    use time::macros::datetime;

    fn t0() -> Timestamp {
        datetime!(2026-12-01 00:00 UTC).into()
    }

    fn request() -> NewCampaign {
        NewCampaign {
            name: "  Winter drop  ".into(),
            discount: DiscountSpec {
                kind: "PERCENT".into(),
                value: 10,
                currency: None,
            },
            total_quantity: 100,
            per_user_limit: None,
            issue_starts_at: t0(),
            issue_ends_at: t0() + Duration::hours(1),
            valid_until: t0() + Duration::days(30),
        }
    }

    fn fields(request: &NewCampaign) -> Vec<String> {
        Campaign::new(CouponCampaignId::new(), request, t0())
            .expect_err("invalid")
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_valid_campaign_is_trimmed_and_limits_each_user_to_one_by_default() {
        let campaign = Campaign::new(CouponCampaignId::new(), &request(), t0()).expect("valid");

        assert_eq!(campaign.name.as_str(), "Winter drop");
        assert_eq!(campaign.total_quantity, 100);
        assert_eq!(campaign.per_user_limit, 1);
        assert_eq!(campaign.schedule.valid_until(), t0() + Duration::days(30));
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let mut bad = request();
        bad.name = " ".into();
        bad.discount.kind = "BOGO".into();
        bad.total_quantity = 0;
        bad.per_user_limit = Some(-1);
        bad.issue_ends_at = bad.issue_starts_at;

        assert_eq!(
            fields(&bad),
            [
                "name",
                "discount.kind",
                "total_quantity",
                "per_user_limit",
                "issue_ends_at"
            ]
        );
    }

    #[test]
    fn a_name_holds_no_control_character() {
        for bad in ["AB\u{0}CD", "Winter\ndrop", "a\tb", "\u{1b}[2J"] {
            let mut named = request();
            named.name = bad.into();
            assert_eq!(fields(&named), ["name"], "{bad:?}");
        }
        let mut named = request();
        named.name = "겨울 세일 🎁".into();
        assert!(Campaign::new(CouponCampaignId::new(), &named, t0()).is_ok());
    }

    #[test]
    fn the_issue_window_must_end_after_it_starts_and_not_after_validity_ends() {
        let mut backwards = request();
        backwards.issue_ends_at = t0() - Duration::seconds(1);
        assert_eq!(fields(&backwards), ["issue_ends_at"]);

        let mut short_lived = request();
        short_lived.valid_until = short_lived.issue_ends_at - Duration::microseconds(1);
        assert_eq!(fields(&short_lived), ["valid_until"]);

        let mut ends_as_valid = request();
        ends_as_valid.valid_until = ends_as_valid.issue_ends_at;
        assert!(Campaign::new(CouponCampaignId::new(), &ends_as_valid, t0()).is_ok());
    }

    #[test]
    fn coupons_are_issued_from_the_window_start_until_just_before_its_end() {
        let schedule = Schedule::new(t0(), t0() + Duration::hours(1), t0() + Duration::days(1))
            .expect("valid");

        assert!(!schedule.is_issuing(t0() - Duration::microseconds(1)));
        assert!(schedule.is_issuing(t0()));
        assert!(schedule.is_issuing(t0() + Duration::hours(1) - Duration::microseconds(1)));
        assert!(!schedule.is_issuing(t0() + Duration::hours(1)));
    }

    #[test]
    fn a_campaign_serialises_as_the_contract_says() {
        let campaign = Campaign::new(CouponCampaignId::new(), &request(), t0()).expect("valid");
        let shown = CouponCampaign {
            campaign: campaign.clone(),
            remaining: 42,
        };

        let v = serde_json::to_value(&shown).expect("serialises");

        assert_eq!(
            v,
            json!({
                "id": campaign.id.to_string(),
                "name": "Winter drop",
                "discount": {"kind": "PERCENT", "value": 10},
                "total_quantity": 100,
                "remaining": 42,
                "per_user_limit": 1,
                "issue_starts_at": "2026-12-01T00:00:00Z",
                "issue_ends_at": "2026-12-01T01:00:00Z",
                "valid_until": "2026-12-31T00:00:00Z",
                "created_at": "2026-12-01T00:00:00Z",
            })
        );
    }
}
