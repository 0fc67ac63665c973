//! Money: an integer amount in minor units (won, cents) of an ISO 4217
//! currency. KRW, the default, has no minor unit. Arithmetic is checked and
//! refuses to mix currencies, so a total can neither overflow nor add won
//! to dollars.

use std::fmt;

/// An ISO 4217 currency code: three upper-case ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be an ISO 4217 code: three upper-case letters such as KRW")]
pub struct InvalidCurrency;

impl Currency {
    /// The default currency.
    pub const KRW: Self = Self(*b"KRW");

    pub fn parse(raw: &str) -> Result<Self, InvalidCurrency> {
        match *raw.as_bytes() {
            [a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Self([a, b, c])),
            _ => Err(InvalidCurrency),
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        // `parse` lets only ASCII letters in, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount of money: minor units of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

/// Why a sum of money could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("the amount is out of range")]
    Overflow,
}

impl Money {
    #[must_use]
    pub const fn new(amount: i64, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// Nothing, in `currency`.
    #[must_use]
    pub const fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    pub fn checked_add(self, other: Self) -> Result<Self, MoneyError> {
        self.same_currency(other)?;
        self.amount
            .checked_add(other.amount)
            .map(|amount| Self::new(amount, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    pub fn checked_sub(self, other: Self) -> Result<Self, MoneyError> {
        self.same_currency(other)?;
        self.amount
            .checked_sub(other.amount)
            .map(|amount| Self::new(amount, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `count` of this amount, as for a quantity of units at one price.
    pub fn times(self, count: u32) -> Result<Self, MoneyError> {
        self.amount
            .checked_mul(i64::from(count))
            .map(|amount| Self::new(amount, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `percent` of this amount, rounded down to the minor unit (so a
    /// discount never takes more than its percentage).
    pub fn percent(self, percent: u8) -> Result<Self, MoneyError> {
        let part = i128::from(self.amount) * i128::from(percent) / 100;
        i64::try_from(part)
            .map(|amount| Self::new(amount, self.currency))
            .map_err(|_| MoneyError::Overflow)
    }

    fn same_currency(self, other: Self) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krw(amount: i64) -> Money {
        Money::new(amount, Currency::KRW)
    }

    #[test]
    fn a_currency_is_three_upper_case_letters() {
        assert_eq!(
            Currency::parse("USD").map(|c| c.to_string()),
            Ok("USD".into())
        );
        for bad in ["", "usd", "US", "USDX", "U$D", "한국"] {
            assert!(Currency::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sums_stay_in_one_currency_and_in_range() {
        assert_eq!(krw(1_000).checked_add(krw(500)), Ok(krw(1_500)));
        assert_eq!(krw(1_000).checked_sub(krw(1_500)), Ok(krw(-500)));
        let usd = Money::new(1, Currency::parse("USD").expect("valid"));
        assert_eq!(
            krw(1).checked_add(usd),
            Err(MoneyError::CurrencyMismatch(Currency::KRW, usd.currency))
        );
        assert_eq!(krw(i64::MAX).checked_add(krw(1)), Err(MoneyError::Overflow));
        assert_eq!(krw(i64::MIN).checked_sub(krw(1)), Err(MoneyError::Overflow));
    }

    #[test]
    fn a_price_times_a_quantity_is_checked() {
        assert_eq!(krw(15_000).times(3), Ok(krw(45_000)));
        assert_eq!(krw(i64::MAX / 2 + 1).times(2), Err(MoneyError::Overflow));
    }

    #[test]
    fn a_percentage_rounds_down_to_the_minor_unit() {
        assert_eq!(krw(999).percent(10), Ok(krw(99)));
        assert_eq!(krw(1_000).percent(100), Ok(krw(1_000)));
        assert_eq!(krw(i64::MAX).percent(100), Ok(krw(i64::MAX)));
    }
}
