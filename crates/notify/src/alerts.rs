//! The operator alert: a Slack message when dead letters pile up. The
//! server checks every minute; the alarm speaks when the total has grown by
//! at least `threshold` since its last alert (or since zero, at start), so
//! one growth is one message. Fewer dead letters (replayed, discarded)
//! lower the mark, and growth is measured from there.

use crate::slack::SlackWebhook;

/// Remembers the total at the last alert.
#[derive(Debug)]
pub struct DeadLetterAlarm {
    threshold: u64,
    mark: u64,
}

/// An alert to send; [`DeadLetterAlarm::sent`] once it went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub total: u64,
    pub text: String,
}

impl DeadLetterAlarm {
    /// Alerts on every growth by `threshold` (at least 1).
    #[must_use]
    pub fn new(threshold: u64) -> Self {
        Self {
            threshold: threshold.max(1),
            mark: 0,
        }
    }

    /// Looks at the dead letters per subscriber; an alert when they grew
    /// enough since the last one.
    pub fn observe(&mut self, counts: &[(String, u64)]) -> Option<Alert> {
        let total: u64 = counts.iter().map(|(_, n)| n).sum();
        self.mark = self.mark.min(total);
        if total < self.mark.saturating_add(self.threshold) {
            return None;
        }
        let by_subscriber: Vec<String> = counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(subscriber, n)| format!("{subscriber}: {n}"))
            .collect();
        Some(Alert {
            total,
            text: format!(
                ":warning: Stampede: {total} dead letters (up {} since the last alert) - {}. \
                 See GET /admin-api/dead-letters.",
                total - self.mark,
                by_subscriber.join(", ")
            ),
        })
    }

    /// The alert went out: growth is measured from its total now.
    pub fn sent(&mut self, alert: &Alert) {
        self.mark = alert.total;
    }

    /// Observes `counts` and posts an alert to `webhook` (or logs it without
    /// one). A post that fails is tried again at the next check.
    pub async fn check(&mut self, counts: &[(String, u64)], webhook: Option<&SlackWebhook>) {
        let Some(alert) = self.observe(counts) else {
            return;
        };
        match webhook {
            Some(webhook) => match webhook.post(&alert.text).await {
                Ok(()) => self.sent(&alert),
                Err(error) => {
                    tracing::warn!(%error, "dead-letter alert not posted; next check retries")
                }
            },
            None => {
                tracing::warn!(total = alert.total, text = %alert.text,
                    "dead letters piling up (no slack_webhook_url)");
                self.sent(&alert);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(n: &[u64]) -> Vec<(String, u64)> {
        n.iter()
            .enumerate()
            .map(|(i, n)| (format!("s{i}"), *n))
            .collect()
    }

    #[test]
    fn one_alert_per_growth_by_the_threshold() {
        let mut alarm = DeadLetterAlarm::new(3);
        assert_eq!(alarm.observe(&counts(&[0, 2])), None);
        let first = alarm.observe(&counts(&[1, 2])).expect("grew by 3");
        assert_eq!(first.total, 3);
        assert!(first.text.contains("s0: 1, s1: 2"), "{}", first.text);
        // Not sent yet: asked again, it still alerts.
        assert!(alarm.observe(&counts(&[1, 2])).is_some());
        alarm.sent(&first);
        assert_eq!(alarm.observe(&counts(&[1, 2])), None, "no spam");
        assert_eq!(alarm.observe(&counts(&[3, 2])), None, "up 2 of 3");
        let second = alarm.observe(&counts(&[4, 2])).expect("up 3");
        alarm.sent(&second);
        // Discarded down to 1; growth counts from there.
        assert_eq!(alarm.observe(&counts(&[1, 0])), None);
        assert_eq!(alarm.observe(&counts(&[3, 0])), None);
        assert!(alarm.observe(&counts(&[4, 0])).is_some());
    }
}
