//! The example bot (`examples/bot.rs`), run as its own process against a relay on loopback: a
//! person in its room says `!ping`, `!time` and `!dm` and gets `pong`, the time, and a direct
//! message. `cargo test` builds the example first; run alone, build it with
//! `cargo build -p p2p-chat-shared --example bot`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::multiaddr::Protocol;
use libp2p::identity::Keypair;
use libp2p::Multiaddr;
use p2p_chat_shared::core::Event;
use p2p_chat_shared::native::{
    install_crypto_provider, new_certificate, start_peer, start_relay, Node, PeerSetup, RelayPorts,
    RelaySetup,
};

/// Longest wait for any one thing.
const WAIT: Duration = Duration::from_secs(20);

/// The bot's process; killed when dropped.
struct Bot(Child);

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The example's binary, beside this test's (`target/<profile>/examples/bot`).
fn bot_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps");
    let bot = profile_dir.join("examples").join("bot");
    assert!(
        bot.is_file(),
        "{} is missing: build it with `cargo build -p p2p-chat-shared --example bot` \
         (`cargo test` does)",
        bot.display()
    );
    bot
}

/// Waits for the first event `pick` accepts.
async fn wait_for<T>(node: &mut Node, what: &str, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(event) = node.events.next().await {
            if let Some(found) = pick(event) {
                return Some(found);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(found)) => found,
        Ok(None) => panic!("the chat core stopped while waiting for {what}"),
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_bot_answers_ping_and_time_and_sends_a_dm() {
    install_crypto_provider();
    let setup = RelaySetup::network(
        new_certificate().expect("certificate"),
        &RelayPorts::loopback_ephemeral(),
    );
    let mut relay = start_relay(Keypair::generate_ed25519(), setup)
        .await
        .expect("relay starts");
    let relay_addr: Multiaddr = wait_for(&mut relay, "the relay's TCP address", |e| match e {
        Event::Listening { addr }
            if addr.iter().any(|p| matches!(p, Protocol::Tcp(_)))
                && !addr.iter().any(|p| matches!(p, Protocol::Ws(_))) =>
        {
            Some(addr)
        }
        _ => None,
    })
    .await
    .with(Protocol::P2p(relay.peer_id));

    let _bot = Bot(Command::new(bot_binary())
        .args([relay_addr.to_string().as_str(), "bots"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the bot starts"));

    let mut ann = start_peer(Keypair::generate_ed25519(), &PeerSetup::behind_relay("ann"))
        .await
        .expect("ann starts");
    ann.client
        .use_relay(vec![relay_addr])
        .await
        .expect("ann uses the relay");
    ann.client.join("bots").await.expect("ann joins");
    let bot = wait_for(&mut ann, "the bot in the room", |e| match e {
        Event::MemberJoined { peer, nick, .. } if nick == "bot" => Some(peer),
        _ => None,
    })
    .await;

    let answer = |text: &'static str| {
        move |e: Event| match e {
            Event::Message(m) if m.from == bot && m.text.starts_with(text) => Some(m.text),
            _ => None,
        }
    };
    ann.client
        .send_message("bots", "!ping")
        .await
        .expect("sent");
    wait_for(&mut ann, "pong", answer("pong")).await;
    ann.client
        .send_message("bots", "!time")
        .await
        .expect("sent");
    let time = wait_for(&mut ann, "the time", answer("it is ")).await;
    assert!(
        time.ends_with(" UTC") && time.len() == "it is 12:34:56 UTC".len(),
        "{time}"
    );
    ann.client.send_message("bots", "!dm").await.expect("sent");
    let dm = wait_for(&mut ann, "the bot's DM", |e| match e {
        Event::DirectMessage(dm) if dm.from == bot => Some(dm.text),
        _ => None,
    })
    .await;
    assert_eq!(dm, "hello, just between us");
}
