//! Lambda function `delete-user`: serves its rows of the route table.

use shared::bootstrap::Wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::lambda::serve("delete-user", Wiring::LAMBDA.with_message_delivery()).await
}
