//! The overview's charts: each one's data from the analytics services over
//! the one period the page's selector names, drawn by Chart.js in the
//! browser (`assets/admin-charts.js` reads each canvas's `data-chart`), and
//! the same data as CSV, one download per chart.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use kernel::{Bucket, Period, PeriodQuery, Problem, Timestamp};
use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime};

use crate::Admin;
use crate::page;
use crate::session::Signed;

/// Events shown in "rewards per event", the most recent first.
const EVENTS_SHOWN: usize = 20;
/// Products shown in "sales per product", highest revenue first.
const PRODUCTS_SHOWN: usize = 20;

/// How a chart is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Doughnut,
    Bar,
    /// Bars with their series stacked.
    Stacked,
    Line,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
}

/// One chart: a value per label in each series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chart {
    pub id: &'static str,
    pub title: String,
    pub kind: Kind,
    pub labels: Vec<String>,
    pub series: Vec<Series>,
}

impl Chart {
    fn new(id: &'static str, title: impl Into<String>, kind: Kind) -> Self {
        Self {
            id,
            title: title.into(),
            kind,
            labels: Vec::new(),
            series: Vec::new(),
        }
    }

    /// One series of `(label, value)` pairs.
    fn single(mut self, name: &str, points: impl IntoIterator<Item = (String, f64)>) -> Self {
        let (labels, values) = points.into_iter().unzip();
        self.labels = labels;
        self.series = vec![Series {
            name: name.to_owned(),
            values,
        }];
        self
    }

    fn series(mut self, labels: Vec<String>, series: Vec<(&str, Vec<f64>)>) -> Self {
        self.labels = labels;
        self.series = series
            .into_iter()
            .map(|(name, values)| Series {
                name: name.to_owned(),
                values,
            })
            .collect();
        self
    }

    /// What `data-chart` holds (askama escapes it as an attribute).
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A header row (`label` and each series' name), then a row per label.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        let header = std::iter::once("label").chain(self.series.iter().map(|s| s.name.as_str()));
        push_row(&mut out, header.map(str::to_owned));
        for (i, label) in self.labels.iter().enumerate() {
            let values = self
                .series
                .iter()
                .map(|s| s.values.get(i).map(f64::to_string).unwrap_or_default());
            push_row(&mut out, std::iter::once(label.clone()).chain(values));
        }
        out
    }
}

/// RFC 4180 quoting; a cell a spreadsheet would run as a formula gets a
/// leading `'` (names come from users).
fn push_row(out: &mut String, cells: impl Iterator<Item = String>) {
    let cells: Vec<String> = cells
        .map(|cell| {
            let cell = if cell.starts_with(['=', '+', '@', '\t', '\r'])
                || (cell.starts_with('-') && cell.parse::<f64>().is_err())
            {
                format!("'{cell}")
            } else {
                cell
            };
            if cell.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", cell.replace('"', "\"\""))
            } else {
                cell
            }
        })
        .collect();
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}

/// The page's time-range selector: `range` is `day`, `week`, `month` or
/// `custom` with `from` and `to` (UTC dates, both included).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Range {
    pub range: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A selector read: the analytics query and what the form shows again.
pub struct Selected {
    pub range: &'static str,
    pub from: String,
    pub to: String,
    pub query: PeriodQuery,
    /// The selector as a query string, for the CSV links.
    pub query_string: String,
}

pub const RANGES: [(&str, &str); 4] = [
    ("day", "Last 24 hours"),
    ("week", "Last 7 days"),
    ("month", "Last 30 days"),
    ("custom", "From – to"),
];

