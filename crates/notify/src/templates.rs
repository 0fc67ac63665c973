//! The email templates, compiled into the binary by askama (ADR 0018):
//! each email is a data struct plus a `.txt` and an `.html` template under
//! `crates/notify/templates/`, both extending `base.*`. The HTML ones are
//! escaped (askama escapes by the `.html` extension); the text ones are not.
//!
//! Adding an email (the waiting-list offer, say): a data struct
//! implementing [`Email`], its two templates, and a
//! [`Mailable`](crate::email::Mailable) impl for the message that
//! triggers it (its subscriber is then an
//! [`EmailSubscriber`](crate::email::EmailSubscriber)).

use askama::Template;
use serde_json::Value;

/// One kind of email: a subject and the two bodies of a
/// `multipart/alternative` message.
pub trait Email {
    /// The template's name, in logs and dead letters.
    fn name(&self) -> &'static str;
    fn subject(&self) -> String;
    fn text(&self) -> Result<String, askama::Error>;
    fn html(&self) -> Result<String, askama::Error>;
}

/// "You were granted a reward".
#[derive(Debug, Clone)]
pub struct RewardGrantedMail {
    pub subject: String,
    /// What the reward is, in words ("100 points").
    pub reward: String,
    /// Where the user finds it.
    pub where_to_find: String,
    pub request_id: String,
    pub granted_at: String,
}

#[derive(Template)]
#[template(path = "reward_granted.txt")]
struct RewardGrantedText<'a> {
    mail: &'a RewardGrantedMail,
}

#[derive(Template)]
#[template(path = "reward_granted.html")]
struct RewardGrantedHtml<'a> {
    mail: &'a RewardGrantedMail,
}

impl RewardGrantedMail {
    /// The mail for a granted reward, from the message's `reward` member
    /// (`{"type", ...the catalogue fields}`); an unknown type is described
    /// by its name, never refused.
    #[must_use]
    pub fn new(reward: &Value, request_id: String, granted_at: String) -> Self {
        let (what, where_to_find) = describe(reward);
        Self {
            subject: format!("You were granted {what}"),
            reward: what,
            where_to_find: where_to_find.to_owned(),
            request_id,
            granted_at,
        }
    }
}

impl Email for RewardGrantedMail {
    fn name(&self) -> &'static str {
        "reward_granted"
    }
    fn subject(&self) -> String {
        self.subject.clone()
    }
    fn text(&self) -> Result<String, askama::Error> {
        RewardGrantedText { mail: self }.render()
    }
    fn html(&self) -> Result<String, askama::Error> {
        RewardGrantedHtml { mail: self }.render()
    }
}

/// "Tickets came back for you": a waiting-list offer.
#[derive(Debug, Clone)]
pub struct WaitingListOfferedMail {
    pub product: String,
    pub quantity: u32,
    /// The reservation held for the user: ordering it accepts the offer.
    pub reservation_id: String,
    /// Until when it is held.
    pub offer_expires_at: String,
}

#[derive(Template)]
#[template(path = "waiting_list_offered.txt")]
struct WaitingListOfferedText<'a> {
    mail: &'a WaitingListOfferedMail,
}

#[derive(Template)]
#[template(path = "waiting_list_offered.html")]
struct WaitingListOfferedHtml<'a> {
    mail: &'a WaitingListOfferedMail,
}

impl Email for WaitingListOfferedMail {
    fn name(&self) -> &'static str {
        "waiting_list_offered"
    }
    fn subject(&self) -> String {
        format!(
            "Your turn: {} x {} held for you",
            self.quantity, self.product
        )
    }
    fn text(&self) -> Result<String, askama::Error> {
        WaitingListOfferedText { mail: self }.render()
    }
    fn html(&self) -> Result<String, askama::Error> {
        WaitingListOfferedHtml { mail: self }.render()
    }
}

/// One line of an order, as the buyer reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailLine {
    pub quantity: u32,
    pub name: String,
    /// Formatted with its currency ("45,000 KRW").
    pub amount: String,
}

/// One ticket code, under the product it admits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailTicket {
    pub product: String,
    pub code: String,
}

/// "Your order is paid", with its ticket codes.
#[derive(Debug, Clone)]
pub struct OrderPaidMail {
    pub subject: String,
    pub lines: Vec<MailLine>,
    pub total: String,
    pub tickets: Vec<MailTicket>,
    pub order_id: String,
    pub paid_at: String,
}

#[derive(Template)]
#[template(path = "order_paid.txt")]
struct OrderPaidText<'a> {
    mail: &'a OrderPaidMail,
}

#[derive(Template)]
#[template(path = "order_paid.html")]
struct OrderPaidHtml<'a> {
    mail: &'a OrderPaidMail,
}

