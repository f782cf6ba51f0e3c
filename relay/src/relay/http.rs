//! The relay's HTTP side: the built web app, `config.json` (the relay's browser-dialable
//! addresses, so a page finds the relay that served it), and `/healthz` (asked of the chat core
//! itself, so it also tells whether the core answers, and of the store, so it tells whether
//! the store can write).
//!
//! Every response carries `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`
//! and a Content-Security-Policy that allows only the app's own files (its inline loader by
//! hash), WebSocket connections for libp2p, and no framing (`frame-ancestors 'none'`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use libp2p::core::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use p2p_chat_shared::addr::{is_browser_transport, is_relayed};
use p2p_chat_shared::core::Client;
use serde::Serialize;
use sha2::Digest;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use super::monitor::Monitor;
use super::store::StoreHealth;

/// How long `config.json` waits for the chat core's list of the other relays (without them
/// when it is busy).
const PEERS_TIMEOUT: Duration = Duration::from_millis(500);
/// How long `/healthz` waits for the chat core's answer before it reports the relay stalled.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The relay's addresses a browser can dial, kept current by the relay as it listens.
#[derive(Debug, Clone, Default)]
pub struct BrowserAddrs(Arc<RwLock<Vec<Multiaddr>>>);

impl BrowserAddrs {
    /// Records a listen or external address if a browser can dial it (WebRTC-direct with its
    /// certhash, or WebSocket), with the relay's `/p2p` suffix.
    pub fn add(&self, addr: &Multiaddr, relay: PeerId) {
        let Some(full) = browser_addr(addr, relay) else {
            return;
        };
        if let Ok(mut list) = self.0.write() {
            if !list.contains(&full) {
                list.push(full);
            }
        }
    }

    /// Addresses for a page loaded from `host`: those on that host first (a page from
    /// 127.0.0.1 should not be sent to a LAN address), WebRTC-direct before WebSocket.
    pub fn for_host(&self, host: Option<&str>) -> Vec<String> {
        let list = self.0.read().map(|l| l.clone()).unwrap_or_default();
        for_host(list, host)
    }
}

/// `addr` as a browser dials it (with `relay`'s `/p2p` suffix), if a browser can: WebRTC-direct
/// or WebSocket, on a specific address, not a circuit.
fn browser_addr(addr: &Multiaddr, relay: PeerId) -> Option<Multiaddr> {
    let unspecified = addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    });
    if !is_browser_transport(addr) || unspecified || is_relayed(addr) {
        return None;
    }
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) if peer == relay => Some(addr.clone()),
        Some(Protocol::P2p(_)) => None,
        _ => Some(addr.clone().with(Protocol::P2p(relay))),
    }
}

/// Whether a page loaded from `host` can reach `addr`: a loopback address only from a loopback
/// host, a private or link-local one only from a host that is not public.
fn reachable_from(addr: &Multiaddr, host: Option<&str>) -> bool {
    use std::net::IpAddr;
    let scope = |ip: IpAddr| match ip {
        IpAddr::V4(v4) if v4.is_loopback() => 0,
        IpAddr::V6(v6) if v6.is_loopback() => 0,
        IpAddr::V4(v4) if v4.is_private() || v4.is_link_local() => 1,
        IpAddr::V6(v6) if v6.is_unique_local() || v6.is_unicast_link_local() => 1,
        _ => 2,
    };
    let ip = addr.iter().find_map(|p| match p {
        Protocol::Ip4(v4) => Some(IpAddr::V4(v4)),
        Protocol::Ip6(v6) => Some(IpAddr::V6(v6)),
        _ => None,
    });
    let Some(ip) = ip else {
        return true; // a name
    };
    let host_scope = match host.map(|h| h.trim_start_matches('[').trim_end_matches(']')) {
        Some("localhost") => 0,
        Some(h) => h.parse::<IpAddr>().map_or(2, scope),
        None => 2,
    };
    let addr_scope = scope(ip);
    addr_scope == 2 || host_scope <= addr_scope
}

