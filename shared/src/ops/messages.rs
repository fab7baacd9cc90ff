//! What sending a message takes: the deployment's hourly budget of each channel (codes and
//! notices together), and change notices, each within its quota.

use crate::domain::{Address, UnixTime, User};
use crate::ports::Message;

use super::{give_back_count, limit_key, App, HOUR};

/// A deployment-wide hourly budget of one channel (SMS or email), every address and client
/// together: a ceiling on the bill (and on SES's quota) that no spread of addresses or clients
/// gets around.
pub(crate) struct ChannelBudget {
    pub(crate) key: String,
    pub(crate) per_hour: u32,
}

impl ChannelBudget {
    /// Everything the channel of `address` may send in an hour, codes and notices.
    pub(crate) fn of(app: &App, address: &Address) -> Self {
        let settings = &app.settings;
        match address {
            Address::Phone(_) => Self {
                key: limit_key(app, "sms-hour", "deployment"),
                per_hour: settings.sms_sends_per_hour,
            },
            Address::Email(_) => Self {
                key: limit_key(app, "email-hour", "deployment"),
                per_hour: settings.email_sends_per_hour,
            },
        }
    }

    /// The part of the channel's budget notices may use (`AUTH_SMS_NOTICE_SHARE_PERCENT`):
    /// notices count against both, so codes always keep the rest.
    pub(crate) fn notices_of(app: &App, address: &Address) -> Self {
        let whole = Self::of(app, address);
        let share = u64::from(app.settings.sms_notice_share_percent);
        Self {
            key: limit_key(app, "notice-hour", address.kind().as_str()),
            per_hour: (u64::from(whole.per_hour) * share / 100) as u32,
        }
    }
}

/// What one change notice takes: a place among the notices to its address this hour
/// (`AUTH_NOTICES_PER_ADDRESS_PER_HOUR`), in the notices' share of its channel's budget, and
/// in the channel's budget itself. All of them or none: a notice refused by one gives back
/// what the others counted, and so does one that is not delivered.
struct NoticeQuota {
    keys: [String; 3],
    now: UnixTime,
}

impl NoticeQuota {
    /// The quota, or why the notice may not go out (for the log).
    async fn take(app: &App, address: &Address, now: UnixTime) -> Result<Self, String> {
        let store = &app.store;
        let per_address = app.settings.notices_per_address_per_hour;
        let share = ChannelBudget::notices_of(app, address);
        let whole = ChannelBudget::of(app, address);
        let to_address = limit_key(app, "notice-address", &address.stored());
        let (by_address, by_share, by_budget) = tokio::join!(
            store.count_event(&to_address, per_address, HOUR, now),
            store.count_event(&share.key, share.per_hour, HOUR, now),
            store.count_event(&whole.key, whole.per_hour, HOUR, now),
        );
        let quota = Self {
            keys: [to_address, share.key, whole.key],
            now,
        };
        let outcomes = [by_address, by_share, by_budget];
        let refusal = outcomes
            .iter()
            .zip([
                "the notices to this address this hour are spent",
                "the notices' share of this hour's budget is spent",
                "this hour's budget of the channel is spent",
            ])
            .find_map(|(outcome, spent)| match outcome {
                Ok(Ok(_)) => None,
                Ok(Err(_)) => Some(spent.to_string()),
                Err(err) => Some(err.to_string()),
            });
        let Some(refusal) = refusal else {
            return Ok(quota);
        };
        let give_back = quota
            .keys
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| matches!(outcome, Ok(Ok(_))))
            .map(|(key, _)| give_back_count(app, key, now));
        for given_back in give_back {
            given_back.await;
        }
        Err(refusal)
    }

    async fn give_back(&self, app: &App) {
        let [a, b, c] = &self.keys;
        tokio::join!(
            give_back_count(app, a, self.now),
            give_back_count(app, b, self.now),
            give_back_count(app, c, self.now),
        );
    }
}

/// Tells the address a bind replaced (if it did) that it no longer signs in.
pub(crate) async fn tell_replaced(app: &App, previous: Option<Address>, new: &Address) {
    if let Some(old) = previous.filter(|old| old != new) {
        let body = format!(
            "This address no longer signs in to your account: it was replaced by {}. If you did not do this, contact support.",
            named_in_notice(new)
        );
        notify(
            app,
            [Some(old), None],
            "Your sign-in address was changed",
            &body,
        )
        .await;
    }
}

/// How a notice names an address: enough for its owner to recognise it, too little for
/// anyone else to learn it (neither the whole domain nor the whole number).
fn named_in_notice(address: &Address) -> String {
    match address {
        Address::Email(email) => {
            let (local, domain) = email.as_str().split_once('@').unwrap_or(("", ""));
            let first = |text: &str| text.chars().next().unwrap_or('*');
            let top_level = domain.rsplit('.').next().unwrap_or("");
            format!("{}***@{}***.{top_level}", first(local), first(domain))
        }
        Address::Phone(phone) => phone.masked(),
    }
}

/// Tells an account's addresses (its email and its phone, at most) about a change of it: a
/// notice, never a code. The change stands even when a notice cannot be delivered, or is
/// dropped because its address or its channel had its notices for the hour (see
/// `NoticeQuota`): one account changing itself over and over reaches neither an inbox more
/// than a few times nor the budget that codes need.
pub(crate) async fn notify(app: &App, to: [Option<Address>; 2], subject: &str, body: &str) {
    let send = |address: Option<Address>| async move {
        let Some(address) = address else { return };
        let quota = match NoticeQuota::take(app, &address, app.clock.now()).await {
            Ok(quota) => quota,
            Err(why) => {
                tracing::warn!(to = %address.masked(), reason = %why, "a change notice was not sent");
                return;
            }
        };
        let notice = Message {
            to: address,
            subject: subject.to_string(),
            body: body.to_string(),
            code: None,
        };
        if let Err(err) = app.delivery.send(&notice).await {
            quota.give_back(app).await;
            tracing::warn!(to = %notice.to.masked(), error = %err, "a change notice was not delivered");
        }
    };
    let [first, second] = to;
    tokio::join!(send(first), send(second));
}

/// `notify` to the email and the phone `user` has.
pub(crate) async fn notify_account(app: &App, user: &User, subject: &str, body: &str) {
    let to = [
        user.address(crate::domain::AddressKind::Email),
        user.address(crate::domain::AddressKind::Phone),
    ];
    notify(app, to, subject, body).await;
}