impl Range {
    /// The period at `now`, or which field is wrong.
    pub fn select(&self, now: OffsetDateTime) -> Result<Selected, Problem> {
        let date = |name: &str, raw: &Option<String>| {
            let raw = raw.as_deref().unwrap_or_default().trim();
            Date::parse(
                raw,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map_err(|_| Problem::invalid_field(name, "is not a date (YYYY-MM-DD)"))
        };
        let (range, from, to) = match self.range.as_deref().unwrap_or("week") {
            "custom" => {
                let first = date("from", &self.from)?;
                let last = date("to", &self.to)?;
                let to = last.midnight().assume_utc() + Duration::days(1);
                ("custom", first.midnight().assume_utc(), to)
            }
            "day" => ("day", now - Duration::days(1), now),
            "week" => ("week", now - Duration::days(7), now),
            "month" => ("month", now - Duration::days(30), now),
            _ => {
                return Err(Problem::invalid_field(
                    "range",
                    "is not day, week, month or custom",
                ));
            }
        };
        let shown = |t: OffsetDateTime| t.date().to_string();
        let last_day = to - Duration::microseconds(1);
        let query = PeriodQuery {
            days: None,
            from: Some(Timestamp::from(from).to_string()),
            to: Some(Timestamp::from(to).to_string()),
        };
        let query_string = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("range", range)
            .append_pair("from", &shown(from))
            .append_pair("to", &shown(last_day))
            .finish();
        Ok(Selected {
            range,
            from: shown(from),
            to: shown(last_day),
            query,
            query_string,
        })
    }
}

/// Every UTC day of the period, as `YYYY-MM-DD`.
fn days_of(period: Period) -> Vec<String> {
    let (mut day, last) = period.days();
    let mut days = Vec::new();
    while day <= last {
        days.push(day.to_string());
        match day.next_day() {
            Some(next) => day = next,
            None => break,
        }
    }
    days
}

/// Each day's count of `points`, 0 where it has none.
fn per_day(days: &[String], points: impl IntoIterator<Item = (String, i64)>) -> Vec<f64> {
    let counts: BTreeMap<String, i64> = points.into_iter().collect();
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    days.iter()
        .map(|d| counts.get(d).copied().unwrap_or_default() as f64)
        .collect()
}

/// The bucket starts of the period (RFC 3339), from the bucket holding
/// `from` up to `to`.
fn buckets_of(period: Period, bucket: Bucket) -> Vec<String> {
    let step = Duration::minutes(i64::from(bucket.minutes()));
    let from = period.from.unix_timestamp();
    let Ok(mut at) =
        OffsetDateTime::from_unix_timestamp(from - from.rem_euclid(step.whole_seconds()))
    else {
        return Vec::new();
    };
    let mut starts = Vec::new();
    while at < period.to.as_datetime() {
        starts.push(Timestamp::from(at).to_string());
        at += step;
    }
    starts
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
const fn figure(n: i64) -> f64 {
    n as f64
}

/// Every chart of the overview for the selected period, from the same
/// service calls the API answers with.
pub async fn gather(
    admin: &Admin,
    signed: &Signed,
    query: &PeriodQuery,
) -> Result<Vec<Chart>, Problem> {
    let reader = &signed.reader;
    let now = Timestamp::from(OffsetDateTime::now_utc());
    let period = query
        .period(now)
        .map_err(|e| Problem::validation(vec![e]))?;
    let (events, rewards, users, commerce) = tokio::join!(
        admin.rewards.event_analytics(reader, query),
        admin.rewards.reward_analytics(reader, query),
        admin.rewards.user_analytics(reader, query),
        admin.commerce_analytics.analytics(reader, query),
    );
    let (events, rewards, users, commerce) = (
        events.map_err(Problem::from)?,
        rewards.map_err(Problem::from)?,
        users.map_err(Problem::from)?,
        commerce.map_err(Problem::from)?,
    );
    let days = days_of(period);
    let statuses = |counts: Vec<rewards::store::StatusCount>| {
        counts.into_iter().map(|c| (c.status, figure(c.count)))
    };
    let shown_events: Vec<_> = events.events.iter().take(EVENTS_SHOWN).collect();
    let event_column = |f: fn(&rewards::store::EventActivity) -> i64| {
        shown_events
            .iter()
            .map(|e| figure(f(e)))
            .collect::<Vec<_>>()
    };
    let bucket_minutes = f64::from(commerce.coupons_bucket_minutes.max(1));
    let bucket = match commerce.coupons_bucket_minutes {
        1 => Bucket::Minute,
        60 => Bucket::Hour,
        _ => Bucket::Day,
    };
    let issued: BTreeMap<&str, i64> = commerce
        .coupons_issued
        .iter()
        .map(|t| (t.at.as_str(), t.count))
        .collect();
    let starts = buckets_of(period, bucket);
    let per_minute = starts
        .iter()
        .map(|at| figure(issued.get(at.as_str()).copied().unwrap_or_default()) / bucket_minutes)
        .collect();
    let products: Vec<_> = commerce
        .sales_per_product
        .iter()
        .take(PRODUCTS_SHOWN)
        .collect();
    let mut order_statuses: Vec<&str> = commerce
        .orders_per_day
        .iter()
        .map(|o| o.status.as_str())
        .collect();
    order_statuses.sort_unstable();
    order_statuses.dedup();
    let orders_of = |status: &str| {
        per_day(
            &days,
            commerce
                .orders_per_day
                .iter()
                .filter(|o| o.status == status)
                .map(|o| (o.day.clone(), o.count)),
        )
    };
    let non_participants = (users.users - users.participants).max(0);
    Ok(vec![
        Chart::new(
            "request-status",
            "Reward requests by status",
            Kind::Doughnut,
        )
        .single("requests", statuses(rewards.requests_by_status)),
        Chart::new("requests-per-day", "Reward requests per day", Kind::Bar).single(
            "requests",
            days.iter().cloned().zip(per_day(
                &days,
                rewards
                    .requests_per_day
                    .into_iter()
                    .map(|d| (d.day, d.count)),
            )),
        ),
        Chart::new("rewards-per-event", "Rewards per event", Kind::Bar).series(
            shown_events.iter().map(|e| e.name.clone()).collect(),
            vec![
                ("rewards offered", event_column(|e| e.rewards)),
                ("approved", event_column(|e| e.approved)),
                ("pending", event_column(|e| e.pending)),
                ("rejected", event_column(|e| e.rejected)),
            ],
        ),
        Chart::new("event-status", "Events by status", Kind::Doughnut)
            .single("events", statuses(events.by_status)),
        Chart::new(
            "participation",
            format!(
                "Participation rate: {:.1} %",
                users.participation_rate * 100.0
            ),
            Kind::Doughnut,
        )
        .single(
            "users",
            [
                ("with a request".to_owned(), figure(users.participants)),
                ("without".to_owned(), figure(non_participants)),
            ],
        ),
        Chart::new("users-per-day", "New and active users per day", Kind::Line).series(
            days.clone(),
            vec![
                (
                    "new",
                    per_day(
                        &days,
                        users
                            .new_users_per_day
                            .into_iter()
                            .map(|d| (d.day, d.count)),
                    ),
                ),
                (
                    "active",
                    per_day(
                        &days,
                        users
                            .active_users_per_day
                            .into_iter()
                            .map(|d| (d.day, d.count)),
                    ),
                ),
            ],
        ),
        Chart::new(
            "coupons-per-minute",
            if bucket == Bucket::Minute {
                "Coupons issued per minute".to_owned()
            } else {
                format!(
                    "Coupons issued per minute (average over {})",
                    if bucket == Bucket::Hour {
                        "each hour"
                    } else {
                        "each day"
                    }
                )
            },
            Kind::Line,
        )
        .series(starts, vec![("coupons per minute", per_minute)]),
        Chart::new("sales-per-product", "Sales per product (units)", Kind::Bar).series(
            products.iter().map(|p| p.name.clone()).collect(),
            vec![
                (
                    "units sold",
                    products.iter().map(|p| figure(p.units_sold)).collect(),
                ),
                (
                    "units refunded",
                    products.iter().map(|p| figure(p.units_refunded)).collect(),
                ),
                (
                    "revenue",
                    products.iter().map(|p| figure(p.revenue)).collect(),
                ),
                (
                    "refunded",
                    products.iter().map(|p| figure(p.refunded)).collect(),
                ),
            ],
        ),
        Chart::new("orders-per-day", "Orders per day by status", Kind::Stacked).series(
            days.clone(),
            order_statuses
                .iter()
                .map(|status| (*status, orders_of(status)))
                .collect(),
        ),
    ])
}

/// `GET /admin/charts/{id}.csv`: one chart's data for the selected period.
async fn csv(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Path(file): Path<String>,
    Query(range): Query<Range>,
) -> Response {
    let Some(id) = file.strip_suffix(".csv") else {
        return page::not_found();
    };
    let selected = match range.select(OffsetDateTime::now_utc()) {
        Ok(selected) => selected,
        Err(problem) => return page::problem(problem),
    };
    let charts = match gather(&admin, &signed, &selected.query).await {
        Ok(charts) => charts,
        Err(problem) => return page::problem(problem),
    };
    let Some(chart) = charts.into_iter().find(|c| c.id == id) else {
        return page::not_found();
    };
    let disposition = format!(
        "attachment; filename=\"{id}-{}-{}.csv\"",
        selected.from, selected.to
    );
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
            ),
        ],
        chart.csv(),
    )
        .into_response()
}

