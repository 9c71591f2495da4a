//! The chat commands users send the bot (case insensitive): `track PHRASES`,
//! `untrack PHRASES`, `untrack all`, `tracks` / `tracking`, `off`, `on`, `status`,
//! `help [command]`.

use std::fmt;

/// One parsed chat command.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `track PHRASES`: add comma-separated phrases (the track dialect).
    Track {
        /// The phrases as written.
        phrases: String,
        /// Column (1-based, in characters) of the phrases in the message, for error replies.
        column: usize,
    },
    /// `untrack PHRASES`: remove phrases.
    Untrack {
        /// The phrases as written.
        phrases: String,
        /// Column of the phrases in the message.
        column: usize,
    },
    /// `untrack all`: remove every phrase.
    UntrackAll,
    /// `tracks` or `tracking`: list the phrases.
    Tracks,
    /// `off`: pause deliveries.
    Off,
    /// `on`: resume deliveries.
    On,
    /// `status`: counts and state.
    Status,
    /// `help [command]`.
    Help(Option<String>),
}

/// Why a chat message is not a command.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// The message is blank.
    Empty,
    /// The first word names no command.
    Unknown(String),
    /// The command needs an argument (`track`, `untrack`).
    MissingArgument(&'static str),
    /// The command takes no argument but got one.
    UnexpectedArgument(&'static str),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Empty => write!(f, "Say help for the commands."),
            CommandError::Unknown(w) => write!(
                f,
                "Unknown command '{w}'. Commands: track, untrack, tracks, off, on, status, help."
            ),
            CommandError::MissingArgument(c) => {
                write!(f, "'{c}' needs phrases, e.g. {c} nintendo,wii fit")
            }
            CommandError::UnexpectedArgument(c) => write!(f, "'{c}' takes no argument."),
        }
    }
}

impl std::error::Error for CommandError {}

/// Parses a chat message body into a command.
pub fn parse(body: &str) -> Result<Command, CommandError> {
    let body = body.trim_end();
    let lead = body.len() - body.trim_start().len();
    let rest = &body[lead..];
    if rest.is_empty() {
        return Err(CommandError::Empty);
    }
    let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let word = rest[..word_end].to_lowercase();
    let after = &rest[word_end..];
    let arg_lead = after.len() - after.trim_start().len();
    let arg = after.trim_start();
    let column = body[..lead + word_end + arg_lead].chars().count() + 1;
    let none = |c: &'static str, cmd: Command| {
        if arg.is_empty() {
            Ok(cmd)
        } else {
            Err(CommandError::UnexpectedArgument(c))
        }
    };
    match word.as_str() {
        "track" if arg.is_empty() => Err(CommandError::MissingArgument("track")),
        "track" => Ok(Command::Track { phrases: arg.to_string(), column }),
        "untrack" if arg.is_empty() => Err(CommandError::MissingArgument("untrack")),
        "untrack" if arg.eq_ignore_ascii_case("all") => Ok(Command::UntrackAll),
        "untrack" => Ok(Command::Untrack { phrases: arg.to_string(), column }),
        "tracks" => none("tracks", Command::Tracks),
        "tracking" => none("tracking", Command::Tracks),
        "off" => none("off", Command::Off),
        "on" => none("on", Command::On),
        "status" => none("status", Command::Status),
        "help" => Ok(Command::Help((!arg.is_empty()).then(|| arg.to_lowercase()))),
        _ => Err(CommandError::Unknown(rest[..word_end].to_string())),
    }
}

/// The reply to `help` (no argument) or `help COMMAND`.
pub fn help(topic: Option<&str>) -> String {
    match topic {
        None => "Commands: track PHRASES, untrack PHRASES, untrack all, tracks (or tracking), \
                 off, on, status, help COMMAND. Example: track nintendo,wii fit"
            .into(),
        Some("track") => "track PHRASES: comma-separated phrases; a post matches a phrase when \
                          it has all of the phrase's words (track nintendo,wii fit: posts with \
                          'nintendo', or with both 'wii' and 'fit'). At most 400 phrases, 60 \
                          bytes each. Each matching post comes once, however many phrases it \
                          matches."
            .into(),
        Some("untrack") => "untrack PHRASES: stop tracking these phrases; untrack all: stop \
                            tracking everything."
            .into(),
        Some("tracks") | Some("tracking") => "tracks (or tracking): the phrases you track.".into(),
        Some("off") | Some("on") => "off: pause deliveries (matches meanwhile are dropped and \
                                     counted in status); on: resume them."
            .into(),
        Some("status") => "status: how many phrases you track, whether deliveries are on, your \
                           presence as the bot sees it, and the posts delivered and dropped."
            .into(),
        Some("help") => "help COMMAND: what a command does.".into(),
        Some(other) => format!(
            "No command '{other}'. Commands: track, untrack, tracks, off, on, status, help."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_case_insensitive_and_keep_the_argument_column() {
        assert_eq!(
            parse("  TRACK nintendo,wii fit ").unwrap(),
            Command::Track { phrases: "nintendo,wii fit".into(), column: 9 }
        );
        assert_eq!(parse("Untrack ALL").unwrap(), Command::UntrackAll);
        assert_eq!(parse("tracking").unwrap(), Command::Tracks);
        assert_eq!(parse("Help track").unwrap(), Command::Help(Some("track".into())));
        assert_eq!(parse("status").unwrap(), Command::Status);
    }

    #[test]
    fn bad_commands_say_what_is_wrong() {
        assert_eq!(parse("frobnicate x"), Err(CommandError::Unknown("frobnicate".into())));
        assert_eq!(parse("track"), Err(CommandError::MissingArgument("track")));
        assert_eq!(parse("off now"), Err(CommandError::UnexpectedArgument("off")));
        assert_eq!(parse("   "), Err(CommandError::Empty));
        assert!(CommandError::Unknown("x".into()).to_string().starts_with("Unknown command 'x'"));
    }
}
