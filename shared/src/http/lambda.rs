//! What every Lambda function's `main` calls: read the settings, then serve its routes.

use std::sync::Arc;

use std::time::{Duration, SystemTime};

use lambda_http::{service_fn, Request, RequestExt};
use tokio::sync::OnceCell;

use crate::bootstrap::{self, Wiring};
use crate::config::{Runtime, Settings};
use crate::error::AuthError;
use crate::http::routes::{Route, ROUTES};
use crate::ops::App;

/// Kept free at the end of an invocation to answer before Lambda's timeout does.
const DEADLINE_MARGIN: Duration = Duration::from_millis(300);

/// Time until the invocation's deadline; a generous default where the runtime gives none.
fn time_left(req: &Request) -> Duration {
    req.lambda_context_ref()
        .and_then(|ctx| ctx.deadline().duration_since(SystemTime::now()).ok())
        .unwrap_or(Duration::from_secs(10))
}

/// Serves the routes of one function binary with the adapters `wiring` names. Missing
/// configuration ends the start with a sentence naming the variable. The app (AWS clients,
/// secrets from SSM) is built during init, before the first poll: Lambda runs init at full
/// CPU (and with provisioned concurrency before any traffic), and every request needs it, so
/// the first request does not wait for it. Should building fail there (SSM unreachable), the
/// function still starts, and each request tries again until one succeeds, answering
/// `unavailable` meanwhile.
pub async fn serve(function: &'static str, wiring: Wiring) -> Result<(), lambda_http::Error> {
    bootstrap::init_logging();
    let settings = Settings::from_env(Runtime::Lambda).inspect_err(|e| {
        tracing::error!(function, error = %e, "configuration is incomplete");
    })?;
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
    let app: Arc<OnceCell<App>> = Arc::new(OnceCell::new());
    match bootstrap::build_wired(settings.clone(), wiring).await {
        Ok(built) => {
            let _ = app.set(built.app);
        }
        Err(err) => {
            tracing::error!(function, error = %err, "building the app failed; requests will try again");
        }
    }
    lambda_http::run(service_fn(move |req: Request| {
        let (app, routes, settings) = (Arc::clone(&app), Arc::clone(&routes), settings.clone());
        async move {
            // Answer in the contract's shape before Lambda's own timeout cuts the call off.
            let budget = time_left(&req).saturating_sub(DEADLINE_MARGIN);
            // The refusal needs only the request id, from the headers.
            let headers = req.headers().clone();
            let work = async {
                match app
                    .get_or_try_init(|| async {
                        bootstrap::build_wired(settings, wiring)
                            .await
                            .map(|built| built.app)
                    })
                    .await
                {
                    Ok(app) => super::handle(app, &routes, req).await,
                    Err(err) => super::refuse(&req, AuthError::Unavailable(err.to_string())),
                }
            };
            let response = match tokio::time::timeout(budget, work).await {
                Ok(response) => response,
                Err(_) => {
                    let mut headers_only = Request::default();
                    *headers_only.headers_mut() = headers;
                    super::refuse(
                        &headers_only,
                        AuthError::Unavailable("the function's time budget ran out".into()),
                    )
                }
            };
            Ok::<_, std::convert::Infallible>(response)
        }
    }))
    .await
}
