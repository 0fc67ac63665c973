//! Identity's types and rules. No I/O here.

use std::fmt;

use kernel::text::{self, ControlCharacter};
use kernel::{Problem, Roles, Secret, Timestamp, UserId, Violations};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A normalised email address: trimmed, lower-case, shaped like `local@domain.tld`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(transparent)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEmail {
    #[error("is not an email address")]
    Shape,
    #[error("is longer than 254 characters")]
    TooLong,
    #[error(transparent)]
    Control(#[from] ControlCharacter),
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let email = raw.trim().to_lowercase();
        if email.len() > 254 {
            return Err(InvalidEmail::TooLong);
        }
        text::single_line(&email)?;
        let (local, domain) = email.split_once('@').ok_or(InvalidEmail::Shape)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local
                .chars()
                .any(|c| c.is_whitespace() || c == '@' || c.is_control());
        if local_ok && domain_ok {
            Ok(Self(email))
        } else {
            Err(InvalidEmail::Shape)
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An address read back from the store, where only parsed ones are written.
    pub(crate) const fn from_stored(email: String) -> Self {
        Self(email)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password as typed: 8 to 1024 characters (the upper bound keeps hashing cheap).
#[derive(Debug, Clone)]
pub struct Password(Secret<String>);

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPassword {
    #[error("must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("must be at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
}

impl Password {
    pub fn parse(raw: &str) -> Result<Self, InvalidPassword> {
        match raw.chars().count() {
            n if n < MIN_PASSWORD_CHARS => Err(InvalidPassword::TooShort),
            n if n > MAX_PASSWORD_CHARS => Err(InvalidPassword::TooLong),
            _ => Ok(Self(Secret::new(raw.to_owned()))),
        }
    }

    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// Letters and digits that cannot be mistaken for one another (no 0/O, 1/I/L).
pub const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
pub const REFERRAL_CODE_LEN: usize = 8;

/// Builds a referral code from random bytes (one character per byte).
#[must_use]
pub fn referral_code_from(random: [u8; REFERRAL_CODE_LEN]) -> String {
    random
        .iter()
        .map(|b| char::from(CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()]))
        .collect()
}

/// Normalises a referral code as a user might type it; `None` when blank.
pub fn normalise_referral_code(raw: &str) -> Result<Option<String>, ControlCharacter> {
    let code = raw.trim().to_ascii_uppercase();
    text::single_line(&code)?;
    Ok((!code.is_empty()).then_some(code))
}

/// The `email` filter of the user list as typed; `None` when blank.
pub fn email_filter(raw: Option<String>) -> Result<Option<String>, ControlCharacter> {
    match raw {
        Some(raw) if !raw.trim().is_empty() => {
            text::single_line(&raw)?;
            Ok(Some(raw))
        }
        _ => Ok(None),
    }
}

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub roles: Roles,
    /// Share it: sign-ups that give it count as this user's invitations.
    pub referral_code: String,
    pub created_at: Timestamp,
}

/// What the store needs to create a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub email: Email,
    pub password_hash: String,
    pub roles: Roles,
    pub referral_code: String,
    pub referred_by: Option<UserId>,
    pub created_at: Timestamp,
}

/// A user with what login needs.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
    pub token_version: i64,
}

/// Sign-up body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SignupRequest {
    pub email: String,
    pub password: String,
    /// Another user's referral code.
    pub referral_code: Option<String>,
}

/// Login body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// Body of refresh and logout, when the token is not sent as the cookie.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RefreshTokenBody {
    pub refresh_token: Option<String>,
}

/// Body of a role change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RolesRequest {
    pub roles: Vec<String>,
}

/// The answer to a login or a refresh.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Tokens {
    /// EdDSA JWT; send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Opaque; also set as an HttpOnly cookie. Each refresh replaces it.
    pub refresh_token: String,
    pub user: User,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current; a new one replaces it in the same login.
    Rotated {
        user_id: UserId,
        session_id: uuid::Uuid,
    },
    /// The token had already been rotated: the login is now revoked.
    Reused { user_id: UserId },
    /// Unknown, expired, or of a revoked login.
    Invalid,
}

/// Most test users one call creates.
pub const MAX_TEST_USERS: usize = 10_000;
const DEFAULT_TEST_USER_PREFIX: &str = "test";
const MAX_TEST_USER_PREFIX_CHARS: usize = 32;

/// Body of a bulk test-user request (load tests only).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TestUsersRequest {
    /// How many USER accounts to create: 1 to 10000.
    pub count: i64,
    /// Starts every email: 1 to 32 lower-case letters, digits or `-` (default `test`).
    pub prefix: Option<String>,
}

/// A checked test-user request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUserBatch {
    pub count: usize,
    prefix: String,
}

impl TestUserBatch {
    pub fn parse(request: &TestUsersRequest) -> Result<Self, Problem> {
        let mut v = Violations::default();
        let count = usize::try_from(request.count)
            .ok()
            .filter(|n| (1..=MAX_TEST_USERS).contains(n));
        if count.is_none() {
            v.add("count", format!("must be 1 to {MAX_TEST_USERS}"));
        }
        let prefix = request
            .prefix
            .as_deref()
            .unwrap_or(DEFAULT_TEST_USER_PREFIX);
        let prefix_ok = (1..=MAX_TEST_USER_PREFIX_CHARS).contains(&prefix.len())
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !prefix_ok {
            v.add(
                "prefix",
                format!(
                    "must be 1 to {MAX_TEST_USER_PREFIX_CHARS} lower-case letters, digits or '-'"
                ),
            );
        }
        v.finish()?;
        let Some(count) = count else {
            return Err(Problem::internal(&"validated count missing"));
        };
        Ok(Self {
            count,
            prefix: prefix.to_owned(),
        })
    }

