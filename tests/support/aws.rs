//! What the server sent through SES and SNS, as moto_server recorded it.

use aws_sdk_sesv2::config::{BehaviorVersion, Credentials, Region};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::moto::{endpoint, ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};

static SENDER_VERIFIED: OnceCell<()> = OnceCell::const_new();

/// Verifies the sender identity in moto's SES once per test process.
pub async fn verify_sender(sender: &str) {
    SENDER_VERIFIED
        .get_or_init(|| async {
            let config = aws_sdk_sesv2::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .credentials_provider(Credentials::new(
                    ACCESS_KEY_ID,
                    SECRET_ACCESS_KEY,
                    None,
                    None,
                    "tests",
                ))
                .endpoint_url(endpoint())
                .build();
            aws_sdk_sesv2::Client::from_conf(config)
                .create_email_identity()
                .email_identity(sender)
                .send()
                .await
                .expect("moto verifies the sender identity");
        })
        .await;
}

/// Everything moto recorded as sent.
pub async fn sent() -> Value {
    reqwest::get(format!("{}/moto-api/data.json", endpoint()))
        .await
        .expect("moto answers data.json")
        .json()
        .await
        .expect("data.json is JSON")
}

/// Messages to `to` (an email, or an E.164 number), oldest first: (subject-or-empty, body).
pub async fn messages_to(to: &str) -> Vec<String> {
    let data = sent().await;
    let mut found = Vec::new();
    for message in data["ses"]["Message"].as_array().into_iter().flatten() {
        let recipients = &message["destinations"]["ToAddresses"];
        if recipients.as_array().into_iter().flatten().any(|r| r == to) {
            found.push(message["body"].as_str().unwrap_or("").to_string());
        }
    }
    for sms in data["sns"]["SMS"].as_array().into_iter().flatten() {
        if sms["phone_number"] == to {
            found.push(sms["message"].as_str().unwrap_or("").to_string());
        }
    }
    found
}

/// The six-digit code of the newest message to `to`.
pub async fn latest_code(to: &str) -> String {
    let messages = messages_to(to).await;
    messages
        .iter()
        .rev()
        .find_map(|body| code_in(body))
        .unwrap_or_else(|| panic!("moto recorded no code to {to}: {messages:?}"))
}

/// The first run of exactly six digits in a message.
pub fn code_in(body: &str) -> Option<String> {
    body.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .map(str::to_string)
}

/// How many items of a table have a key starting with `prefix`, read straight from DynamoDB.
pub async fn count_items_with_prefix(table: &str, prefix: &str) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue;
    let client = crate::moto::dynamodb_client().await;
    let mut count = 0;
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .filter_expression("begins_with(pk, :prefix)")
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_string()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan the table");
        count += page.items().len();
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return count;
        }
    }
}

/// Stores a SecureString parameter in moto's SSM.
pub async fn put_secure_parameter(name: &str, value: &str) {
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
        .region(aws_sdk_ssm::config::Region::new(REGION))
        .credentials_provider(aws_sdk_ssm::config::Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "tests",
        ))
        .endpoint_url(endpoint())
        .build();
    aws_sdk_ssm::Client::from_conf(config)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("moto stores the parameter");
}

fn pem(document: &[u8]) -> String {
    use base64::Engine;
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(document)
    )
}

/// A fresh Ed25519 key as PKCS#8 PEM: the kind of key deployments signed with before ES256.
pub fn ed25519_pem() -> String {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    pem(aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng)
        .expect("key generation")
        .as_ref())
}

/// A fresh P-256 key as PKCS#8 PEM: what signs access tokens (ES256).
pub fn p256_pem() -> String {
    use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    pem(
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("key generation")
            .as_ref(),
    )
}