/// Of `list`, for a page loaded from `host`: those on that host first, WebRTC-direct before
/// WebSocket.
fn for_host(list: Vec<Multiaddr>, host: Option<&str>) -> Vec<String> {
    let on_host = |a: &Multiaddr| {
        host.is_some_and(|h| {
            a.iter().any(|p| match p {
                Protocol::Ip4(ip) => ip.to_string() == h,
                Protocol::Ip6(ip) => format!("[{ip}]") == h || ip.to_string() == h,
                Protocol::Dns(d) | Protocol::Dns4(d) | Protocol::Dns6(d) => d == h,
                _ => false,
            })
        })
    };
    let mut chosen: Vec<&Multiaddr> = list.iter().filter(|a| on_host(a)).collect();
    if chosen.is_empty() {
        chosen = list.iter().collect();
    }
    chosen.sort_by_key(|a| !a.iter().any(|p| p == Protocol::WebRTCDirect));
    chosen.into_iter().map(ToString::to_string).collect()
}

#[derive(Serialize)]
struct Config {
    peer_id: String,
    addrs: Vec<String>,
}

#[derive(Clone)]
struct AppState {
    relay: PeerId,
    addrs: BrowserAddrs,
    core: Client,
    store: Option<StoreHealth>,
    /// The other relays' addresses as last asked of the chat core, and when: `config.json` is
    /// public, and asks the core at most every [`PEERS_FRESH`].
    peers: Arc<tokio::sync::Mutex<(Option<Instant>, RelayAddrs)>>,
}

/// Relays and their addresses.
type RelayAddrs = Vec<(PeerId, Vec<Multiaddr>)>;

/// How long the other relays' addresses are kept before the core is asked again.
const PEERS_FRESH: Duration = Duration::from_secs(2);

#[derive(Serialize)]
struct Health {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    connected_peers: Option<usize>,
    /// Why the store cannot write, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<String>,
}

/// `{"status":"ok","connected_peers":N}` as the chat core counts them; 503 with
/// `{"status":"stalled"}` when the core does not answer within [`HEALTH_TIMEOUT`], and with
/// `{"status":"degraded","store":"<why>"}` when the store cannot write (chat still flows; nothing
/// new is kept).
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.store.as_ref().and_then(StoreHealth::failing);
    let (code, health) = match tokio::time::timeout(HEALTH_TIMEOUT, state.core.info()).await {
        Ok(Ok(info)) => (
            if store.is_some() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            },
            Health {
                status: if store.is_some() { "degraded" } else { "ok" },
                connected_peers: Some(info.connected_peers),
                store,
            },
        ),
        Ok(Err(_)) | Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Health {
                status: "stalled",
                connected_peers: None,
                store,
            },
        ),
    };
    (code, [(header::CACHE_CONTROL, "no-store")], Json(health))
}

/// The Content-Security-Policy for the app in `index_html`: its own files, its inline scripts
/// (trunk's loader) by hash, WebAssembly, and WebSocket connections (libp2p's `/ws`; WebRTC is
/// not governed by CSP).
fn content_security_policy(index_html: &str) -> String {
    use base64::Engine;
    let mut hashes = String::new();
    let mut rest = index_html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let Some(open_end) = after.find('>') else {
            break;
        };
        let body_and_rest = &after[open_end + 1..];
        let Some(close) = body_and_rest.find("</script>") else {
            break;
        };
        let body = &body_and_rest[..close];
        if !after[..open_end].contains("src=") {
            let digest = sha2::Sha256::digest(body.as_bytes());
            let hash = base64::engine::general_purpose::STANDARD.encode(digest);
            hashes.push_str(&format!(" 'sha256-{hash}'"));
        }
        rest = &body_and_rest[close..];
    }
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{hashes}; \
         connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

