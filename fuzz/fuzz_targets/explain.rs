#![no_main]
//! Explain's verdict equals the compiled matcher's and the reference's, and explaining never
//! panics. Input: a rule (rule dialect, or track dialect after a leading `T`), a NUL byte,
//! then a message as JSON (or plain text when it is not JSON).

use libfuzzer_sys::fuzz_target;
use streamtrack::matcher::{Matcher, Scratch};
use streamtrack::rule::{Dialect, Parser};
use streamtrack::{explain, reference, Message};

fuzz_target!(|data: &[u8]| {
    let Ok(data) = std::str::from_utf8(data) else { return };
    let Some((rule, msg)) = data.split_once('\0') else { return };
    let (rule, dialect) = match rule.strip_prefix('T') {
        Some(r) => (r, Dialect::Track),
        None => (rule, Dialect::Rule),
    };
    let Ok(rule) = Parser::new().parse(rule, dialect) else { return };
    let msg = Message::from_json(msg).unwrap_or_else(|_| Message::new("1", msg));
    let e = explain::explain(&rule, &msg);
    let compiled = !Matcher::new([&rule]).find(&msg, &mut Scratch::new()).is_empty();
    assert_eq!(e.matched, compiled, "explain vs compiled: {rule} on {msg:?}");
    assert_eq!(e.matched, reference::matches(&rule, &msg), "explain vs reference");
    assert_eq!(e.tree.matched, e.matched);
    let _ = e.to_string();
});
