//! Coupons: unguessable codes, the status with its legal moves (in one
//! place), and expiry.

use std::fmt;

use kernel::{Lifecycle, Timestamp, UserId, text_form};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::campaign::Campaign;
use super::ids::{CouponCampaignId, CouponId};

/// The characters of a code: digits and upper-case letters without the
/// look-alikes 0/O and 1/I/L.
pub const CODE_ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Characters in a code: a time prefix, then the random part.
pub const CODE_CHARS: usize = 20;
/// Leading characters that count tenths of a second, wrapping every 31³ of
/// them (about 50 minutes). Codes issued together sort together, so the
/// unique index on codes takes them on its last few pages instead of one
/// random page each (ADR 0013).
const TIME_CHARS: usize = 3;
/// The rest: 17 × log2(31) ≈ 84 random bits.
const RANDOM_CHARS: usize = CODE_CHARS - TIME_CHARS;
const TIME_TICKS_PER_SECOND: i128 = 10;
const GROUP_CHARS: usize = 5;
/// Random bytes at or above this are dropped: 248 = 8 × 31, so every
/// character is equally likely.
const UNBIASED_BELOW: u8 = 248;

/// A coupon code, shown grouped as `XXXXX-XXXXX-XXXXX-XXXXX`. Unguessable:
/// after a three-character time prefix, about 84 random bits from a
/// cryptographic generator seeded by the operating system; unique by a
/// database constraint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, example = "K7QW2-MZ9RT-4XHNB-PC8DV")]
pub struct CouponCode(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a coupon code is {CODE_CHARS} letters and digits (no 0, O, 1, I or L), such as K7QW2-MZ9RT-4XHNB-PC8DV"
)]
pub struct InvalidCode;

impl CouponCode {
    /// A fresh code issued at `now`: its time prefix, then random
    /// characters from the thread's ChaCha generator (`rand::rng`, seeded
    /// and reseeded from the operating system). A system call per code cost
    /// the rush more than the code's insert.
    #[must_use]
    pub fn generate(now: Timestamp) -> Self {
        let mut chars = time_prefix(now).to_vec();
        chars.reserve(RANDOM_CHARS);
        let mut random = [0u8; 32];
        while chars.len() < CODE_CHARS {
            rand::fill(&mut random);
            let wanted = CODE_CHARS - chars.len();
            chars.extend(random.iter().filter_map(|b| code_char(*b)).take(wanted));
        }
        Self::grouped(&chars)
    }

    /// Reads a code as a person may type it: any case, with or without the
    /// hyphens, surrounding spaces ignored.
    pub fn parse(raw: &str) -> Result<Self, InvalidCode> {
        let chars: Vec<u8> = raw
            .trim()
            .bytes()
            .filter(|b| *b != b'-')
            .map(|b| b.to_ascii_uppercase())
            .collect();
        if chars.len() == CODE_CHARS && chars.iter().all(|c| CODE_ALPHABET.contains(c)) {
            Ok(Self::grouped(&chars))
        } else {
            Err(InvalidCode)
        }
    }

    fn grouped(chars: &[u8]) -> Self {
        let groups: Vec<String> = chars
            .chunks(GROUP_CHARS)
            .map(|group| group.iter().copied().map(char::from).collect())
            .collect();
        Self(groups.join("-"))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `now` in tenths of a second, modulo 31³, as three code characters, most
/// significant first.
fn time_prefix(now: Timestamp) -> [u8; TIME_CHARS] {
    let ticks = now.as_datetime().unix_timestamp_nanos() / (1_000_000_000 / TIME_TICKS_PER_SECOND);
    let mut prefix = [0u8; TIME_CHARS];
    let mut rest = ticks.rem_euclid(31_i128.pow(TIME_CHARS as u32));
    for slot in prefix.iter_mut().rev() {
        *slot = CODE_ALPHABET[usize::try_from(rest % 31).unwrap_or(0)];
        rest /= 31;
    }
    prefix
}

/// The code character for a random byte, or `None` for a byte to drop.
fn code_char(byte: u8) -> Option<u8> {
    (byte < UNBIASED_BELOW).then(|| CODE_ALPHABET[usize::from(byte % 31)])
}

impl fmt::Display for CouponCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a coupon stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CouponStatus {
    /// Can be used.
    Issued,
    /// Applied to an order.
    Used,
    /// Past its `expires_at` unused.
    Expired,
}

impl CouponStatus {
    pub const ALL: [Self; 3] = [Self::Issued, Self::Used, Self::Expired];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "ISSUED",
            Self::Used => "USED",
            Self::Expired => "EXPIRED",
        }
    }

