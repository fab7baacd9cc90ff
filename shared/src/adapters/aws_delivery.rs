//! Delivery through Amazon SES v2 (email) and Amazon SNS (SMS, transactional).
//!
//! Throttling (`TooManyRequestsException`, `Throttling`), 5xx answers, timeouts and dropped
//! connections are retried by the SDK client within the call budget set in `bootstrap.rs`;
//! whatever still fails, including a rejection, is a `DependencyError`: the operation answers
//! `unavailable` and, for a code, stores nothing (it sends first, then stores). A retry after
//! a lost answer may deliver the same message twice, which for a code is harmless: both
//! carry the same code.

use std::fmt::Debug;

use async_trait::async_trait;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message as SesMessage};
use aws_sdk_sns::types::MessageAttributeValue;

use crate::domain::Address;
use crate::ports::{Delivery, DependencyError, Message};

pub struct AwsDelivery {
    ses: aws_sdk_sesv2::Client,
    sns: aws_sdk_sns::Client,
    from: String,
}

impl AwsDelivery {
    pub fn new(ses: aws_sdk_sesv2::Client, sns: aws_sdk_sns::Client, from: String) -> Self {
        Self { ses, sns, from }
    }
}

/// A log-safe description of a failed send: the service's error code, never its message,
/// which may quote the recipient (`MessageRejected: Email address is not verified ...`).
fn send_failed<E, R>(call: &str, to: &str, err: &SdkError<E, R>) -> DependencyError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: Debug,
{
    let detail = match err {
        SdkError::ServiceError(_) => err.code().unwrap_or("unknown error").to_string(),
        SdkError::TimeoutError(_) => "timed out".to_string(),
        SdkError::ResponseError(_) => "the answer could not be read".to_string(),
        _ => DisplayErrorContext(err).to_string(),
    };
    DependencyError(format!("{call} to {to} failed: {detail}"))
}

fn text(data: &str) -> Result<Content, DependencyError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| DependencyError(format!("building an SES message: {e}")))
}

#[async_trait]
impl Delivery for AwsDelivery {
    async fn send(&self, message: &Message) -> Result<(), DependencyError> {
        match &message.to {
            Address::Email(email) => {
                let content = EmailContent::builder()
                    .simple(
                        SesMessage::builder()
                            .subject(text(&message.subject)?)
                            .body(Body::builder().text(text(&message.body)?).build())
                            .build(),
                    )
                    .build();
                self.ses
                    .send_email()
                    .from_email_address(&self.from)
                    .destination(Destination::builder().to_addresses(email.as_str()).build())
                    .content(content)
                    .send()
                    .await
                    .map_err(|e| send_failed("SES SendEmail", &email.masked().to_string(), &e))?;
            }
            Address::Phone(phone) => {
                let sms_type = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("Transactional")
                    .build()
                    .map_err(|e| DependencyError(format!("building an SNS attribute: {e}")))?;
                self.sns
                    .publish()
                    .phone_number(phone.e164())
                    .message(&message.body)
                    .message_attributes("AWS.SNS.SMS.SMSType", sms_type)
                    .send()
                    .await
                    .map_err(|e| send_failed("SNS Publish", &phone.masked().to_string(), &e))?;
            }
        }
        Ok(())
    }
}