pub fn routes() -> Router<Admin> {
    Router::new().route("/admin/charts/{file}", get(csv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_commas_and_defuses_formulas() {
        let chart = Chart::new("x", "X", Kind::Bar).series(
            vec![
                "Winter, \"big\" drop".to_owned(),
                "=HYPERLINK(1)".to_owned(),
            ],
            vec![("units sold", vec![3.0, 0.5])],
        );
        assert_eq!(
            chart.csv(),
            "label,units sold\r\n\"Winter, \"\"big\"\" drop\",3\r\n'=HYPERLINK(1),0.5\r\n"
        );
    }

    #[test]
    fn ranges_cover_whole_days_or_the_last_hours() {
        let now = OffsetDateTime::from_unix_timestamp(1_764_784_800).expect("a time"); // 2025-12-03T18:00Z
        let week = Range::default().select(now).expect("the default");
        assert_eq!(
            (week.range, week.from.as_str(), week.to.as_str()),
            ("week", "2025-11-26", "2025-12-03")
        );
        let custom = Range {
            range: Some("custom".into()),
            from: Some("2025-11-01".into()),
            to: Some("2025-11-02".into()),
        }
        .select(now)
        .expect("valid");
        assert_eq!(custom.query.from.as_deref(), Some("2025-11-01T00:00:00Z"));
        assert_eq!(custom.query.to.as_deref(), Some("2025-11-03T00:00:00Z"));
        assert_eq!(
            custom.query_string,
            "range=custom&from=2025-11-01&to=2025-11-02"
        );
        for bad in [
            Range {
                range: Some("year".into()),
                ..Range::default()
            },
            Range {
                range: Some("custom".into()),
                from: Some("soon".into()),
                to: None,
            },
        ] {
            assert_eq!(
                bad.select(now).err().map(|p| p.into_details().status),
                Some(422)
            );
        }
    }

    #[test]
    fn buckets_and_days_fill_the_whole_period() {
        let at = |s| Timestamp::parse(s).expect("a time");
        let period = Period {
            from: at("2025-12-03T17:58:30.25Z"),
            to: at("2025-12-03T18:01:00Z"),
            chosen: true,
        };
        assert_eq!(
            buckets_of(period, Bucket::Minute),
            [
                "2025-12-03T17:58:00Z",
                "2025-12-03T17:59:00Z",
                "2025-12-03T18:00:00Z"
            ]
        );
        assert_eq!(days_of(period), ["2025-12-03"]);
        let days = ["2025-12-02".to_owned(), "2025-12-03".to_owned()];
        assert_eq!(per_day(&days, [("2025-12-03".to_owned(), 4)]), [0.0, 4.0]);
    }
}