async fn config(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| {
            h.rsplit_once(':')
                .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
                .map_or(h, |(host, _)| host)
        });
    let mut addrs = state.addrs.for_host(host);
    // Then the relays of its network (the ones its operator named, connected now), each with
    // the addresses it told us: where the page goes, in turn, when this one is down.
    let peers = {
        let mut cached = state.peers.lock().await;
        if cached.0.is_none_or(|at| at.elapsed() >= PEERS_FRESH) {
            let asked = tokio::time::timeout(PEERS_TIMEOUT, state.core.relay_peer_addrs()).await;
            *cached = (
                Some(Instant::now()),
                asked.ok().and_then(Result::ok).unwrap_or_default(),
            );
        }
        cached.1.clone()
    };
    for (peer, told) in peers {
        // A WebRTC-direct address another relay tells is dialable only with its certhash, and
        // a page from a public name cannot reach a loopback or private address.
        let dialable = |a: &&Multiaddr| {
            (!a.iter().any(|p| p == Protocol::WebRTCDirect)
                || a.iter().any(|p| matches!(p, Protocol::Certhash(_))))
                && reachable_from(a, host)
        };
        let theirs: Vec<Multiaddr> = told
            .iter()
            .filter(dialable)
            .filter_map(|a| browser_addr(a, peer))
            .collect();
        addrs.extend(for_host(theirs, host));
    }
    let body = Config {
        peer_id: state.relay.to_string(),
        addrs,
    };
    ([(header::CACHE_CONTROL, "no-store")], Json(body))
}

const NOT_BUILT: &str = "<!doctype html><title>p2p-chat</title><h1>The web app is not built</h1>\
<p>Build it with <code>./scripts/run.sh</code> (or <code>trunk build --release</code>) and restart the relay, \
or pass <code>--web-dir</code>.</p>";

/// The content type of an OpenMetrics exposition (what Prometheus asks for).
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the older Prometheus text format (for anyone who does not ask for
/// OpenMetrics: curl, `promtool check metrics`).
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// An OpenMetrics exposition in the older Prometheus text format, which differs only in
/// trifles here: a counter's `HELP` and `TYPE` name it with its `_total` suffix, and there is no
/// `UNIT` and no `# EOF`.
pub fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("# TYPE ")?.split(' ');
            let name = words.next()?;
            (words.next()? == "counter").then_some(name)
        })
        .collect();
    let mut text = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|prefix| Some((prefix, line.strip_prefix(prefix)?)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let suffix = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                text.push_str(&format!("{prefix}{name}{suffix} {tail}"));
            }
            None => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

/// The operator's page, its script and its style ([`super::monitor`]).
const MONITOR_HTML: &str = include_str!("monitor/monitor.html");
const MONITOR_JS: &str = include_str!("monitor/monitor.js");
const MONITOR_CSS: &str = include_str!("monitor/monitor.css");

/// The Content-Security-Policy of the operator's pages: their own script and style only.
const ADMIN_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// Whether `host` (a request's `Host`) names the operator's server by an IP address,
/// `localhost`, or one of the names the operator allowed (`--admin-host`). Any other name may be
/// a web page's own, pointed at the operator's address by DNS rebinding so that its script can
/// read what the monitor and `/metrics` show.
fn admin_host(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split_once(']')
                .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| name.eq_ignore_ascii_case(a))
}

/// Refuses requests whose host (the `Host` header, or the request's authority in HTTP/2) is
/// not one [`admin_host`] accepts.
async fn only_admin_hosts(
    State(allowed): State<Arc<[String]>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    if admin_host(host, &allowed) {
        next.run(request).await
    } else {
        (
            StatusCode::MISDIRECTED_REQUEST,
            "the relay's operator address answers requests for an IP address, localhost or a \
             name given with --admin-host only: open it as http://<ip>:<port>/ (or through an \
             SSH tunnel)\n",
        )
            .into_response()
    }
}

/// `/monitor.json?since=<unix ms>`.
#[derive(serde::Deserialize)]
struct Since {
    since: Option<u64>,
}

