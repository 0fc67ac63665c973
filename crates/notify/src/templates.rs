//! The email templates, compiled into the binary by askama (ADR 0018):
//! each email is a data struct plus a `.txt` and an `.html` template under
//! `crates/notify/templates/`, both extending `base.*`. The HTML ones are
//! escaped (askama escapes by the `.html` extension); the text ones are not.
//!
//! Adding an email (order confirmation, refund, waiting-list offer): a data
//! struct implementing [`Email`], its two templates, and a handler in
//! [`crate::email`] for the message that triggers it.

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