impl OrderPaidMail {
    /// The confirmation of a paid order (`commerce.order_paid`).
    #[must_use]
    pub fn new(paid: &contracts::commerce::OrderPaid) -> Self {
        let name = |id| {
            paid.items
                .iter()
                .find(|line| line.product_id == id)
                .map_or_else(|| "Ticket".to_owned(), |line| line.product_name.clone())
        };
        let total = money(paid.total, &paid.currency);
        let count = paid.tickets.len();
        Self {
            subject: format!(
                "Your order is paid: {count} {} for {total}",
                if count == 1 { "ticket" } else { "tickets" }
            ),
            lines: paid
                .items
                .iter()
                .map(|line| MailLine {
                    quantity: line.quantity,
                    name: line.product_name.clone(),
                    amount: money(line.amount, &paid.currency),
                })
                .collect(),
            total,
            tickets: paid
                .tickets
                .iter()
                .map(|t| MailTicket {
                    product: name(t.product_id),
                    code: t.code.clone(),
                })
                .collect(),
            order_id: paid.order_id.to_string(),
            paid_at: paid.paid_at.to_string(),
        }
    }
}

impl Email for OrderPaidMail {
    fn name(&self) -> &'static str {
        "order_paid"
    }
    fn subject(&self) -> String {
        self.subject.clone()
    }
    fn text(&self) -> Result<String, askama::Error> {
        OrderPaidText { mail: self }.render()
    }
    fn html(&self) -> Result<String, askama::Error> {
        OrderPaidHtml { mail: self }.render()
    }
}

/// "Your refund": a cancelled order's money is back.
#[derive(Debug, Clone)]
pub struct OrderRefundedMail {
    pub subject: String,
    pub amount: String,
    pub order_id: String,
    pub refunded_at: String,
}

#[derive(Template)]
#[template(path = "order_refunded.txt")]
struct OrderRefundedText<'a> {
    mail: &'a OrderRefundedMail,
}

#[derive(Template)]
#[template(path = "order_refunded.html")]
struct OrderRefundedHtml<'a> {
    mail: &'a OrderRefundedMail,
}

impl OrderRefundedMail {
    /// The confirmation of a refund (`commerce.order_refunded`).
    #[must_use]
    pub fn new(refunded: &contracts::commerce::OrderRefunded) -> Self {
        let amount = money(refunded.amount, &refunded.currency);
        Self {
            subject: format!("Your refund of {amount}"),
            amount,
            order_id: refunded.order_id.to_string(),
            refunded_at: refunded.refunded_at.to_string(),
        }
    }
}

impl Email for OrderRefundedMail {
    fn name(&self) -> &'static str {
        "order_refunded"
    }
    fn subject(&self) -> String {
        self.subject.clone()
    }
    fn text(&self) -> Result<String, askama::Error> {
        OrderRefundedText { mail: self }.render()
    }
    fn html(&self) -> Result<String, askama::Error> {
        OrderRefundedHtml { mail: self }.render()
    }
}

/// Currencies without a minor unit (ISO 4217 exponent 0) among those a
/// sale is likely in; every other amount is shown with two decimals.
const WHOLE_UNIT_CURRENCIES: &[&str] = &["KRW", "JPY", "VND", "CLP", "ISK"];

/// `amount` minor units of `currency` as a person reads it:
/// `45,000 KRW`, `12.50 USD`.
#[must_use]
pub fn money(amount: i64, currency: &str) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let magnitude = amount.unsigned_abs();
    let grouped = |n: u64| {
        let digits = n.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    if WHOLE_UNIT_CURRENCIES.contains(&currency) {
        format!("{sign}{} {currency}", grouped(magnitude))
    } else {
        format!(
            "{sign}{}.{:02} {currency}",
            grouped(magnitude / 100),
            magnitude % 100
        )
    }
}

