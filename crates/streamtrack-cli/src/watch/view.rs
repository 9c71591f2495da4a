//! The pure part of `streamtrack watch`: what the screen shows (rows, the detail view), the
//! keys, and the drawing with ratatui. No terminal and no engine here, so that every piece is
//! tested with ratatui's `TestBackend`.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;
use std::ops::Range;

/// How the rows are ordered (after the pinned ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    /// Messages per second over the last closed buckets, highest first.
    Rate,
    /// Burst score of the last closed bucket, highest first.
    Burst,
    /// By name.
    Name,
}

impl Sort {
    /// The next order of the `s` key.
    pub fn next(self) -> Sort {
        match self {
            Sort::Rate => Sort::Burst,
            Sort::Burst => Sort::Name,
            Sort::Name => Sort::Rate,
        }
    }
    /// Its name in the header.
    pub fn name(self) -> &'static str {
        match self {
            Sort::Rate => "rate",
            Sort::Burst => "burst",
            Sort::Name => "name",
        }
    }
}

/// The figures of one row (a rule, or a tag in the tag view), taken under the analytics lock.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RowData {
    /// The rule id or tag.
    pub name: String,
    /// Whether the user pinned it.
    pub pinned: bool,
    /// Matches per 1 s bucket, oldest first, the last one the current bucket.
    pub counts: Vec<u64>,
    /// Buckets (same indices as `counts`) where a burst started.
    pub marks: Vec<bool>,
    /// Matches over the buckets shown.
    pub total: u64,
    /// Messages per second over the last closed buckets.
    pub rate: f64,
    /// Positive and negative matched messages over the buckets shown.
    pub pos: u64,
    /// See `pos`.
    pub neg: u64,
    /// The burst score when the series is in a burst now.
    pub burst: Option<f64>,
    /// The text of the latest matched message.
    pub latest: Option<String>,
}

/// The header figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Header {
    /// Rows in all (rules, or tags).
    pub rows: usize,
    /// `"rules"` or `"tags"`.
    pub what: &'static str,
    /// Messages read from the input.
    pub read: u64,
    /// Messages that matched at least one rule (recorded by the analytics stage).
    pub matched: u64,
    /// Input lines skipped as not messages.
    pub bad: u64,
    /// Whether the input has ended.
    pub ended: bool,
    /// The current order.
    pub sort: Option<Sort>,
    /// The current time of the view (event time), ms since the epoch.
    pub now_ms: i64,
}

/// One message of the detail view.
#[derive(Clone, Debug, PartialEq)]
pub struct DetailMessage {
    /// Event time, ms since the epoch.
    pub time_ms: i64,
    /// Its reaction's compound score, when scored.
    pub compound: Option<f64>,
    /// The message text, raw (cleaned when drawn).
    pub text: String,
    /// Byte ranges of `text` that the rule matched (sorted, not overlapping).
    pub spans: Vec<Range<usize>>,
}

/// The detail view of one row: its recent messages, newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Detail {
    /// The rule id or tag.
    pub name: String,
    /// Messages kept for it in all (the ring of recent matched messages).
    pub kept: usize,
    /// Newest first (the first of them: as many as the screen shows).
    pub messages: Vec<DetailMessage>,
}

/// Which screen is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The rows.
    List,
    /// The recent messages of the row with this index (in the watch's row list), scrolled by
    /// `scroll` messages.
    Detail {
        /// The row.
        row: usize,
        /// Messages scrolled past.
        scroll: usize,
    },
}

/// What the keys change: order, pins, selection, screen.
#[derive(Clone, Debug)]
pub struct App {
    /// The order of the unpinned rows.
    pub sort: Sort,
    /// Pinned rows (indices in the watch's row list), in pin order.
    pub pinned: Vec<usize>,
    /// The selected row (an index in the watch's row list).
    pub selected: Option<usize>,
    /// The screen.
    pub mode: Mode,
    /// The rows as last shown, in screen order (the selection moves along it).
    pub order: Vec<usize>,
}

/// What a key asks of the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Redraw.
    Redraw,
    /// Restore the terminal and exit.
    Quit,
}

/// A key, as the loop passes it on (terminal-independent, for tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A character key.
    Char(char),
    /// Ctrl and a character.
    Ctrl(char),
    /// Arrow up.
    Up,
    /// Arrow down.
    Down,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Enter.
    Enter,
    /// Escape.
    Esc,
}

impl App {
    /// The start: sorted by rate, nothing pinned, the list shown.
    pub fn new() -> App {
        App {
            sort: Sort::Rate,
            pinned: Vec::new(),
            selected: None,
            mode: Mode::List,
            order: vec![],
        }
    }

