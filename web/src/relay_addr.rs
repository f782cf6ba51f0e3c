//! Where the page finds its relay: `?relay=<multiaddr>` (repeatable), else the `config.json`
//! that the relay serving the page publishes (its browser-dialable addresses, WebRTC-direct
//! first), else an address the user pastes.

use libp2p::Multiaddr;
use serde::Deserialize;

/// The relay's `config.json`.
#[derive(Debug, Deserialize)]
pub struct RelayConfig {
    /// Browser-dialable addresses, best first, each ending in `/p2p/<relay id>`.
    pub addrs: Vec<String>,
}

/// Parses addresses, with a message naming the bad one.
pub fn parse_all(raw: &[String]) -> Result<Vec<Multiaddr>, String> {
    raw.iter()
        .map(|a| {
            a.trim()
                .parse::<Multiaddr>()
                .map_err(|e| format!("{a:?} is not a multiaddr: {e}"))
        })
        .collect()
}

/// Addresses from `?relay=` parameters of the page URL.
pub fn from_query() -> Result<Vec<Multiaddr>, String> {
    let Some(search) = web_sys::window().and_then(|w| w.location().search().ok()) else {
        return Ok(Vec::new());
    };
    let params =
        web_sys::UrlSearchParams::new_with_str(&search).map_err(|_| "bad page URL".to_owned())?;
    let raw: Vec<String> = params
        .get_all("relay")
        .iter()
        .filter_map(|v| v.as_string())
        .collect();
    parse_all(&raw)
}

/// Addresses from the serving relay's `config.json`.
pub async fn from_origin() -> Result<Vec<Multiaddr>, String> {
    let response = gloo_net::http::Request::get("config.json")
        .send()
        .await
        .map_err(|e| format!("cannot fetch config.json: {e}"))?;
    if !response.ok() {
        return Err(format!("config.json: HTTP {}", response.status()));
    }
    let body = response
        .binary()
        .await
        .map_err(|e| format!("cannot read config.json: {e}"))?;
    let config: RelayConfig =
        serde_json::from_slice(&body).map_err(|e| format!("config.json: {e}"))?;
    parse_all(&config.addrs)
}

/// A short name for the transport of an address.
pub fn transport_name(addr: &Multiaddr) -> &'static str {
    let text = addr.to_string();
    if text.contains("/webrtc-direct") {
        "WebRTC-direct"
    } else if text.contains("/wss") || text.contains("/tls/ws") {
        "WebSocket (TLS)"
    } else if text.contains("/ws") {
        "WebSocket"
    } else if text.contains("/p2p-circuit") {
        "relay circuit"
    } else {
        "direct"
    }
}
