//! A client that goes away cancels the upstream call: the gateway never keeps talking to a provider for nobody.
//! The simulator's open-connection count shows it, long before any gateway timeout could have fired.

mod common;

use std::time::Duration;

use common::{Harness, P, p};
use futures_util::StreamExt;
use nines_sim::FaultKind;

fn slow(kind: &'static str) -> P {
    P { first_byte: "30s", ..p("slow", kind, "m") }
}

async fn upstream_closes(h: &Harness) {
    let closed = tokio::time::timeout(Duration::from_secs(5), h.sims[0].wait_connections(|n| *n == 0)).await;
    assert!(closed.is_ok(), "the upstream connection stayed open: {} open", h.sims[0].open_connections());
}

#[tokio::test]
async fn a_client_leaving_mid_stream_cancels_the_upstream_stream() {
    for kind in ["anthropic", "openai"] {
        let h = Harness::new(&[slow(kind)]).await;
        h.fault(0, FaultKind::Drip { ms: 200 }, 1);
        let (path, body) =
            common::request("openai", "one two three four five six seven eight nine ten", true);
        let resp = h.client.post(format!("{}{path}", h.base)).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut stream = resp.bytes_stream();
        let first = stream.next().await.unwrap().unwrap();
        assert!(!first.is_empty());
        assert_eq!(h.sims[0].open_connections(), 1, "{kind}: the upstream stream is live");
        drop(stream);
        upstream_closes(&h).await;
    }
}

#[tokio::test]
async fn a_client_giving_up_on_a_plain_request_cancels_the_upstream_call() {
    let h = Harness::new(&[slow("anthropic")]).await;
    h.fault(0, FaultKind::Hang, 1);
    let (path, body) = common::request("anthropic", "hi", false);
    let client = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let err = client.post(format!("{}{path}", h.base)).json(&body).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    upstream_closes(&h).await;
}
