//! Rule syntax errors.

use std::fmt;

/// What is wrong with a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleErrorKind {
    /// The rule (or a track value) is empty or only white space.
    Empty,
    /// A `(` without its `)`, or a `)` without its `(`.
    UnbalancedParen,
    /// A `"` without its closing `"`.
    UnbalancedQuote,
    /// `()`.
    EmptyGroup,
    /// `OR` without an operand on one side.
    MissingOperand,
    /// The rule can match nothing by itself: only negations, or only `has:`/`is:`/`lang:`/
    /// `sample:`, or an OR with such a branch.
    NotAnchored,
    /// A negation directly inside an OR (`apple OR -ipad`).
    NegatedOr,
    /// A negated group (`-(a b)`), or a negated negation.
    NegatedGroup,
    /// `name:` where `name` is not a supported operator.
    UnknownOperator(String),
    /// An operator with no value (`from:`).
    MissingValue,
    /// An operator value that is not allowed (`has:pictures`, `sample:0`, malformed geo).
    InvalidValue,
    /// A proximity `~N` beyond the limit, or `~` without a number.
    InvalidProximity,
    /// A keyword or phrase with no word in it (`!!!`, `""`).
    NoWord,
    /// A control character in the rule.
    ControlCharacter,
    /// The rule is longer than the configured limit (code points).
    TooLong {
        /// The rule's length in code points.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// Parentheses nested deeper than the configured limit.
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// A track phrase longer than the configured limit (UTF-8 bytes).
    PhraseTooLong {
        /// The phrase's length in bytes.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// More track phrases than the configured limit.
    TooManyPhrases {
        /// The number of phrases.
        count: usize,
        /// The limit.
        limit: usize,
    },
}

/// A rule that could not be parsed: what is wrong, and where.
///
/// Displays as `column C: message`; [`RuleError::with_rule_number`] prefixes the rule's number,
/// e.g. `rule 17, column 9: unbalanced '(' opened here`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    kind: RuleErrorKind,
    offset: usize,
    column: usize,
    message: String,
    rule: Option<usize>,
}

impl RuleError {
    pub(crate) fn new(kind: RuleErrorKind, text: &str, offset: usize, message: String) -> Self {
        let offset = offset.min(text.len());
        let column = text.get(..offset).map_or(offset, |s| s.chars().count()) + 1;
        RuleError { kind, offset, column, message, rule: None }
    }

    /// What is wrong.
    pub fn kind(&self) -> &RuleErrorKind {
        &self.kind
    }

    /// Byte offset in the rule text where the problem is.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// 1-based column (in code points) of the problem.
    pub fn column(&self) -> usize {
        self.column
    }

    /// The description of the problem, without position.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error, reported as belonging to rule number `n` (1-based, e.g. a line number).
    pub fn with_rule_number(mut self, n: usize) -> Self {
        self.rule = Some(n);
        self
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.rule {
            write!(f, "rule {n}, ")?;
        }
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for RuleError {}
