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

/// Cleans a nickname from a user or a peer: control characters removed, surrounding spaces
/// trimmed, cut to [`MAX_NICK_CHARS`] characters. `None` when nothing usable is left.
pub fn clean_nick(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(MAX_NICK_CHARS)
        .collect();
    let cleaned = cleaned.trim_end().to_owned();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// Replaces control characters other than newline and tab with U+FFFD, so that remote text
/// printed to a terminal cannot move the cursor, change colours or clear the screen.
pub fn display_safe(text: &str) -> Cow<'_, str> {
    let bad = |c: char| c.is_control() && c != '\n' && c != '\t';
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
}
