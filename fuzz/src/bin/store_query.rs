//! AFL++ target: [`p2p_chat_fuzz::store_query`].

fn main() {
    afl::fuzz!(|data: &[u8]| p2p_chat_fuzz::store_query(data));
}
