//! The delivery core against a loopback fake: the fake's gateway itself,
//! then the executor's limits, retries, splitting, quota and tokens.
#![cfg(feature = "deliver")]

#[path = "support/fake/mod.rs"]
mod fake;

use std::time::Duration;

use axum::Router;
use axum::routing::post;
use fake::{Chaos, FakeLimits, FakeServer, Policy};

fn counting_router(stats: std::sync::Arc<fake::Stats>) -> Router {
    Router::new().route(
        "/m",
        post(move || {
            let stats = stats.clone();
            async move {
                stats.mutation("k", "add");
                "ok"
            }
        }),
    )
}

#[tokio::test]
async fn the_gateway_refuses_over_the_window_and_drops_after_apply() {
    let limits = FakeLimits {
        calls: 2,
        per: Duration::from_millis(300),
        concurrent: 10,
        daily: None,
    };
    let server = FakeServer::start(Policy::open().limits(limits), counting_router);
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = client
            .post(format!("{}/m", server.url()))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
    let snap = server.snapshot();
    assert_eq!((snap.requests, snap.violations, snap.throttled), (3, 1, 1));

    let chaos = Chaos {
        seed: 1,
        p_429: 0.0,
        p_500: 0.0,
        p_drop_after_apply: 1.0,
    };
    let dropping = FakeServer::start(Policy::open().chaos(chaos), counting_router);
    let result = client.post(format!("{}/m", dropping.url())).send().await;
    assert!(
        result.is_err(),
        "a dropped connection has no response: {result:?}"
    );
    let snap = dropping.snapshot();
    assert_eq!(snap.mutations[&("k".to_string(), "add".to_string())], 1);
    assert_eq!(snap.dropped, 1);
}
