//! What every Lambda function's `main` calls: build the app once, then serve its routes.

use std::sync::Arc;

use lambda_http::{service_fn, Request};

use crate::bootstrap;
use crate::config::{Runtime, Settings};
use crate::http::routes::{Route, ROUTES};

/// Serves the routes of one function binary. Configuration problems end the start with a
/// sentence naming the variable; nothing here touches the network before the first request.
pub async fn serve(function: &'static str) -> Result<(), lambda_http::Error> {
    bootstrap::init_logging();
    let settings = Settings::from_env(Runtime::Lambda).map_err(|e| {
        tracing::error!(function, error = %e, "configuration is incomplete");
        e
    })?;
    let app = Arc::new(bootstrap::build(settings).await?);
    let routes: Arc<[Route]> = ROUTES
        .iter()
        .filter(|r| r.function == function)
        .copied()
        .collect();
    if routes.is_empty() {
        return Err(
            format!("no route in the route table is served by function `{function}`").into(),
        );
    }
    lambda_http::run(service_fn(move |req: Request| {
        let app = Arc::clone(&app);
        let routes = Arc::clone(&routes);
        async move { Ok::<_, std::convert::Infallible>(super::handle(&app, &routes, req).await) }
    }))
    .await
}
