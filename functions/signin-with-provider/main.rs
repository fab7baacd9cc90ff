//! Lambda function `signin-with-provider`: serves its rows of the route table.

use shared::bootstrap::Wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::lambda::serve("signin-with-provider", Wiring::LAMBDA).await
}
