//! Lambda function `reset-password`: serves its rows of the route table.

use shared::bootstrap::Wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::lambda::serve("reset-password", Wiring::LAMBDA.with_message_delivery()).await
}
