//! Small pieces shared by the commands: number formats, sizes, the dialect option.

/// `1234567` as `1,234,567`.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count such as `100k` or `1m` (also `2.5k`); `None` for anything else or zero.
pub fn parse_count(s: &str) -> Option<usize> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mul) = if let Some(n) = s.strip_suffix('k') {
        (n, 1_000.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 1_000_000.0)
    } else {
        (s.as_str(), 1.0)
    };
    num.parse::<f64>().ok().filter(|n| *n > 0.0).map(|n| (n * mul) as usize)
}

/// The `--dialect` option of the commands that read rules files.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum DialectArg {
    /// Twitter v1.1 `track` values.
    Track,
    /// PowerTrack / API v2 rules.
    Rule,
}

impl From<DialectArg> for streamtrack::Dialect {
    fn from(d: DialectArg) -> Self {
        match d {
            DialectArg::Track => streamtrack::Dialect::Track,
            DialectArg::Rule => streamtrack::Dialect::Rule,
        }
    }
}
