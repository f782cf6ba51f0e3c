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

/// Why the page has no relay address to dial.
#[derive(Debug, thiserror::Error)]
pub enum RelayAddrError {
    /// Not a multiaddr.
    #[error("{addr:?} is not a multiaddr: {source}")]
    NotAMultiaddr {
        /// What was given.
        addr: String,
        /// Why it does not parse.
        source: libp2p::multiaddr::Error,
    },
    /// A pasted address without the relay's peer id at its end.
    #[error("the address must end with /p2p/<relay peer id>")]
    NoPeerId,
    /// The page's own URL could not be read.
    #[error("bad page URL")]
    PageUrl,
    /// `config.json` could not be fetched or read.
    #[error("cannot fetch config.json: {0}")]
    Fetch(#[source] gloo_net::Error),
    /// The relay answered `config.json` with an error status.
    #[error("config.json: HTTP {0}")]
    Status(u16),
    /// `config.json` is not what a relay serves.
    #[error("config.json: {0}")]
    Json(#[source] serde_json::Error),
}

/// Parses addresses, with a message naming the bad one.
pub fn parse_all(raw: &[String]) -> Result<Vec<Multiaddr>, RelayAddrError> {
    raw.iter()
        .map(|a| {
            a.trim()
                .parse::<Multiaddr>()
                .map_err(|source| RelayAddrError::NotAMultiaddr {
                    addr: a.clone(),
                    source,
                })
        })
        .collect()
}

/// Addresses from `?relay=` parameters of the page URL.
pub fn from_query() -> Result<Vec<Multiaddr>, RelayAddrError> {
    let Some(search) = web_sys::window().and_then(|w| w.location().search().ok()) else {
        return Ok(Vec::new());
    };
    let params =
        web_sys::UrlSearchParams::new_with_str(&search).map_err(|_| RelayAddrError::PageUrl)?;
    let raw: Vec<String> = params
        .get_all("relay")
        .iter()
        .filter_map(|v| v.as_string())
        .collect();
    parse_all(&raw)
}

/// Addresses from the serving relay's `config.json`.
pub async fn from_origin() -> Result<Vec<Multiaddr>, RelayAddrError> {
    let response = gloo_net::http::Request::get("config.json")
        .send()
        .await
        .map_err(RelayAddrError::Fetch)?;
    if !response.ok() {
        return Err(RelayAddrError::Status(response.status()));
    }
    let body = response.binary().await.map_err(RelayAddrError::Fetch)?;
    let config: RelayConfig = serde_json::from_slice(&body).map_err(RelayAddrError::Json)?;
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