/// Starts the operator's HTTP server on `listen`: the monitor page (`/`, `/monitor`) with its
/// JSON (`/monitor.json`), and `/metrics`, for requests to an IP address, `localhost` or one of
/// `hosts`; samples the monitor's figures from now on. Returns the address it is bound to.
pub async fn serve_admin(
    listen: SocketAddr,
    monitor: Monitor,
    hosts: Vec<String>,
) -> std::io::Result<SocketAddr> {
    monitor.spawn_sampler();
    let metrics = monitor.metrics().clone();
    let page = || async { ([(header::CACHE_CONTROL, "no-store")], Html(MONITOR_HTML)) };
    let app = Router::new()
        .route("/", get(page))
        .route("/monitor", get(page))
        .route(
            "/monitor.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    MONITOR_JS,
                )
            }),
        )
        .route(
            "/monitor.css",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    MONITOR_CSS,
                )
            }),
        )
        .route(
            "/monitor.json",
            get(move |since: axum::extract::Query<Since>| async move {
                let snapshot = monitor.snapshot(since.since);
                ([(header::CACHE_CONTROL, "no-store")], Json(snapshot))
            }),
        )
        .route(
            "/metrics",
            get(move |headers: HeaderMap| async move {
                let text = match metrics.encode() {
                    Ok(text) => text,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot encode the metrics");
                        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                    }
                };
                let openmetrics = headers
                    .get(header::ACCEPT)
                    .and_then(|accept| accept.to_str().ok())
                    .is_some_and(|accept| accept.contains("application/openmetrics-text"));
                let (content_type, text) = if openmetrics {
                    (OPENMETRICS, text)
                } else {
                    (PROMETHEUS_TEXT, prometheus_text(&text))
                };
                // One address, two formats: a cache must not hand one to who asked for the other.
                (
                    [
                        (header::CONTENT_TYPE, content_type),
                        (header::VARY, "Accept"),
                    ],
                    text,
                )
                    .into_response()
            }),
        )
        .layer(axum::middleware::from_fn_with_state(
            Arc::<[String]>::from(hosts),
            only_admin_hosts,
        ));
    let app = with_safety_headers(app, HeaderValue::from_static(ADMIN_CSP));
    spawn_server(listen, app, "operator HTTP server stopped").await
}

/// `app` with a Content-Security-Policy of `csp`, and no sniffing, framing or referrer.
fn with_safety_headers<S: Clone + Send + Sync + 'static>(
    app: Router<S>,
    csp: HeaderValue,
) -> Router<S> {
    app.layer(SetResponseHeaderLayer::overriding(
        header::CONTENT_SECURITY_POLICY,
        csp,
    ))
    .layer(SetResponseHeaderLayer::overriding(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ))
    .layer(SetResponseHeaderLayer::overriding(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    ))
    .layer(SetResponseHeaderLayer::overriding(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ))
}

/// Serves `app` on `listen` from a task of its own (logging `stopped` if it ever ends); the
/// address it is bound to.
async fn spawn_server(
    listen: SocketAddr,
    app: Router,
    stopped: &'static str,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "{stopped}");
        }
    });
    Ok(bound)
}

