//! Lambda function `jwks`: serves its rows of the route table (the public keys and the
//! discovery document).

use shared::bootstrap::Wiring;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::lambda::serve("jwks", Wiring::LAMBDA).await
}
