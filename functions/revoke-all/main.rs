//! Lambda function `revoke-all`: serves its rows of the route table.

use shared::bootstrap::Wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::lambda::serve("revoke-all", Wiring::LAMBDA).await
}
