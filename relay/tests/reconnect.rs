//! A peer that comes back while the relay still holds its old connection (here: from a new
//! network; a reloaded page is in the Playwright tests) chats at once on the new connection: the
//! relay closes the old one and has gossipsub greet the new one, so the peer never has to
//! reconnect.

mod common;

use std::time::Instant;

use common::attacker::Attacker;
use common::*;
use libp2p::identity::Keypair;
use p2p_chat_shared::core::Event;

const ROOM: &str = "lobby";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_back_while_its_old_connection_lingers_chats_at_once_without_reconnecting() {
    let dir = temp_dir("reconnect");
    let (_relay, v4, v6) = two_address_relay(&dir, Default::default()).await;
    let mut bob = hidden_peer("bob").await;
    through_relay(&mut bob, &v4).await;
    ready(&mut bob, ROOM).await;

    // Alice's old self, on 127.0.0.1: in the room, then frozen. Its connection stays open and
    // nothing on it answers any more, as when a laptop leaves one network for another.
    let key = Keypair::generate_ed25519();
    let mut ghost = Attacker::connect_with(key.clone(), &v4).await;
    ghost.join(ROOM).await;

    // Alice back, from ::1.
    let back = Instant::now();
    let mut alice = hidden_peer_with(key, "alice").await;
    through_relay(&mut alice, &v6).await;
    ready(&mut alice, ROOM).await;
    let sendable = back.elapsed();
    alice
        .client
        .send_message(ROOM, "alice is back")
        .await
        .expect("send");
    wait_message(&mut bob, ROOM, "alice is back").await;
    bob.client
        .send_message(ROOM, "welcome back")
        .await
        .expect("send");
    wait_for(&mut alice, "bob's answer", |e| match e {
        Event::RelayLost { .. } | Event::Disconnected { .. } => {
            panic!("alice had to reconnect: the relay did not greet her new connection ({e:?})")
        }
        Event::Message(m) if m.text == "welcome back" => Some(()),
        _ => None,
    })
    .await;
    wait_member(&mut alice, ROOM, bob.peer_id).await;
    println!(
        "back while the old connection lingered: sendable after {} ms, both ways after {} ms",
        sendable.as_millis(),
        back.elapsed().as_millis()
    );
    drop(ghost);
    let _ = std::fs::remove_dir_all(dir);
}
