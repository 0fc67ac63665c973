//! Grants: what an approved request gives, and the wallet computed from the
//! append-only ledger of what was given.

use std::num::NonZeroU32;

use contracts::commerce::CouponCampaignId;
use serde::Serialize;
use utoipa::ToSchema;

use super::reward::{CatalogueKey, RewardKind};

/// One ledger entry's worth: what lands in the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalletCredit {
    Points(NonZeroU32),
    Item {
        item_id: CatalogueKey,
        quantity: NonZeroU32,
    },
    Badge(CatalogueKey),
}

/// How an approved request is granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// A ledger entry, written in the approval's transaction.
    Wallet(WalletCredit),
    /// A command to commerce to issue a coupon of this campaign, written to
    /// the outbox in the approval's transaction.
    Coupon { campaign_id: CouponCampaignId },
}

impl Grant {
    /// What granting a reward of this kind means.
    #[must_use]
    pub fn of(kind: &RewardKind) -> Self {
        match kind {
            RewardKind::Point { points } => Self::Wallet(WalletCredit::Points(*points)),
            RewardKind::Item { item_id, quantity } => Self::Wallet(WalletCredit::Item {
                item_id: item_id.clone(),
                quantity: *quantity,
            }),
            RewardKind::Badge { badge_id } => Self::Wallet(WalletCredit::Badge(badge_id.clone())),
            RewardKind::Coupon { coupon_campaign_id } => Self::Coupon {
                campaign_id: *coupon_campaign_id,
            },
        }
    }
}

/// Units of one item in a wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ItemHolding {
    pub item_id: String,
    pub quantity: u64,
}

/// A user's wallet: the sums of their ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Wallet {
    pub points: u64,
    /// By item id.
    pub items: Vec<ItemHolding>,
    /// Badge ids, each once, sorted.
    pub badges: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> CatalogueKey {
        CatalogueKey::parse(raw).expect("valid key")
    }

    #[test]
    fn each_reward_kind_has_its_grant() {
        let n = NonZeroU32::new(5).expect("non-zero");
        let campaign = CouponCampaignId::new();
        assert_eq!(
            Grant::of(&RewardKind::Point { points: n }),
            Grant::Wallet(WalletCredit::Points(n))
        );
        assert_eq!(
            Grant::of(&RewardKind::Item {
                item_id: key("sword"),
                quantity: n
            }),
            Grant::Wallet(WalletCredit::Item {
                item_id: key("sword"),
                quantity: n
            })
        );
        assert_eq!(
            Grant::of(&RewardKind::Badge {
                badge_id: key("early-bird")
            }),
            Grant::Wallet(WalletCredit::Badge(key("early-bird")))
        );
        assert_eq!(
            Grant::of(&RewardKind::Coupon {
                coupon_campaign_id: campaign
            }),
            Grant::Coupon {
                campaign_id: campaign
            }
        );
    }
}
