//! `p2p-chat health`: asks a running relay's `/healthz`, as a container's health check or a
//! monitoring script does, and exits 0 only when the relay answers that it is healthy. Also the
//! benchmark's way to read the relay's peer count.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::parse_duration;

/// Most bytes of an answer read from `/healthz`: it is a line of JSON.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;
/// Most characters of an unexpected answer quoted in an error.
const QUOTED_CHARS: usize = 120;

/// Flags of `p2p-chat health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The relay's HTTP address (its --http-addr). An unspecified address (0.0.0.0, ::) is asked
    /// on loopback, so that the same P2P_CHAT_HTTP_ADDR serves the relay and its health check.
    #[arg(long, default_value = "127.0.0.1:8080", env = "P2P_CHAT_HTTP_ADDR")]
    pub http_addr: SocketAddr,
    /// Longest wait for the whole answer (e.g. 5s).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// What `/healthz` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The relay's word for its state: `ok`, `degraded` (the store cannot write) or `stalled`
    /// (the chat core did not answer).
    pub state: String,
    /// Peers the relay counts as connected (absent when its chat core did not answer).
    pub connected_peers: Option<u64>,
    /// The body (JSON: `status`, `connected_peers`, and the store's trouble if any).
    pub body: String,
}

impl Answer {
    /// Whether the relay says it is healthy.
    pub fn healthy(&self) -> bool {
        self.status == 200 && self.state == "ok"
    }
}

/// The address to ask for a server listening on `listen`: loopback for an unspecified address.
pub fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Asks `GET /healthz` of the relay's HTTP server at `addr`.
pub async fn ask(addr: SocketAddr) -> anyhow::Result<Answer> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot reach the relay's HTTP server at {addr}"))?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.take(MAX_ANSWER_BYTES).read_to_end(&mut raw).await?;
    parse(&String::from_utf8_lossy(&raw))
        .with_context(|| format!("{addr} did not answer /healthz as the relay does"))
}

/// The status and body of an HTTP/1.x answer whose body is not chunked (axum's JSON answers),
/// and the relay's `status` in it: anything else (another server's page) is an error.
fn parse(raw: &str) -> anyhow::Result<Answer> {
    let quote = |text: &str| format!("{:?}", text.chars().take(QUOTED_CHARS).collect::<String>());
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .with_context(|| format!("no HTTP answer: {}", quote(raw)))?;
    let status_line = head.lines().next().unwrap_or_default();
    let mut words = status_line.split_whitespace();
    let status = match (words.next(), words.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => code.parse().ok(),
        _ => None,
    }
    .with_context(|| format!("not an HTTP status line: {}", quote(status_line)))?;
    let body = body.trim();
    let health = serde_json::from_str::<serde_json::Value>(body).unwrap_or_default();
    let state = health["status"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("not the relay's /healthz answer: {}", quote(body)))?;
    Ok(Answer {
        status,
        state,
        connected_peers: health["connected_peers"].as_u64(),
        body: body.to_owned(),
    })
}

/// Runs `p2p-chat health`: prints the answer; an error unless it is a 200 saying `ok`.
pub async fn run(args: HealthArgs) -> anyhow::Result<()> {
    let addr = reachable(args.http_addr);
    let answer = tokio::time::timeout(args.timeout, ask(addr))
        .await
        .with_context(|| {
            format!(
                "the relay at {addr} did not answer /healthz within {:?}",
                args.timeout
            )
        })?
        .map_err(|e| {
            anyhow::anyhow!(
                "{e:#}; is the relay running, and is --http-addr (P2P_CHAT_HTTP_ADDR) its HTTP \
                 address?"
            )
        })?;
    crate::say(&answer.body);
    if !answer.healthy() {
        anyhow::bail!(
            "the relay at {addr} is not healthy: /healthz answered {} {}",
            answer.status,
            answer.body
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listen_address_is_asked_on_loopback() {
        let addr = |a: &str| a.parse::<SocketAddr>().expect("addr");
        assert_eq!(reachable(addr("0.0.0.0:8080")), addr("127.0.0.1:8080"));
        assert_eq!(reachable(addr("[::]:8080")), addr("[::1]:8080"));
        assert_eq!(reachable(addr("10.0.0.5:80")), addr("10.0.0.5:80"));
    }

    #[test]
    fn answers_are_parsed_and_garbage_is_refused() {
        let ok = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"status\":\"ok\"}";
        let answer = parse(ok).expect("parsed");
        assert_eq!(
            answer,
            Answer {
                status: 200,
                state: "ok".into(),
                connected_peers: None,
                body: "{\"status\":\"ok\"}".into()
            }
        );
        assert!(answer.healthy());
        let stalled = parse("HTTP/1.1 503 Service Unavailable\r\n\r\n{\"status\":\"stalled\"}")
            .expect("parsed");
        assert_eq!((stalled.status, stalled.healthy()), (503, false));
        // A 200 that says anything but ok is not healthy either.
        let degraded = parse("HTTP/1.1 200 OK\r\n\r\n{\"status\":\"degraded\"}").expect("parsed");
        assert!(!degraded.healthy());
        for garbage in [
            "",
            "SSH-2.0-OpenSSH_9.2\r\n",
            "HTTP/1.1 abc\r\n\r\n",
            "\r\n\r\n",
            "HTTP/1.1 200 OK\r\n\r\n<html>a web server's page</html>",
            "HTTP/1.1 200 OK\r\n\r\n{\"connected_peers\":3}",
            "RTSP/1.0 200 OK\r\n\r\n{\"status\":\"ok\"}",
        ] {
            assert!(parse(garbage).is_err(), "{garbage:?}");
        }
    }
}