    /// The email of the `n`th user of the call tagged `run`. The `.invalid`
    /// top-level domain can never receive mail.
    pub fn email(&self, run: &str, n: usize) -> Result<Email, InvalidEmail> {
        Email::parse(&format!("{}-{run}-{n}@test-users.invalid", self.prefix))
    }
}

/// One test user, signed in.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TestUser {
    pub user_id: UserId,
    pub email: Email,
    /// An ordinary access token (EdDSA JWT) of a login of this user.
    pub access_token: String,
}

/// The answer to a bulk test-user request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TestUsers {
    pub users: Vec<TestUser>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        let e = Email::parse("  Alice.Smith@Example.COM ").expect("valid");
        assert_eq!(e.as_str(), "alice.smith@example.com");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a b@example.com",
            "alice@exa mple.com",
            "alice@.example.com",
            "alice@example..com",
            "a@b@c.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Email::parse(&format!("{}@example.com", "a".repeat(250))),
            Err(InvalidEmail::TooLong)
        );
    }

    #[test]
    fn passwords_need_eight_characters_counted_as_characters() {
        assert_eq!(
            Password::parse("1234567").err(),
            Some(InvalidPassword::TooShort)
        );
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse("비밀번호비밀번호").is_ok());
        assert_eq!(
            Password::parse(&"x".repeat(1025)).err(),
            Some(InvalidPassword::TooLong)
        );
    }

    #[test]
    fn referral_codes_use_only_unambiguous_characters() {
        let code = referral_code_from([0, 30, 31, 255, 8, 14, 100, 7]);
        assert_eq!(code.len(), REFERRAL_CODE_LEN);
        assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)));
        assert!(!code.contains(['0', 'O', '1', 'I', 'L']));
        assert_eq!(
            normalise_referral_code(" abcd2345 "),
            Ok(Some("ABCD2345".to_owned()))
        );
        assert_eq!(normalise_referral_code("  "), Ok(None));
    }

    #[test]
    fn referral_codes_emails_and_email_filters_hold_no_control_character() {
        assert_eq!(
            normalise_referral_code("AB\u{0}CD"),
            Err(ControlCharacter::SingleLine)
        );
        assert_eq!(
            normalise_referral_code("AB\nCD"),
            Err(ControlCharacter::SingleLine)
        );
        for bad in [
            "a\u{0}b@example.com",
            "ab@exam\u{0}ple.com",
            "a\u{7f}@example.com",
        ] {
            assert_eq!(
                Email::parse(bad),
                Err(InvalidEmail::Control(ControlCharacter::SingleLine)),
                "{bad:?}"
            );
        }
        assert_eq!(
            email_filter(Some("a\u{0}b".into())),
            Err(ControlCharacter::SingleLine)
        );
        assert_eq!(email_filter(Some("  ".into())), Ok(None));
        assert_eq!(email_filter(None), Ok(None));
        assert_eq!(email_filter(Some("ali".into())), Ok(Some("ali".to_owned())));
    }

    #[test]
    fn a_user_serialises_as_the_contract_says() {
        let user = User {
            id: UserId::new(),
            email: Email::parse("a@b.co").expect("valid"),
            roles: Roles::of(&[kernel::Role::User]),
            referral_code: "ABCDEFGH".into(),
            created_at: time::macros::datetime!(2026-11-22 10:00 UTC).into(),
        };
        let v = serde_json::to_value(&user).expect("serialises");
        assert_eq!(v["email"], "a@b.co");
        assert_eq!(v["roles"], serde_json::json!(["USER"]));
        assert_eq!(v["created_at"], "2026-11-22T10:00:00Z");
        assert!(v.get("password_hash").is_none());
    }
    fn batch(count: i64, prefix: Option<&str>) -> Result<TestUserBatch, Problem> {
        TestUserBatch::parse(&TestUsersRequest {
            count,
            prefix: prefix.map(str::to_owned),
        })
    }

    #[test]
    fn a_test_user_batch_holds_1_to_10000_users_with_a_plain_prefix() {
        assert_eq!(batch(1, None).map(|b| b.count).ok(), Some(1));
        assert_eq!(
            batch(10_000, Some("lt-2")).map(|b| b.count).ok(),
            Some(10_000)
        );
        for count in [0, -1, 10_001] {
            let problem = batch(count, None).expect_err("out of range");
            assert_eq!(problem.status, 422);
            assert_eq!(problem.errors[0].field, "count");
        }
        for prefix in ["", "Upper", "a b", "a@b", &"x".repeat(33)] {
            let problem = batch(5, Some(prefix)).expect_err("bad prefix");
            assert_eq!(problem.errors[0].field, "prefix", "{prefix:?}");
        }
    }

    #[test]
    fn test_user_emails_carry_the_prefix_the_run_and_the_number() {
        let b = batch(3, Some("lt")).expect("valid");
        let email = b.email("abcd2345", 7).expect("an email");
        assert_eq!(email.as_str(), "lt-abcd2345-7@test-users.invalid");
        let default = batch(3, None).expect("valid");
        assert!(
            default
                .email("x", 0)
                .expect("an email")
                .as_str()
                .starts_with("test-x-0@")
        );
    }
}
