//! Delivery through Amazon SES v2 (email) and Amazon SNS (SMS, transactional).

use async_trait::async_trait;
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
                    .map_err(|e| {
                        DependencyError(format!(
                            "SES SendEmail to {} failed: {}",
                            email.masked(),
                            aws_sdk_sesv2::error::DisplayErrorContext(&e)
                        ))
                    })?;
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
                    .map_err(|e| {
                        DependencyError(format!(
                            "SNS Publish to {} failed: {}",
                            phone.masked(),
                            aws_sdk_sns::error::DisplayErrorContext(&e)
                        ))
                    })?;
            }
        }
        Ok(())
    }
}
