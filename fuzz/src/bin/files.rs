//! AFL++ target: [`p2p_chat_fuzz::files`].

fn main() {
    afl::fuzz!(|data: &[u8]| p2p_chat_fuzz::files(data));
}
