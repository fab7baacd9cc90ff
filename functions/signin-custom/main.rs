//! Lambda function `signin-custom`: serves its rows of the route table.

use shared::bootstrap::Wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::lambda::serve("signin-custom", Wiring::LAMBDA.with_custom_login()).await
}
