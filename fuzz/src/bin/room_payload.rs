//! AFL++ target: [`p2p_chat_fuzz::room_payload`].

fn main() {
    afl::fuzz!(|data: &[u8]| p2p_chat_fuzz::room_payload(data));
}
