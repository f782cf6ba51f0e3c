//! AFL++ target: [`p2p_chat_fuzz::sealed_dm`].

fn main() {
    afl::fuzz!(|data: &[u8]| p2p_chat_fuzz::sealed_dm(data));
}
