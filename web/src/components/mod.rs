//! The page's components, one file each. Each reads the [`Chat`] state from context and calls
//! the actions in [`crate::actions`]; `data-testid` marks what the end-to-end tests touch.
//!
//! | file | draws |
//! | --- | --- |
//! | [`status_bar`] | connection state, our peer id and nickname |
//! | [`room_list`] | our rooms with unread counts; join, switch, leave |
//! | [`relay_panel`] | a pasted relay address |
//! | [`messages`] | the current room's messages and notices |
//! | [`composer`] | the message input |
//! | [`members`] | the current room's members, with a ✉ button each |
//! | [`direct_messages`] | direct messages with their delivery state, and the DM input |

mod composer;
mod direct_messages;
mod members;
mod messages;
mod relay_panel;
mod room_list;
mod status_bar;

use leptos::prelude::*;

pub use composer::Composer;
pub use direct_messages::DirectMessages;
pub use members::Members;
pub use messages::Messages;
pub use relay_panel::RelayPanel;
pub use room_list::RoomList;
pub use status_bar::StatusBar;

use crate::state::Chat;

fn chat() -> Chat {
    expect_context::<Chat>()
}

fn on_enter(ev: &web_sys::KeyboardEvent) -> bool {
    ev.key() == "Enter" && !ev.shift_key()
}
