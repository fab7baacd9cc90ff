//! `local-api`: the whole API on 127.0.0.1 for local use, on the embedded store and the
//! outbox unless configured otherwise, with its developer console at `/`.

mod console;

use std::sync::Arc;

use shared::bootstrap;
use shared::config::{Runtime, Settings};
use shared::http::local::{self, LocalServer};

#[tokio::main]
async fn main() {
    bootstrap::init_logging();
    let settings = match Settings::from_env(Runtime::Local) {
        Ok(settings) => settings,
        Err(err) => fail(&err.to_string()),
    };
    let port = settings.port;
    let summary = format!(
        "store: {:?}, delivery: {:?}",
        settings.store, settings.delivery
    );
    let store = settings.store.as_str();
    let built = match bootstrap::build_with_outbox(settings).await {
        Ok(built) => built,
        Err(err) => fail(&err.to_string()),
    };
    let listener = match local::bind(port).await {
        Ok(listener) => listener,
        Err(err) => fail(&format!("cannot listen on 127.0.0.1:{port}: {err}")),
    };
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    // Tests and tools read this line to find the port.
    println!("local-api listening on http://{address} ({summary})");
    println!("console: http://{address}/ (accounts, messages, and the SDK flow to try)");
    let console = console::Console {
        directory: built.directory,
        store,
        outbox: built.outbox.is_some(),
    };
    let server = LocalServer {
        app: built.app,
        outbox: built.outbox,
        pages: Some(Arc::new(console)),
    };
    tokio::select! {
        result = local::serve(listener, server) => {
            if let Err(err) = result {
                fail(&err.to_string());
            }
        }
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn fail(sentence: &str) -> ! {
    eprintln!("local-api cannot start: {sentence}");
    std::process::exit(2);
}