/// A reward in words, and where it shows.
fn describe(reward: &Value) -> (String, &'static str) {
    let text = |key: &str| reward.get(key).and_then(Value::as_str).map(str::to_owned);
    let number = |key: &str| reward.get(key).and_then(Value::as_u64);
    let wallet = "It is in your wallet.";
    match reward.get("type").and_then(Value::as_str) {
        Some("POINT") => match number("points") {
            Some(1) => ("1 point".to_owned(), wallet),
            Some(n) => (format!("{n} points"), wallet),
            None => ("points".to_owned(), wallet),
        },
        Some("ITEM") => {
            let item = text("item_id").unwrap_or_else(|| "an item".to_owned());
            match number("quantity") {
                Some(n) if n > 1 => (format!("{n} x {item}"), wallet),
                _ => (item, wallet),
            }
        }
        Some("BADGE") => (
            format!(
                "the badge {}",
                text("badge_id").unwrap_or_else(|| "?".to_owned())
            ),
            wallet,
        ),
        Some("COUPON") => (
            "a coupon".to_owned(),
            "It will be among your coupons shortly.",
        ),
        Some(other) => (format!("a reward ({other})"), "See your account."),
        None => ("a reward".to_owned(), "See your account."),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rewards_are_described_by_type() {
        let d = |v: Value| describe(&v).0;
        assert_eq!(d(json!({"type": "POINT", "points": 100})), "100 points");
        assert_eq!(d(json!({"type": "POINT", "points": 1})), "1 point");
        assert_eq!(
            d(json!({"type": "ITEM", "item_id": "mug", "quantity": 2})),
            "2 x mug"
        );
        assert_eq!(
            d(json!({"type": "BADGE", "badge_id": "gold"})),
            "the badge gold"
        );
        assert_eq!(
            d(json!({"type": "COUPON", "coupon_campaign_id": "x"})),
            "a coupon"
        );
        assert_eq!(d(json!({"type": "TRIP"})), "a reward (TRIP)");
        assert_eq!(d(json!(null)), "a reward");
    }

    #[test]
    fn an_offer_says_what_is_held_and_until_when_escaped_in_html() {
        let mail = WaitingListOfferedMail {
            product: "Gala <night>".into(),
            quantity: 2,
            reservation_id: "r1".into(),
            offer_expires_at: "2026-12-01T00:15:00Z".into(),
        };
        assert_eq!(mail.subject(), "Your turn: 2 x Gala <night> held for you");
        let text = mail.text().expect("renders");
        assert!(text.contains("2 x Gala <night>"), "{text}");
        assert!(text.contains("until 2026-12-01T00:15:00Z"), "{text}");
        assert!(text.contains("reservation r1"), "{text}");
        let html = mail.html().expect("renders");
        assert!(html.contains("Gala &#60;night&#62;"), "{html}");
        assert!(!html.contains("<night>"), "{html}");
    }

    #[test]
    fn money_reads_as_a_person_writes_it() {
        assert_eq!(money(45_000, "KRW"), "45,000 KRW");
        assert_eq!(money(999, "KRW"), "999 KRW");
        assert_eq!(money(1_234_567, "KRW"), "1,234,567 KRW");
        assert_eq!(money(1_250, "USD"), "12.50 USD");
        assert_eq!(money(5, "EUR"), "0.05 EUR");
        assert_eq!(money(-100_000, "KRW"), "-100,000 KRW");
    }

    #[test]
    fn an_order_confirmation_lists_its_lines_and_every_ticket_code() {
        use contracts::commerce::{IssuedTicket, OrderId, OrderLine, OrderPaid, ProductId};
        let (gala, tour) = (ProductId::new(), ProductId::new());
        let paid = OrderPaid {
            order_id: OrderId::new(),
            user_id: kernel::UserId::new(),
            items: vec![
                OrderLine {
                    product_id: gala,
                    product_name: "Gala <night>".into(),
                    quantity: 2,
                    unit_price: 15_000,
                    amount: 30_000,
                },
                OrderLine {
                    product_id: tour,
                    product_name: "Tour".into(),
                    quantity: 1,
                    unit_price: 5_000,
                    amount: 5_000,
                },
            ],
            total: 34_000,
            currency: "KRW".into(),
            tickets: vec![
                IssuedTicket {
                    product_id: gala,
                    code: "aaaa".into(),
                },
                IssuedTicket {
                    product_id: gala,
                    code: "bbbb".into(),
                },
                IssuedTicket {
                    product_id: tour,
                    code: "cccc".into(),
                },
            ],
            paid_at: time::macros::datetime!(2026-12-03 10:00 UTC).into(),
        };
        let mail = OrderPaidMail::new(&paid);
        assert_eq!(
            mail.subject(),
            "Your order is paid: 3 tickets for 34,000 KRW"
        );
        let text = mail.text().expect("renders");
        assert!(text.contains("  2 x Gala <night>: 30,000 KRW\n"), "{text}");
        assert!(text.contains("  1 x Tour: 5,000 KRW\n"), "{text}");
        assert!(text.contains("Total: 34,000 KRW"), "{text}");
        for line in [
            "  Gala <night>: aaaa",
            "  Gala <night>: bbbb",
            "  Tour: cccc",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        let html = mail.html().expect("renders");
        assert!(
            html.contains("Gala &#60;night&#62;: <code>bbbb</code>"),
            "{html}"
        );
        assert!(!html.contains("<night>"), "{html}");
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let mail = RewardGrantedMail::new(
            &json!({"type": "ITEM", "item_id": "<b>mug</b> & co", "quantity": 1}),
            "r1".into(),
            "2026-12-01T00:00:00Z".into(),
        );
        let html = mail.html().expect("renders");
        // askama escapes to numeric character references.
        assert!(
            html.contains("&#60;b&#62;mug&#60;/b&#62; &#38; co"),
            "{html}"
        );
        assert!(!html.contains("<b>mug</b>"), "{html}");
        let text = mail.text().expect("renders");
        assert!(text.contains("Your reward: <b>mug</b> & co."), "{text}");
        assert!(text.contains("account on Stampede"), "{text}");
    }
}
