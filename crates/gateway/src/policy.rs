//! Provider approval (checklist DP-4): whether a request's data may go to a provider.
//!
//! [`admit`] is asked for every target in [`crate::upstream::call`] before anything is built
//! or sent. A provider with no review, with an expired one (unless `[policy] expired_review
//! = "warn"`), or whose review does not list the request's data class is skipped, and the
//! reason kept; when every target is skipped, [`refusal`] is the 403 naming each provider
//! and why. The built-in `echo` provider sends nothing anywhere and is always admitted.

use chrono::NaiveDate;

use crate::config::{DataClass, ExpiredReview, ProviderKind, ReviewStatus};
use crate::error::GatewayError;
use crate::provider::Provider;

/// Whether a provider may receive a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Send.
    Allowed,
    /// Send, though the review has expired (`expired_review = "warn"`): log the message.
    AllowedExpired(String),
    /// Do not send; the reason names the provider.
    Refused(String),
}

/// Whether `provider` may receive data of `class` on `today`.
pub fn admit(
    provider: &Provider,
    class: DataClass,
    today: NaiveDate,
    on_expired: ExpiredReview,
) -> Admission {
    if provider.kind == ProviderKind::Echo {
        return Admission::Allowed;
    }
    let name = &provider.name;
    let Some(review) = &provider.review else {
        return Admission::Refused(format!(
            "provider {name:?} has not been reviewed, so it may receive no data (add [providers.{name}.review])"
        ));
    };
    let mut warning = None;
    if let ReviewStatus::Expired { .. } = review.status(today) {
        match on_expired {
            ExpiredReview::Refuse => {
                return Admission::Refused(format!(
                    "the review of provider {name:?} expired on {}, so it may receive no data until it is reviewed again",
                    review.expires
                ));
            }
            ExpiredReview::Warn => {
                warning = Some(format!(
                    "the review of provider {name:?} expired on {}; sending anyway because policy.expired_review = \"warn\"",
                    review.expires
                ));
            }
        }
    }
    if !review.admits(class) {
        return Admission::Refused(format!(
            "provider {name:?} is not approved for data class {:?} (approved: {})",
            class.as_str(),
            review.classes_list()
        ));
    }
    warning.map_or(Admission::Allowed, Admission::AllowedExpired)
}

/// The 403 for a request that no target of its route may receive, naming each provider and
/// why (`reasons` as returned by [`admit`], in target order).
pub fn refusal(reasons: &[String]) -> GatewayError {
    let mut unique: Vec<&str> = Vec::new();
    for r in reasons {
        if !unique.contains(&r.as_str()) {
            unique.push(r);
        }
    }
    GatewayError::policy(format!(
        "request refused by provider policy (DP-4): {}",
        unique.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;
    use crate::secrets::SecretBackends;

    fn provider(review: &str) -> Provider {
        let text = format!(
            "[providers.p]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n{review}"
        );
        let (c, _) = Config::parse(&text, Path::new("t.toml")).unwrap();
        let backends = SecretBackends::from_config(&c.secrets, None).unwrap();
        Provider::new("p", &c.providers["p"], &backends).unwrap()
    }

    const REVIEW: &str = "[providers.p.review]\nreviewed_by = \"sec\"\nreviewed_on = 2025-01-01\nexpires = 2026-01-01\nretention_days = 30\nzero_data_retention = false\ntrains_on_customer_data = false\ndpa_signed = true\ndata_classes = [\"public\", \"internal\"]\n";

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn approved_classes_pass_and_others_are_refused_by_name() {
        let p = provider(REVIEW);
        let today = day("2025-06-01");
        assert_eq!(
            admit(&p, DataClass::Internal, today, ExpiredReview::Refuse),
            Admission::Allowed
        );
        let Admission::Refused(why) = admit(&p, DataClass::Pii, today, ExpiredReview::Refuse)
        else {
            panic!("pii must be refused")
        };
        assert_eq!(
            why,
            "provider \"p\" is not approved for data class \"pii\" (approved: public, internal)"
        );
    }

    #[test]
    fn an_expired_review_refuses_or_warns_and_the_expiry_day_is_expired() {
        let p = provider(REVIEW);
        for today in ["2026-01-01", "2027-03-01"] {
            assert!(matches!(
                admit(&p, DataClass::Public, day(today), ExpiredReview::Refuse),
                Admission::Refused(why) if why.contains("expired on 2026-01-01")
            ));
            assert!(matches!(
                admit(&p, DataClass::Public, day(today), ExpiredReview::Warn),
                Admission::AllowedExpired(_)
            ));
        }
        // Warn mode never widens the approved classes.
        assert!(matches!(
            admit(&p, DataClass::Phi, day("2027-03-01"), ExpiredReview::Warn),
            Admission::Refused(_)
        ));
        assert_eq!(
            admit(
                &p,
                DataClass::Public,
                day("2025-12-31"),
                ExpiredReview::Refuse
            ),
            Admission::Allowed
        );
    }

    #[test]
    fn unreviewed_is_refused_and_echo_needs_no_review() {
        let p = provider("");
        assert!(matches!(
            admit(&p, DataClass::Public, day("2025-06-01"), ExpiredReview::Warn),
            Admission::Refused(why) if why.contains("not been reviewed")
        ));
        let (c, _) =
            Config::parse("[providers.e]\nkind = \"echo\"\n", Path::new("t.toml")).unwrap();
        let backends = SecretBackends::from_config(&c.secrets, None).unwrap();
        let echo = Provider::new("e", &c.providers["e"], &backends).unwrap();
        assert_eq!(
            admit(
                &echo,
                DataClass::Phi,
                day("2025-06-01"),
                ExpiredReview::Refuse
            ),
            Admission::Allowed
        );
    }

    #[test]
    fn the_refusal_is_a_403_naming_each_provider_once() {
        let e = refusal(&[
            "provider \"a\" x".into(),
            "provider \"a\" x".into(),
            "provider \"b\" y".into(),
        ]);
        assert_eq!(e.status().as_u16(), 403);
        assert_eq!(e.class(), "policy");
        assert_eq!(
            e.message,
            "request refused by provider policy (DP-4): provider \"a\" x; provider \"b\" y"
        );
    }
}
