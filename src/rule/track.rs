//! The `track` dialect (Twitter v1.1): comma-separated phrases (OR) of space-separated terms
//! (AND). No quotes, no OR keyword, no negation: `"` and `-` are ordinary characters.

use super::{Limits, Node, RuleError, RuleErrorKind, Term};
use crate::normalize::{char_class, has_punctuation, CharClass, Tokens, UrlMode};
use std::fmt;

pub(super) fn parse_track(text: &str, limits: &Limits) -> Result<Node, RuleError> {
    if let Some((i, c)) = text.char_indices().find(|&(_, c)| char_class(c) == CharClass::Control) {
        return Err(RuleError::new(
            RuleErrorKind::ControlCharacter,
            text,
            i,
            format!("control character U+{:04X} is not allowed in a track value", c as u32),
        ));
    }
    if text.chars().all(|c| matches!(char_class(c), CharClass::Space | CharClass::Ignorable)) {
        return Err(RuleError::new(RuleErrorKind::Empty, text, 0, "empty track value".into()));
    }
    let mut phrases = Vec::new();
    let mut start = 0;
    for (n, piece) in text.split(',').enumerate() {
        let offset = start;
        start += piece.len() + 1;
        if n == limits.max_phrases {
            let count = text.split(',').count();
            return Err(RuleError::new(
                RuleErrorKind::TooManyPhrases { count, limit: limits.max_phrases },
                text,
                offset,
                format!("{count} phrases; the limit is {}", limits.max_phrases),
            ));
        }
        let trimmed = piece.trim_matches(|c| char_class(c) == CharClass::Space);
        let lead =
            piece.len() - piece.trim_start_matches(|c| char_class(c) == CharClass::Space).len();
        let at = offset + lead;
        if trimmed.len() > limits.max_phrase_bytes {
            return Err(RuleError::new(
                RuleErrorKind::PhraseTooLong {
                    bytes: trimmed.len(),
                    limit: limits.max_phrase_bytes,
                },
                text,
                at,
                format!(
                    "phrase {} ('{trimmed}') is {} bytes; the limit is {}",
                    n + 1,
                    trimmed.len(),
                    limits.max_phrase_bytes
                ),
            ));
        }
        let mut terms = Vec::new();
        for term in trimmed.split(|c| char_class(c) == CharClass::Space) {
            let term: String =
                term.chars().filter(|&c| char_class(c) != CharClass::Ignorable).collect();
            if term.is_empty() {
                continue;
            }
            let tokens = Tokens::of(&term, UrlMode::Keep);
            let t = if has_punctuation(&term) {
                Term::Token(tokens.raw_token_text(0).to_string())
            } else {
                Term::Keyword(tokens.word_texts().map(str::to_string).collect())
            };
            terms.push(Node::Term(t));
        }
        match terms.len() {
            0 => {
                return Err(RuleError::new(
                    RuleErrorKind::Empty,
                    text,
                    at,
                    format!("phrase {} is empty", n + 1),
                ))
            }
            1 => phrases.extend(terms),
            _ => phrases.push(Node::And(terms)),
        }
    }
    Ok(if phrases.len() == 1 { phrases.pop().expect("one phrase") } else { Node::Or(phrases) })
}

pub(super) fn print_track(node: &Node, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match node {
        Node::Or(children) => {
            let mut first = true;
            for c in children {
                if matches!(c, Node::Term(Term::Follow(_) | Term::Locations(_))) {
                    continue;
                }
                if !first {
                    f.write_str(",")?;
                }
                first = false;
                print_track(c, f)?;
            }
            Ok(())
        }
        Node::And(children) => {
            for (i, c) in children.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                print_track(c, f)?;
            }
            Ok(())
        }
        Node::Not(inner) => print_track(inner, f),
        Node::Term(Term::Keyword(words)) => {
            for w in words {
                f.write_str(w)?;
            }
            Ok(())
        }
        Node::Term(Term::Token(t)) => f.write_str(t),
        Node::Term(_) => Ok(()),
    }
}
