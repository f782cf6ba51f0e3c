//! `p2p-chat relay`: loads (or creates) the relay's identity and WebRTC certificate, opens its
//! store, starts the relay node (the hub of the chat core: [`p2p_chat_shared::hub`]) and its HTTP
//! server, prints its peer id and every full address as it comes up, and runs until Ctrl-C or
//! SIGTERM.
//!
//! - [`args`]: its flags;
//! - [`http`]: the web app, `config.json` and `/healthz`; on the operator's address, the monitor
//!   page and `/metrics`;
//! - [`monitor`]: what the monitor page shows;
//! - [`store`]: the database behind the store protocol (room history, receipts, the mailbox);
//! - [`sync`]: reconciling room history with the other relays of the network.

pub mod args;
pub mod http;
pub mod mail;
pub mod monitor;
pub mod store;
pub mod sync;

use anyhow::Context;
use futures::StreamExt;
use libp2p::core::multiaddr::Protocol;
use p2p_chat_shared::core::Event;
use p2p_chat_shared::hub::{HubLimits, PeeringConfig};
use p2p_chat_shared::native::{start_relay, RelayPorts, RelaySetup, Transports};

pub use args::RelayArgs;

use crate::identity::{
    claim_data_dir, default_data_dir, key_from_seed, load_key, load_or_create_certificate,
    load_or_create_key, load_tls,
};
use crate::say;
use http::BrowserAddrs;
use store::Retention;

/// A port next to `base`, or 0 (OS-chosen) when `base` is 0.
/// Peers' arrivals waiting for the mail exchange before more are dropped.
const ARRIVALS_QUEUE: usize = 4096;

fn next_port(base: u16, offset: u16) -> u16 {
    if base == 0 {
        0
    } else {
        base.saturating_add(offset)
    }
}

