//! AFL++ target: [`p2p_chat_fuzz::key_file`].

fn main() {
    afl::fuzz!(|data: &[u8]| p2p_chat_fuzz::key_file(data));
}
