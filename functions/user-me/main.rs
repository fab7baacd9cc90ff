//! Lambda function `user-me`: serves its rows of the route table.

use shared::bootstrap::Wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::lambda::serve("user-me", Wiring::LAMBDA).await
}
