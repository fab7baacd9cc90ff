//! Lambda function `signin`: serves its rows of the route table.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::lambda::serve("signin").await
}
