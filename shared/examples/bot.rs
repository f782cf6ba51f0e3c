//! A p2p-chat bot: joins a room through a relay, answers `!ping` and `!time`, and sends a direct
//! message to whoever says `!dm`.
//!
//! `cargo run -p p2p-chat-shared --example bot -- <relay address ending in /p2p/...> [room]`

use futures::StreamExt;
use p2p_chat_shared::core::Event;
use p2p_chat_shared::native::{self, PeerSetup};
use p2p_chat_shared::text::now_unix_ms;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bot RELAY_ADDRESS [ROOM]";
    let relay = args.next().ok_or(usage)?.parse()?;
    let room = args.next().unwrap_or_else(|| "lobby".to_owned());

    native::install_crypto_provider();
    let key = libp2p::identity::Keypair::generate_ed25519();
    let mut node = native::start_peer(key, &PeerSetup::behind_relay("bot")).await?;
    node.client.use_relay(vec![relay]).await?;
    node.client.join(&room).await?;
    println!("bot {} is in {room}", node.peer_id);

    // Live messages only: what the room said before we came (`Event::History`) is not for us.
    while let Some(event) = node.events.next().await {
        let Event::Message(message) = event else {
            continue;
        };
        let answer = match message.text.trim() {
            "!ping" => "pong".to_owned(),
            "!time" => {
                let s = now_unix_ms() / 1000 % 86_400;
                format!("it is {:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
            }
            "!dm" => {
                // A DM waits for its acknowledgement: not in the way of the room.
                let (client, to) = (node.client.clone(), message.from);
                tokio::spawn(async move {
                    if let Err(e) = client.dm(to, "hello, just between us").await {
                        eprintln!("dm to {to} failed: {e}");
                    }
                });
                format!("{}: sent you a direct message", message.nick)
            }
            _ => continue,
        };
        node.client.send_message(&message.room, answer).await?;
    }
    Ok(())
}
