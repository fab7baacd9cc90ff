//! The floor: a bare `lambda_http` hello world, built with the same profile as the functions.
//! The benchmark compares every function's cold start and warm latency with this binary's.

use lambda_http::{run, service_fn, Body, Error, Request, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|_request: Request| async {
        Ok::<_, Error>(Response::new(Body::from("hello")))
    }))
    .await
}