    /// The status as of `now`: an ISSUED coupon at or past `expires_at`
    /// reads as EXPIRED, whether or not that was written down yet.
    #[must_use]
    pub fn as_of(self, expires_at: Timestamp, now: Timestamp) -> Self {
        if self == Self::Issued && now >= expires_at {
            Self::Expired
        } else {
            self
        }
    }
}

impl Lifecycle for CouponStatus {
    fn name(self) -> &'static str {
        self.as_str()
    }

    /// The moves: ISSUED→USED (an order applies it), USED→ISSUED (that
    /// order failed or was cancelled: the coupon comes back), ISSUED→EXPIRED.
    /// EXPIRED is final. Staying put is not a move.
    fn can_move_to(self, next: Self) -> bool {
        matches!(
            (self, next),
            (Self::Issued, Self::Used | Self::Expired) | (Self::Used, Self::Issued)
        )
    }
}

text_form!(CouponStatus, "ISSUED, USED, EXPIRED");

/// A coupon as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Coupon {
    pub id: CouponId,
    pub code: CouponCode,
    pub campaign_id: CouponCampaignId,
    pub user_id: UserId,
    pub status: CouponStatus,
    pub issued_at: Timestamp,
    /// The campaign's `valid_until`.
    pub expires_at: Timestamp,
}

impl Coupon {
    /// A new coupon `id` of `campaign` for `user`, issued `now`; it expires
    /// when the campaign's coupons stop being valid.
    #[must_use]
    pub fn new(
        id: CouponId,
        campaign: &Campaign,
        user: UserId,
        code: CouponCode,
        now: Timestamp,
    ) -> Self {
        Self {
            id,
            code,
            campaign_id: campaign.id,
            user_id: user,
            status: CouponStatus::Issued,
            issued_at: now,
            expires_at: campaign.schedule.valid_until(),
        }
    }

