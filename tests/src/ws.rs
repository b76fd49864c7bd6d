//! A `graphql-transport-ws` client for subscription tests.

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// The pass subscription the apps hold open (tests and the spending bench).
pub const PASS_UPDATED: &str = "subscription($p: ID!) { passUpdated(passId: $p) { id wallets { wallet available } } }";

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to `addr`'s `/graphql/ws` with `token`, waits for the ack, then subscribes.
pub async fn subscribe(addr: std::net::SocketAddr, token: &str, query: &str, variables: Value) -> Socket {
    let mut request = format!("ws://{addr}/graphql/ws").into_client_request().expect("ws request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("websocket");
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    socket.send(Message::text(init.to_string())).await.expect("init");
    let ack = socket.next().await.expect("an answer").expect("a message");
    assert!(ack.to_text().unwrap_or("").contains("connection_ack"), "{ack:?}");
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": variables } });
    socket.send(Message::text(subscribe.to_string())).await.expect("subscribe");
    socket
}

/// The `payload.data` of the next `next` message for which `wanted` holds (earlier ones are
/// skipped); at most 20 s, which only bounds a failing test.
pub async fn next_matching(socket: &mut Socket, wanted: impl Fn(&Value) -> bool) -> Value {
    let found = async {
        while let Some(Ok(message)) = socket.next().await {
            let body: Value = serde_json::from_str(message.to_text().unwrap_or("{}")).unwrap_or_default();
            assert_ne!(body["type"], "error", "{body}");
            if body["type"] == "next" && wanted(&body["payload"]["data"]) {
                return body["payload"]["data"].clone();
            }
        }
        panic!("the socket closed before the event arrived");
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), found).await.expect("the event arrives")
}
