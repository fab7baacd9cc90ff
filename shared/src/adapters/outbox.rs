//! Local delivery: each message is printed to the terminal and kept for `GET /_dev/outbox`.
//! Only `local-api` ever builds it; Lambda functions refuse `AUTH_DELIVERY=outbox`.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::Serialize;

use crate::domain::rfc3339;
use crate::domain::Address;
use crate::ports::{Clock, Delivery, DependencyError, Message, SystemClock};

/// The most recent messages kept; older ones fall off.
const CAPACITY: usize = 1000;

#[derive(Clone, Debug, Serialize)]
pub struct OutboxEntry {
    /// Counts up from 1 over the life of the process, so a page polling the outbox can tell
    /// new messages from those it has shown, even after the outbox was emptied.
    pub id: u64,
    pub channel: &'static str,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub code: Option<String>,
    pub sent_at: String,
}

#[derive(Default)]
pub struct Outbox {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: VecDeque<OutboxEntry>,
    sent: u64,
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Oldest first, newest last.
    pub fn entries(&self) -> Vec<OutboxEntry> {
        self.state().entries.iter().cloned().collect()
    }

    /// Forgets every message kept so far.
    pub fn clear(&self) {
        self.state().entries.clear();
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Delivery for Outbox {
    async fn send(&self, message: &Message) -> Result<(), DependencyError> {
        let (channel, to) = match &message.to {
            Address::Email(email) => ("email", email.as_str().to_string()),
            Address::Phone(phone) => ("sms", phone.e164()),
        };
        let mut state = self.state();
        state.sent += 1;
        let entry = OutboxEntry {
            id: state.sent,
            channel,
            to,
            subject: message.subject.clone(),
            body: message.body.clone(),
            code: message.code.as_ref().map(|c| c.expose().to_string()),
            sent_at: rfc3339(SystemClock.now()),
        };
        // The terminal is the local developer's inbox, by design.
        println!("[outbox] {} to {}: {}", entry.channel, entry.to, entry.body);
        if state.entries.len() == CAPACITY {
            state.entries.pop_front();
        }
        state.entries.push_back(entry);
        Ok(())
    }
}
