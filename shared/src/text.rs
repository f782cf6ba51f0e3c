//! Text from users and from the network: nicknames, display-safe strings, and times.
//!
//! Nicknames are display names only (the author of a message is its signed source), so a bad
//! one is repaired rather than rejected. Anything shown in a terminal goes through
//! [`display_safe`], so a remote peer cannot send escape sequences to someone's screen.

use std::borrow::Cow;

use crate::protocol::MAX_NICK_CHARS;

/// A random default nickname like `user-4821`.
pub fn random_nick() -> String {
    format!("user-{:04}", rand::random_range(0..10_000))
}

/// A nickname fit to show: cleaned ([`clean_nick`]) and never empty. Whoever starts a chat core
/// chooses it once, with [`Nick::first_usable`]; the core takes it as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nick(String);

impl Nick {
    /// `raw` cleaned, or `None` when nothing usable is left.
    pub fn new(raw: &str) -> Option<Self> {
        clean_nick(raw).map(Self)
    }

    /// The first usable nickname of `candidates` (in order of preference: a flag, a saved one),
    /// else a random one like `user-4821`.
    pub fn first_usable<'a>(candidates: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        candidates
            .into_iter()
            .flatten()
            .find_map(Self::new)
            .unwrap_or_else(|| Self(random_nick()))
    }

    /// The nickname.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Nick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Nick> for String {
    fn from(nick: Nick) -> Self {
        nick.0
    }
}

/// Characters that are not seen but change what is around them: zero-width spaces and joiners,
/// direction marks, embeddings, overrides and isolates, invisible fillers, variation selectors,
/// tags. In a nickname they let one name pass for another.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Characters that reorder the text shown after them (embeddings, overrides, isolates) or
/// break a line: in a message they could make one message look like another.
fn is_direction_or_break(c: char) -> bool {
    matches!(c, '\u{2028}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{0085}')
}