    /// The coupon as of `now` (see [`CouponStatus::as_of`]).
    #[must_use]
    pub fn as_of(mut self, now: Timestamp) -> Self {
        self.status = self.status.as_of(self.expires_at, now);
        self
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use time::Duration;
    use time::macros::datetime;

    use CouponStatus::{Expired, Issued, Used};

    #[test]
    fn the_alphabet_has_no_look_alikes_and_no_repeats() {
        for look_alike in *b"0O1IL" {
            assert!(
                !CODE_ALPHABET.contains(&look_alike),
                "{}",
                char::from(look_alike)
            );
        }
        let distinct: HashSet<u8> = CODE_ALPHABET.iter().copied().collect();
        assert_eq!(distinct.len(), CODE_ALPHABET.len());
        assert!(CODE_ALPHABET.iter().all(u8::is_ascii_alphanumeric));
    }

    #[test]
    fn every_character_is_equally_likely_from_a_uniform_byte() {
        let mut counts: HashMap<u8, usize> = HashMap::new();
        for byte in 0..=u8::MAX {
            if let Some(c) = code_char(byte) {
                *counts.entry(c).or_default() += 1;
            }
        }
        assert_eq!(counts.len(), CODE_ALPHABET.len());
        assert!(counts.values().all(|n| *n == 8), "{counts:?}");
    }

    #[test]
    fn a_code_carries_at_least_80_random_bits() {
        let bits = RANDOM_CHARS as f64 * (CODE_ALPHABET.len() as f64).log2();
        assert!(bits >= 84.0, "{bits}");
    }

    #[test]
    fn codes_issued_later_sort_after_earlier_ones_until_the_prefix_wraps() {
        // 1_787_460_000 s is 600,000 whole cycles of 31³ tenths: prefix "222".
        let cycle_start = Timestamp::from(
            time::OffsetDateTime::from_unix_timestamp(1_787_460_000).expect("in range"),
        );
        let prefix_at = |millis: i64| {
            let code = CouponCode::generate(cycle_start + Duration::milliseconds(millis));
            code.as_str()[..TIME_CHARS].to_owned()
        };

        let prefixes: Vec<String> = [0, 100, 200, 3_100, 60_000, 2_979_000]
            .iter()
            .map(|millis| prefix_at(*millis))
            .collect();

        assert_eq!(prefixes[..4], ["222", "223", "224", "232"]);
        assert!(
            prefixes.windows(2).all(|pair| pair[0] < pair[1]),
            "{prefixes:?}"
        );
        assert_eq!(prefix_at(99), "222", "one prefix per tenth of a second");
        assert_eq!(prefix_at(2_979_100), "222", "wraps after 31³ tenths");
    }

    #[test]
    fn generated_codes_are_grouped_in_fives_and_do_not_repeat() {
        let codes: HashSet<String> = (0..10_000)
            .map(|_| CouponCode::generate(Timestamp::from(datetime!(2026-11-30 10:00:00 UTC))).0)
            .collect();

        assert_eq!(codes.len(), 10_000);
        for code in codes.iter().take(100) {
            let groups: Vec<&str> = code.split('-').collect();
            assert_eq!(groups.len(), 4, "{code}");
            assert!(groups.iter().all(|g| g.len() == 5), "{code}");
            assert!(
                code.bytes()
                    .all(|b| b == b'-' || CODE_ALPHABET.contains(&b)),
                "{code}"
            );
        }
    }

    #[test]
    fn a_typed_code_is_read_in_any_case_with_or_without_hyphens() {
        let code = CouponCode::generate(Timestamp::from(datetime!(2026-11-30 10:00:00 UTC)));
        let bare = code.as_str().replace('-', "").to_ascii_lowercase();

        assert_eq!(CouponCode::parse(&format!("  {bare} ")), Ok(code.clone()));
        assert_eq!(CouponCode::parse(code.as_str()), Ok(code));
        for bad in [
            "",
            "ABCDE",
            "22222-22222-22222-2222O",
            "22222-22222-22222-22222-2",
        ] {
            assert_eq!(CouponCode::parse(bad), Err(InvalidCode), "{bad:?}");
        }
    }

    #[test]
    fn only_the_legal_status_moves_are_allowed() {
        let legal = [(Issued, Used), (Used, Issued), (Issued, Expired)];
        for from in CouponStatus::ALL {
            for to in CouponStatus::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    legal.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
        assert_eq!(Issued.move_to(Used), Ok(Used));
        assert_eq!(
            Expired.move_to(Issued).map_err(|e| e.to_string()),
            Err("cannot move from EXPIRED to ISSUED".to_owned())
        );
    }

    #[test]
    fn an_issued_coupon_reads_as_expired_from_its_expiry_on() {
        let expires: Timestamp = datetime!(2026-12-31 00:00 UTC).into();
        let before = expires - Duration::microseconds(1);

        assert_eq!(Issued.as_of(expires, before), Issued);
        assert_eq!(Issued.as_of(expires, expires), Expired);
        assert_eq!(Used.as_of(expires, expires + Duration::days(1)), Used);
    }

    #[test]
    fn statuses_are_screaming_snake_case_both_ways() {
        for status in CouponStatus::ALL {
            assert_eq!(
                serde_json::to_value(status).expect("serialises"),
                status.as_str()
            );
            assert_eq!(status.as_str().parse::<CouponStatus>(), Ok(status));
        }
        assert!("issued".parse::<CouponStatus>().is_err());
    }
}
