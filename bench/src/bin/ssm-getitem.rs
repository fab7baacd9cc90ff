//! The second floor: the least every function does for a user after idle, written as a plain
//! minimal `lambda_http` function the way the AWS SDK's examples do it. At init it loads the
//! AWS configuration with the default chain and reads one SSM SecureString (as the functions
//! read their signing key); each request makes one DynamoDB `GetItem`. The benchmark compares
//! every function's cold request with this binary's.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{run, service_fn, Body, Error, Request, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let parameter = std::env::var("FLOOR_PARAMETER")?;
    let secret = aws_sdk_ssm::Client::new(&config)
        .get_parameter()
        .name(parameter)
        .with_decryption(true)
        .send()
        .await?;
    // The value is not used; a function would parse its key from it.
    if secret.parameter().and_then(|p| p.value()).is_none() {
        return Err("the SSM parameter has no value".into());
    }
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = std::env::var("AUTH_TABLE_NAME")?;
    run(service_fn(move |_request: Request| {
        let (dynamodb, table) = (dynamodb.clone(), table.clone());
        async move {
            let item = dynamodb
                .get_item()
                .table_name(table)
                .key("pk", AttributeValue::S("floor#absent".into()))
                .send()
                .await?;
            let status = if item.item().is_some() { 200 } else { 404 };
            Ok::<_, Error>(Response::builder().status(status).body(Body::from("{}"))?)
        }
    }))
    .await
}