/// Cleans a nickname from a user or a peer: control and invisible characters ([`is_invisible`])
/// removed, any run of spaces made one space, surrounding spaces trimmed, cut to
/// [`MAX_NICK_CHARS`] characters. `None` when nothing usable is left.
pub fn clean_nick(raw: &str) -> Option<String> {
    let mut cleaned = String::new();
    for c in raw.chars().filter(|c| !c.is_control() && !is_invisible(*c)) {
        if c.is_whitespace() {
            if !cleaned.is_empty() && !cleaned.ends_with(' ') {
                cleaned.push(' ');
            }
        } else if cleaned.chars().count() < MAX_NICK_CHARS {
            cleaned.push(c);
        }
    }
    let cleaned = cleaned.trim_end().to_owned();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// What a continuation line of a message starts with in a terminal: a remote message's second
/// line can never pass for another message.
pub const CONTINUATION: &str = "    \u{2506} ";

/// A remote message as terminal lines: `prefix` and its first line, then each further line
/// indented and marked with [`CONTINUATION`]; the text is [`display_safe`] first. One remote
/// message is always one visible message.
pub fn terminal_message(prefix: &str, body: &str) -> String {
    let safe = display_safe(body);
    let mut lines = safe.split('\n');
    let mut out = format!("{prefix}{}", lines.next().unwrap_or_default());
    for line in lines {
        out.push('\n');
        out.push_str(CONTINUATION);
        out.push_str(line);
    }
    out
}

/// Replaces control characters other than newline and tab, and the characters that reorder or
/// break a line (embeddings, overrides, isolates, line and paragraph separators), with U+FFFD, so that remote text printed to a
/// terminal cannot move the cursor, change colours, clear the screen or rearrange itself.
pub fn display_safe(text: &str) -> Cow<'_, str> {
    let bad = |c: char| (c.is_control() && c != '\n' && c != '\t') || is_direction_or_break(c);
    if text.chars().any(bad) {
        Cow::Owned(
            text.chars()
                .map(|c| if bad(c) { '\u{FFFD}' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

/// The last six characters of a peer id: enough to tell peers apart on screen.
pub fn short_peer_id(peer: &libp2p::PeerId) -> String {
    let full = peer.to_base58();
    let start = full.len().saturating_sub(6);
    full[start..].to_owned()
}

/// Milliseconds since the Unix epoch, on native and in the browser.
pub fn now_unix_ms() -> u64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_are_repaired_not_rejected() {
        assert_eq!(clean_nick("  alice  ").as_deref(), Some("alice"));
        assert_eq!(clean_nick("bo\u{1b}[31mb").as_deref(), Some("bo[31mb"));
        assert_eq!(
            clean_nick(&"x".repeat(100)).map(|n| n.chars().count()),
            Some(32)
        );
        assert_eq!(clean_nick(" \n\t "), None);
    }

    #[test]
    fn terminal_escapes_are_neutralised() {
        assert_eq!(display_safe("hi\u{1b}[2J"), "hi\u{FFFD}[2J");
        assert_eq!(display_safe("two\nlines"), "two\nlines");
        assert_eq!(
            display_safe("a\u{202E}b"),
            "a\u{FFFD}b",
            "no right-to-left override"
        );
        assert_eq!(display_safe("a\rb"), "a\u{FFFD}b", "no carriage return");
    }

    #[test]
    fn a_remote_line_break_cannot_fake_a_second_message() {
        let shown = terminal_message("[12:00] mallory: ", "hi\n[12:01] alice: send me your key");
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with(CONTINUATION), "{shown}");
    }

    #[test]
    fn invisible_characters_are_taken_out_of_nicknames() {
        assert_eq!(clean_nick("al\u{200B}ice").as_deref(), Some("alice"));
        assert_eq!(clean_nick("\u{202E}ecila").as_deref(), Some("ecila"));
        assert_eq!(clean_nick("a  \u{3000} b").as_deref(), Some("a b"));
        assert_eq!(clean_nick("\u{200B}\u{FEFF}"), None);
    }

    #[test]
    fn default_nick_looks_like_user_and_four_digits() {
        let nick = random_nick();
        assert!(nick.starts_with("user-") && nick.len() == 9, "{nick}");
    }

    #[test]
    fn the_first_usable_nickname_wins_else_a_random_one() {
        let flag = Some(" \n ");
        let saved = Some(" ada ");
        assert_eq!(Nick::first_usable([flag, saved]).as_str(), "ada");
        assert_eq!(Nick::first_usable([Some("bob"), saved]).as_str(), "bob");
        let random = Nick::first_usable([None, Some("")]);
        assert!(random.as_str().starts_with("user-"), "{random}");
    }

    proptest::proptest! {
        /// Whatever a remote peer sends, it prints as one message: the first line after its
        /// prefix, every other line marked as a continuation, nothing that moves the cursor or
        /// reorders the line.
        #[test]
        fn a_printed_remote_message_is_one_visible_message(body in proptest::prelude::any::<String>()) {
            let prefix = "[12:00] alice (a1b2c3): ";
            let shown = terminal_message(prefix, &body);
            for (i, line) in shown.split('\n').enumerate() {
                if i == 0 {
                    proptest::prop_assert!(line.starts_with(prefix));
                } else {
                    proptest::prop_assert!(line.starts_with(CONTINUATION), "{:?}", line);
                }
                proptest::prop_assert!(!line
                    .chars()
                    .any(|c| (c.is_control() && c != '\t') || is_direction_or_break(c)));
            }
        }

        /// A cleaned nickname is short, trimmed, and holds nothing invisible.
        #[test]
        fn a_cleaned_nickname_holds_nothing_invisible(raw in proptest::prelude::any::<String>()) {
            if let Some(nick) = clean_nick(&raw) {
                proptest::prop_assert!(nick.chars().count() <= MAX_NICK_CHARS);
                proptest::prop_assert!(nick.trim() == nick && !nick.contains("  "));
                proptest::prop_assert!(!nick.chars().any(|c| c.is_control() || is_invisible(c)));
            }
        }
    }
}