/// Runs the relay until it is told to stop.
pub async fn run(args: RelayArgs) -> anyhow::Result<()> {
    let base = args
        .data_dir
        .clone()
        .unwrap_or_else(|| default_data_dir("relay"));
    let data = claim_data_dir(&base, false)?;
    let key = match (args.secret_key_seed, &args.key_file) {
        (Some(seed), _) => key_from_seed(seed),
        (None, Some(path)) => load_key(path)?,
        (None, None) => load_or_create_key(&data.path.join("identity.key"))?,
    };
    let certificate = load_or_create_certificate(&data.path.join("webrtc.pem"))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(load_tls(cert, key)?),
        _ => None,
    };
    let ports = RelayPorts {
        ip: args.listen_addr,
        ipv6: args.ipv6,
        port: args.port,
        ws_port: args.ws_port.unwrap_or_else(|| next_port(args.port, 1)),
        webrtc_port: args.webrtc_port.unwrap_or_else(|| next_port(args.port, 2)),
        wss_port: tls
            .is_some()
            .then(|| args.wss_port.unwrap_or_else(|| next_port(args.port, 3))),
    };
    let retention = Retention {
        max_age: args.history_max_age,
        max_per_room: args.history_max_per_room,
        mailbox_max_age: args.mailbox_max_age,
        mailbox_max_per_peer: args.mailbox_max_per_peer,
        mailbox_max_per_depositor: args.mailbox_max_per_depositor,
        max_bytes: args.store_max_bytes,
    };
    let store_path = data.path.join("store.redb");
    let mut registry = prometheus_client::registry::Registry::default();
    let store_metrics = store::StoreMetrics::new(&mut registry);
    let store::Opened {
        handle: store,
        thread: store_thread,
        health: store_health,
        mail_news,
    } = store::open_metered(&store_path, retention, store_metrics.clone())?;
    if !args.no_metrics && args.admin_addr == args.http_addr && args.http_addr.port() != 0 {
        anyhow::bail!(
            "--admin-addr and --http-addr are both {}: the operator's address must be another one \
             (metrics are not for the public)",
            args.http_addr
        );
    }
    let metrics =
        (!args.no_metrics).then(|| p2p_chat_shared::native::metrics::CoreMetrics::new(registry));
    let sync_store = store.clone();
    let mail_store = store.clone();
    let setup = RelaySetup {
        transports: Transports::Network { certificate, tls },
        external_addrs: args.external_addrs.clone(),
        store: Some(store),
        rate_per_ip: args.rate_per_ip,
        connections_per_ip: args.connections_per_ip,
        circuit_bytes: args.max_circuit_bytes,
        limits: HubLimits {
            publish_per_sec: args.publish_per_sec,
            publish_burst: args.publish_burst,
            relay_publish_per_sec: args.relay_publish_per_sec,
            relay_publish_burst: args.relay_publish_burst,
            rooms_per_peer: args.rooms_per_peer,
            rooms_per_ip: args.rooms_per_ip,
            ban: args.ban,
            answer_bytes_per_ip: args.answer_bytes_per_ip,
        },
        listen: ports.listen_addrs(),
        metrics: metrics.clone(),
        peering: PeeringConfig {
            peers: args.peers.clone(),
            named_only: args.peers_only,
        },
    };
    let own = key.public().to_peer_id();
    if let Some(addr) = args
        .peers
        .iter()
        .find(|a| p2p_chat_shared::addr::peer_at_end(a) == Some(own))
    {
        anyhow::bail!("--peer {addr} is this relay itself: name the other relays of the network");
    }
    let mut node = start_relay(key, setup).await?;
    let peer_id = node.peer_id;
    let sync = tokio::spawn(sync::run(node.client.clone(), sync_store));
    let present = mail::Present::default();
    // (An arrival the exchange is too far behind to hear of is taken at the next hint.)
    let (mut arrivals, arrivals_rx) = futures::channel::mpsc::channel(ARRIVALS_QUEUE);
    let mail = tokio::spawn(mail::run(
        node.client.clone(),
        mail_store,
        mail_news,
        present.clone(),
        arrivals_rx,
    ));
    let browser_addrs = BrowserAddrs::default();
    for addr in &args.external_addrs {
        browser_addrs.add(addr, peer_id);
    }
    let http = http::serve(
        args.http_addr,
        args.web_dir.clone(),
        peer_id,
        browser_addrs.clone(),
        node.client.clone(),
        Some(store_health),
    )
    .await
    .with_context(|| format!("cannot serve HTTP on {}", args.http_addr))?;
    let monitor =
        metrics.map(|metrics| monitor::Monitor::new(peer_id, metrics, Some(store_metrics)));
    let admin = match &monitor {
        Some(monitor) => {
            for addr in &args.external_addrs {
                monitor.add_addr(addr.clone().with_p2p(peer_id).unwrap_or_else(|a| a));
            }
            let bound =
                http::serve_admin(args.admin_addr, monitor.clone(), args.admin_hosts.clone())
                    .await
                    .with_context(|| {
                        format!(
                            "cannot serve the operator's HTTP (monitor and metrics) on {}: pass \
                         --admin-addr with a free port (another relay on this machine uses \
                         8081?), or --no-metrics",
                            args.admin_addr
                        )
                    })?;
            Some(bound)
        }
        None => None,
    };
    say(format!("p2p-chat relay {}", env!("CARGO_PKG_VERSION")));
    say(format!("peer id: {peer_id}"));
    say(format!("data dir: {}", data.path.display()));
    say(format!(
        "store: {} (rooms: {} messages / {} days each; offline DMs: {} per peer / {} days; {} MiB in all)",
        store_path.display(),
        retention.max_per_room,
        retention.max_age.as_secs() / 86_400,
        retention.mailbox_max_per_peer,
        retention.mailbox_max_age.as_secs() / 86_400,
        retention.max_bytes >> 20,
    ));
    say(format!("web app: http://{http}"));
    match admin {
        Some(admin) => say(format!(
            "monitor: http://{admin}/ and metrics: http://{admin}/metrics (operator only)"
        )),
        None => say("monitor and metrics: off (--no-metrics)"),
    }
    say("peers connect with: p2p-chat peer --relay <one of the addresses below>");
    for addr in &args.external_addrs {
        say(format!(
            "external: {}",
            addr.clone().with_p2p(peer_id).unwrap_or_else(|a| a)
        ));
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            event = node.events.next() => match event {
                Some(Event::Listening { addr }) => {
                    let full = if addr.iter().any(|p| matches!(p, Protocol::P2p(_))) {
                        addr
                    } else {
                        addr.with(Protocol::P2p(peer_id))
                    };
                    say(format!("listening: {full}"));
                    browser_addrs.add(&full, peer_id);
                    if let Some(monitor) = &monitor {
                        monitor.add_addr(full);
                    }
                }
                Some(Event::Connected { peer, addr, .. }) => {
                    tracing::info!(%peer, %addr, "peer connected");
                    present.connected(peer);
                    let _ = arrivals.try_send(peer);
                }
                Some(Event::Lagged { missed }) => {
                    // Connections opened or closed may be among what was missed.
                    tracing::warn!(missed, "the relay's event loop fell behind its chat core");
                    if let Ok(info) = node.client.peers(None).await {
                        present.reset(info.connected.iter().map(|c| c.peer));
                    }
                }
                Some(Event::Disconnected { peer }) => {
                    tracing::info!(%peer, "peer disconnected");
                    present.gone(&peer);
                }
                Some(other) => tracing::debug!(?other, "relay event"),
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
    }
    // Its end of the store queue goes first: the store stops once every end is gone.
    sync.abort();
    let _ = sync.await;
    mail.abort();
    let _ = mail.await;
    let _ = node.client.shutdown().await;
    // The core's end of the store queue is gone with it: the store finishes its last batch.
    drop(node);
    let _ = tokio::task::spawn_blocking(move || store_thread.join()).await;
    say("relay stopped");
    Ok(())
}