    /// Handles one key.
    pub fn key(&mut self, key: Key) -> Action {
        match (self.mode, key) {
            (_, Key::Char('q') | Key::Ctrl('c')) => return Action::Quit,
            (Mode::List, Key::Char('s')) => self.sort = self.sort.next(),
            (Mode::List, Key::Char('p')) => {
                if let Some(sel) = self.selected {
                    match self.pinned.iter().position(|&p| p == sel) {
                        Some(i) => {
                            self.pinned.remove(i);
                        }
                        None => self.pinned.push(sel),
                    }
                }
            }
            (Mode::List, Key::Up | Key::Char('k')) => self.step(-1),
            (Mode::List, Key::Down | Key::Char('j')) => self.step(1),
            (Mode::List, Key::PageUp) => self.step(-10),
            (Mode::List, Key::PageDown) => self.step(10),
            (Mode::List, Key::Enter) => {
                if let Some(row) = self.selected.or_else(|| self.order.first().copied()) {
                    self.selected = Some(row);
                    self.mode = Mode::Detail { row, scroll: 0 };
                }
            }
            (Mode::Detail { .. }, Key::Esc | Key::Char('h')) => self.mode = Mode::List,
            (Mode::Detail { row, scroll }, Key::Down | Key::Char('j')) => {
                self.mode = Mode::Detail { row, scroll: scroll + 1 }
            }
            (Mode::Detail { row, scroll }, Key::Up | Key::Char('k')) => {
                self.mode = Mode::Detail { row, scroll: scroll.saturating_sub(1) }
            }
            _ => {}
        }
        Action::Redraw
    }

    /// Moves the selection `by` rows along the order last shown.
    fn step(&mut self, by: isize) {
        if self.order.is_empty() {
            return;
        }
        let at = self.selected.and_then(|s| self.order.iter().position(|&r| r == s));
        let next = match at {
            None => 0,
            Some(i) => (i as isize + by).clamp(0, self.order.len() as isize - 1) as usize,
        };
        self.selected = Some(self.order[next]);
    }
}

impl Default for App {
    fn default() -> Self {
        App::new()
    }
}

/// Untrusted text made safe to draw: control characters (escape sequences start with one)
/// and bidirectional overrides/isolates go; line breaks and tabs become spaces.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if matches!(c, '\n' | '\r' | '\t') { ' ' } else { c })
        .filter(|&c| !c.is_control() && !is_bidi_control(c))
        .collect()
}

/// Characters that reorder text on screen (Trojan Source, CVE-2021-42574) or are invisible
/// marks that can hide it.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// The sparkline of counts, one character per bucket, scaled to the largest; empty buckets
/// are blank.
pub fn sparkline(counts: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = counts.iter().copied().max().unwrap_or(0);
    counts
        .iter()
        .map(|&c| {
            if c == 0 || max == 0 {
                ' '
            } else if max == 1 {
                BARS[7]
            } else {
                // 1..=max onto 0..=7.
                BARS[((c - 1) * 7 / (max - 1)).min(7) as usize]
            }
        })
        .collect()
}

/// The reaction balance as ten cells: `+` for the positive share, `-` for the negative one
/// (blank without any scored positive or negative message).
pub fn balance(pos: u64, neg: u64) -> String {
    let all = pos + neg;
    if all == 0 {
        return " ".repeat(10);
    }
    let p = ((pos * 10 + all / 2) / all) as usize;
    format!("{}{}", "+".repeat(p), "-".repeat(10 - p))
}