/// Starts the HTTP server; returns the address it is bound to. `core` is the relay's chat core
/// and `store` its store's health, which `/healthz` asks.
pub async fn serve(
    listen: SocketAddr,
    web_dir: PathBuf,
    relay: PeerId,
    addrs: BrowserAddrs,
    core: Client,
    store: Option<StoreHealth>,
) -> std::io::Result<SocketAddr> {
    let state = AppState {
        relay,
        addrs,
        core,
        store,
        peers: Default::default(),
    };
    let index = std::fs::read_to_string(web_dir.join("index.html")).unwrap_or_default();
    let csp = HeaderValue::from_str(&content_security_policy(&index))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"));
    let mut app = Router::new()
        .route("/config.json", get(config))
        .route("/healthz", get(health))
        // Metrics and the monitor are the operator's (`serve_admin`): never the web app's
        // fallback page here.
        .route("/metrics", get(|| async { StatusCode::NOT_FOUND }))
        .route("/monitor", get(|| async { StatusCode::NOT_FOUND }))
        .route("/monitor.json", get(|| async { StatusCode::NOT_FOUND }));
    app = if web_dir.join("index.html").is_file() {
        let index = ServeFile::new(web_dir.join("index.html"));
        app.fallback_service(ServeDir::new(&web_dir).fallback(index))
    } else {
        tracing::warn!(dir = %web_dir.display(), "no web app there; serving a hint page");
        app.fallback(|| async { (StatusCode::SERVICE_UNAVAILABLE, Html(NOT_BUILT)) })
    };
    let app = with_safety_headers(app, csp).with_state(state);
    spawn_server(listen, app, "HTTP server stopped").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_relays_are_listed_where_a_page_can_reach_them() {
        let relay = PeerId::random();
        let addr = |a: &str| a.parse::<Multiaddr>().expect("addr");
        let loopback = addr("/ip4/127.0.0.1/tcp/4002/ws");
        let private = addr("/ip4/192.168.1.5/tcp/4002/ws");
        let public = addr("/ip4/203.0.113.9/tcp/4002/ws");
        let named = addr("/dns4/relay.example.org/tcp/443/tls/ws");
        for (host, reachable) in [
            (Some("127.0.0.1"), [true, true, true, true]),
            (Some("localhost"), [true, true, true, true]),
            (Some("192.168.1.2"), [false, true, true, true]),
            (Some("chat.example.org"), [false, false, true, true]),
            (None, [false, false, true, true]),
        ] {
            let got = [&loopback, &private, &public, &named].map(|a| reachable_from(a, host));
            assert_eq!(got, reachable, "{host:?}");
        }
        // Another peer's address, a circuit, a wildcard, a transport no browser has: not listed.
        let other = PeerId::random();
        assert!(browser_addr(&addr(&format!("{public}/p2p/{other}")), relay).is_none());
        let circuit = addr(&format!(
            "/ip4/203.0.113.9/tcp/4001/p2p/{other}/p2p-circuit"
        ));
        assert!(browser_addr(&circuit, relay).is_none());
        assert!(browser_addr(&addr("/ip4/0.0.0.0/tcp/4002/ws"), relay).is_none());
        assert!(browser_addr(&addr("/ip4/203.0.113.9/tcp/4001"), relay).is_none());
        assert_eq!(
            browser_addr(&public, relay),
            Some(public.clone().with(Protocol::P2p(relay)))
        );
    }

    #[test]
    fn the_operator_address_answers_only_for_ip_addresses_localhost_and_allowed_names() {
        let allowed = ["relay.internal".to_owned()];
        for host in [
            "127.0.0.1:8081",
            "127.0.0.1",
            "[::1]:8081",
            "localhost:8081",
            "LOCALHOST",
            "10.0.0.5:9000",
            "relay.internal:8081",
        ] {
            assert!(admin_host(host, &allowed), "{host}");
        }
        for host in [
            "",
            "evil.example:8081",
            "127.0.0.1.evil.example",
            "[::1",
            "localhost.evil.example:8081",
            "relay.internal.evil.example",
        ] {
            assert!(!admin_host(host, &allowed), "{host}");
        }
    }

    #[test]
    fn an_openmetrics_exposition_becomes_the_older_text_format() {
        let openmetrics = "# HELP chat_messages Messages.\n# TYPE chat_messages counter\n\
            chat_messages_total{outcome=\"forwarded\"} 3\n\
            # HELP chat_rooms Rooms.\n# TYPE chat_rooms gauge\nchat_rooms 1\n\
            # HELP rtt_seconds Round trips.\n# TYPE rtt_seconds histogram\n# UNIT rtt_seconds seconds\n\
            rtt_seconds_sum 0.0\nrtt_seconds_count 0\nrtt_seconds_bucket{le=\"+Inf\"} 0\n# EOF\n";
        assert_eq!(
            prometheus_text(openmetrics),
            "# HELP chat_messages_total Messages.\n# TYPE chat_messages_total counter\n\
             chat_messages_total{outcome=\"forwarded\"} 3\n\
             # HELP chat_rooms Rooms.\n# TYPE chat_rooms gauge\nchat_rooms 1\n\
             # HELP rtt_seconds Round trips.\n# TYPE rtt_seconds histogram\n\
             rtt_seconds_sum 0.0\nrtt_seconds_count 0\nrtt_seconds_bucket{le=\"+Inf\"} 0\n"
        );
    }
}
