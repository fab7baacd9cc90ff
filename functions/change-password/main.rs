//! Lambda function `change-password`: serves its rows of the route table.

use shared::bootstrap::Wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::lambda::serve("change-password", Wiring::LAMBDA.with_message_delivery()).await
}