/// `HH:MM:SS` (UTC) of a time in ms since the epoch.
pub fn clock(ms: i64) -> String {
    let s = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `s` cut to at most `n` characters (with `…` when cut).
fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Columns left of the sparkline: selection mark, pin mark, name.
pub const NAME_COLS: usize = 24;
/// Columns right of the sparkline on the first line of a row.
pub const STATS_COLS: usize = 56;

/// How many buckets the sparkline of a screen `width` columns wide shows.
pub fn spark_width(width: u16) -> usize {
    (width as usize).saturating_sub(NAME_COLS + STATS_COLS + 1).clamp(10, 600)
}

/// Rows that fit in a list screen `height` lines high (two lines per row, three for the
/// header and the footer).
pub fn rows_fitting(height: u16) -> usize {
    (height as usize).saturating_sub(3) / 2
}

/// The two lines of a row.
pub fn row_lines(row: &RowData, selected: bool) -> [Line<'static>; 2] {
    let spark = sparkline(&row.counts);
    let marks: String = row.marks.iter().map(|&m| if m { '^' } else { ' ' }).collect();
    let head = format!(
        "{}{} {:<w$}",
        if selected { '>' } else { ' ' },
        if row.pinned { '*' } else { ' ' },
        cut(&clean(&row.name), NAME_COLS - 4),
        w = NAME_COLS - 4
    );
    let stats = format!(
        " {:>7.1}/s {:>7} +{:<5} -{:<5} {} {}",
        row.rate,
        row.total,
        row.pos,
        row.neg,
        balance(row.pos, row.neg),
        row.burst.map_or(String::new(), |s| format!("BURST {s:.2}")),
    );
    let style =
        if selected { Style::default().add_modifier(Modifier::BOLD) } else { Style::default() };
    let first = Line::from(vec![
        Span::styled(format!("{head} "), style),
        Span::raw(spark),
        Span::styled(stats, style),
    ]);
    let latest = row.latest.as_deref().map(clean).unwrap_or_default();
    let second = Line::from(vec![
        Span::raw(" ".repeat(NAME_COLS)),
        Span::raw(marks),
        Span::raw(format!(" {}", if latest.is_empty() { String::new() } else { latest })),
    ]);
    [first, second]
}

/// The header line.
pub fn header_line(h: &Header) -> Line<'static> {
    let state = if h.ended { "input ended" } else { "reading" };
    Line::from(format!(
        "streamtrack watch: {} {}, {} read, {} matched{}, {state}, {} UTC | sort: {} \
         | s sort, p pin, j/k, Enter, q quit",
        h.rows,
        h.what,
        h.read,
        h.matched,
        if h.bad > 0 { format!(", {} bad lines", h.bad) } else { String::new() },
        clock(h.now_ms),
        h.sort.map_or("-", Sort::name),
    ))
    .style(Style::default().add_modifier(Modifier::REVERSED))
}

/// Draws the list screen.
pub fn draw_list(f: &mut Frame<'_>, header: &Header, rows: &[RowData], selected: Option<usize>) {
    let area = f.area();
    f.render_widget(header_line(header), Rect { height: 1, ..area });
    let spark = spark_width(area.width);
    let legend = format!(
        "{:<w$} {:<spark$} {:>9} {:>7} {:<13} {:<10}",
        if header.what == "tags" { "  tag" } else { "  rule" },
        format!("matches per second, last {spark} s"),
        "rate",
        "total",
        "reactions",
        "balance",
        w = NAME_COLS - 1,
    );
    if area.height > 1 {
        f.render_widget(Line::from(legend), Rect { y: area.y + 1, height: 1, ..area });
    }
    for (i, row) in rows.iter().enumerate() {
        let y = area.y + 2 + 2 * i as u16;
        if y + 1 >= area.y + area.height {
            break;
        }
        let [a, b] = row_lines(row, selected == Some(i));
        f.render_widget(a, Rect { y, height: 1, ..area });
        f.render_widget(b, Rect { y: y + 1, height: 1, ..area });
    }
    if rows.is_empty() && area.height > 3 {
        f.render_widget(
            Line::from("  (no rule has matched yet)"),
            Rect { y: area.y + 2, height: 1, ..area },
        );
    }
}

/// The segments of `text`: (cleaned text, whether matched), cut at the matched byte ranges.
pub fn segments(text: &str, spans: &[Range<usize>]) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut at = 0;
    for r in spans {
        if r.start < at || r.end > text.len() {
            continue;
        }
        let (Some(before), Some(hit)) = (text.get(at..r.start), text.get(r.clone())) else {
            continue;
        };
        if !before.is_empty() {
            out.push((clean(before), false));
        }
        out.push((clean(hit), true));
        at = r.end;
    }
    if let Some(rest) = text.get(at..) {
        if !rest.is_empty() {
            out.push((clean(rest), false));
        }
    }
    out
}

/// Draws the detail screen: the row's recent messages, newest first, matched terms
/// highlighted (reversed and bold).
pub fn draw_detail(f: &mut Frame<'_>, header: &Header, d: &Detail, scroll: usize) {
    let area = f.area();
    f.render_widget(header_line(header), Rect { height: 1, ..area });
    let title = format!(
        "{}: {} recent messages, newest first | Esc back, j/k scroll, q quit",
        cut(&clean(&d.name), 40),
        d.kept
    );
    if area.height > 1 {
        f.render_widget(
            Line::from(title).style(Style::default().add_modifier(Modifier::BOLD)),
            Rect { y: area.y + 1, height: 1, ..area },
        );
    }
    let hit = Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD);
    for (i, m) in d.messages.iter().skip(scroll).enumerate() {
        let y = area.y + 2 + i as u16;
        if y >= area.y + area.height {
            break;
        }
        let mut spans = vec![Span::raw(format!(
            "{} {:>6} ",
            clock(m.time_ms),
            m.compound.map_or("-".to_string(), |c| format!("{c:+.2}"))
        ))];
        for (text, matched) in segments(&m.text, &m.spans) {
            spans.push(if matched { Span::styled(text, hit) } else { Span::raw(text) });
        }
        f.render_widget(Line::from(spans), Rect { y, height: 1, ..area });
    }
    if d.messages.is_empty() && area.height > 2 {
        f.render_widget(
            Line::from("  (no message kept for it)"),
            Rect { y: area.y + 2, height: 1, ..area },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn screen(t: &Terminal<TestBackend>) -> Vec<String> {
        let b = t.backend().buffer();
        (0..b.area.height)
            .map(|y| (0..b.area.width).map(|x| b[(x, y)].symbol().to_string()).collect())
            .collect()
    }

    fn row(name: &str) -> RowData {
        RowData {
            name: name.into(),
            counts: vec![0, 1, 4, 2, 0, 8],
            marks: vec![false, false, true, false, false, false],
            total: 15,
            rate: 2.5,
            pos: 3,
            neg: 1,
            burst: Some(0.73),
            latest: Some("the launch went well".into()),
            ..RowData::default()
        }
    }

    #[test]
    fn clean_strips_controls_and_bidi_overrides() {
        let evil = "ok\u{1b}[2J\u{1b}]0;title\u{7}\u{202E}txt.exe\u{2066}x\u{2069}\nend\u{0}";
        let c = clean(evil);
        assert_eq!(c, "ok[2J]0;titletxt.exex end");
        assert!(!c.chars().any(|ch| ch.is_control()));
        // Plain text, including emoji and other scripts, is kept.
        assert_eq!(clean("día 🚀 東京"), "día 🚀 東京");
    }

    #[test]
    fn sparkline_scales_to_the_largest_bucket() {
        assert_eq!(sparkline(&[0, 1, 4, 8]), " ▁▄█");
        assert_eq!(sparkline(&[0, 0]), "  ");
        assert_eq!(sparkline(&[5]), "█");
    }

    #[test]
    fn balance_shows_the_positive_share() {
        assert_eq!(balance(3, 1), "++++++++--");
        assert_eq!(balance(0, 2), "----------");
        assert_eq!(balance(0, 0), "          ");
    }

    #[test]
    fn clock_formats_utc_time_of_day() {
        assert_eq!(clock(1_700_000_000_000), "22:13:20");
        assert_eq!(clock(-1000), "23:59:59");
    }

    #[test]
    fn list_shows_rows_with_sparkline_marks_and_latest_message() {
        let mut t = Terminal::new(TestBackend::new(120, 10)).unwrap();
        let h = Header {
            rows: 2,
            what: "rules",
            read: 40,
            matched: 15,
            sort: Some(Sort::Rate),
            ..Header::default()
        };
        let mut second = row("quiet");
        second.burst = None;
        second.pinned = true;
        t.draw(|f| draw_list(f, &h, &[row("launch"), second], Some(0))).unwrap();
        let s = screen(&t);
        assert!(s[0].contains("2 rules, 40 read, 15 matched"), "{s:#?}");
        assert!(s[0].contains("sort: rate"), "{s:#?}");
        assert!(s[2].starts_with(">  launch"), "{s:#?}");
        assert!(s[2].contains(" ▁▄▂ █"), "{s:#?}");
        assert!(s[2].contains("2.5/s"), "{s:#?}");
        assert!(s[2].contains("+3") && s[2].contains("-1"), "{s:#?}");
        assert!(s[2].contains("BURST 0.73"), "{s:#?}");
        // The burst mark sits under its bucket.
        let col = |line: &str, pat: &str| line[..line.find(pat).unwrap()].chars().count();
        assert_eq!(col(&s[2], " ▁▄▂ █"), NAME_COLS);
        assert_eq!(col(&s[3], "^"), NAME_COLS + 2, "{s:#?}");
        assert!(s[3].contains("the launch went well"), "{s:#?}");
        assert!(s[4].starts_with(" * quiet"), "{s:#?}");
        assert!(!s[4].contains("BURST"), "{s:#?}");
    }

    #[test]
    fn the_header_keys_fit_a_130_column_terminal() {
        let mut t = Terminal::new(TestBackend::new(130, 3)).unwrap();
        let h = Header {
            rows: 3,
            what: "rules",
            read: 310,
            matched: 310,
            ended: true,
            sort: Some(Sort::Rate),
            ..Header::default()
        };
        t.draw(|f| draw_list(f, &h, &[], None)).unwrap();
        let s = screen(&t);
        assert!(s[0].trim_end().ends_with("q quit"), "{s:#?}");
    }

    #[test]
    fn tag_view_names_its_column_tag() {
        let mut t = Terminal::new(TestBackend::new(100, 4)).unwrap();
        let h = Header { rows: 1, what: "tags", ..Header::default() };
        t.draw(|f| draw_list(f, &h, &[row("space")], None)).unwrap();
        let s = screen(&t);
        assert!(s[0].contains("1 tags"), "{s:#?}");
        assert!(s[1].starts_with("  tag "), "{s:#?}");
    }

    #[test]
    fn untrusted_text_is_drawn_without_controls() {
        let mut t = Terminal::new(TestBackend::new(100, 6)).unwrap();
        let mut r = row("r\u{1b}[31mred");
        r.latest = Some("hi\u{1b}[2J\u{202E}gnp.exe".into());
        t.draw(|f| draw_list(f, &Header::default(), &[r], None)).unwrap();
        let s = screen(&t).join("\n");
        assert!(!s.chars().any(|c| c.is_control() && c != '\n'), "{s:?}");
        assert!(!s.contains('\u{202E}'), "{s:?}");
        assert!(s.contains("r[31mred") && s.contains("hi[2Jgnp.exe"), "{s}");
    }

    #[test]
    fn detail_lists_newest_first_with_matched_terms_highlighted() {
        let mut t = Terminal::new(TestBackend::new(80, 6)).unwrap();
        let d = Detail {
            name: "launch".into(),
            kept: 2,
            messages: vec![
                DetailMessage {
                    time_ms: 1_700_000_001_000,
                    compound: Some(0.62),
                    text: "the launch\u{202E} went well".into(),
                    spans: std::iter::once(4..10).collect(),
                },
                DetailMessage {
                    time_ms: 1_700_000_000_000,
                    compound: None,
                    text: "old".into(),
                    spans: vec![],
                },
            ],
        };
        t.draw(|f| draw_detail(f, &Header::default(), &d, 0)).unwrap();
        let s = screen(&t);
        assert!(s[1].starts_with("launch: 2 recent messages, newest first"), "{s:#?}");
        assert!(s[2].starts_with("22:13:21  +0.62 the launch went well"), "{s:#?}");
        assert!(s[3].starts_with("22:13:20      - old"), "{s:#?}");
        let b = t.backend().buffer();
        let x0 = s[2].find("launch").unwrap() as u16;
        let hl = Modifier::REVERSED | Modifier::BOLD;
        assert!((x0..x0 + 6).all(|x| b[(x, 2)].modifier.contains(hl)));
        assert!(!b[(x0 - 1, 2)].modifier.contains(Modifier::REVERSED));
        assert!(!b[(x0 + 7, 2)].modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn segments_skip_bad_spans() {
        let s = segments("aé b", &[1..2, 3..5, 9..12]);
        // 1..2 is inside `é`: skipped; 3..5 is " b" (é is 2 bytes).
        assert_eq!(s, vec![("aé".to_string(), false), (" b".to_string(), true)]);
    }

    #[test]
    fn keys_sort_pin_select_open_and_go_back() {
        let mut a = App::new();
        a.order = vec![4, 2, 7];
        assert_eq!(a.key(Key::Char('s')), Action::Redraw);
        assert_eq!(a.sort, Sort::Burst);
        a.key(Key::Char('j'));
        assert_eq!(a.selected, Some(4));
        a.key(Key::Down);
        a.key(Key::Down);
        a.key(Key::Down);
        assert_eq!(a.selected, Some(7));
        a.key(Key::Char('k'));
        assert_eq!(a.selected, Some(2));
        a.key(Key::Char('p'));
        assert_eq!(a.pinned, vec![2]);
        a.key(Key::Enter);
        assert_eq!(a.mode, Mode::Detail { row: 2, scroll: 0 });
        a.key(Key::Char('p'));
        assert_eq!(a.pinned, vec![2], "p does nothing in the detail view");
        a.key(Key::Esc);
        assert_eq!(a.mode, Mode::List);
        a.key(Key::Char('p'));
        assert!(a.pinned.is_empty());
        assert_eq!(a.key(Key::Char('q')), Action::Quit);
        assert_eq!(a.key(Key::Ctrl('c')), Action::Quit);
    }
}
