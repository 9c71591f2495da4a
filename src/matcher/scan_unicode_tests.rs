//! Issue 20: the non-ASCII scanner ([`scan_unicode`], URL prefixes blanked by
//! [`blank_url_prefixes_unicode`]) gives exactly the words and no-space runs of the full
//! tokenizer (`Tokens` with `UrlMode::Canonicalize`), the contract; and so does
//! `MessageWords::field`, which falls back to the tokenizer where the scanner declines.

use super::*;
use crate::matcher::prepare::MessageWords;
use crate::normalize::{Tokens, UrlMode};
use proptest::prelude::*;
use proptest::sample::select;

/// Words and no-space runs, as texts.
type WordsAndRuns = (Vec<String>, Vec<String>);

/// What `scan_unicode` finds (checking each hash), or `None` where it declines (checking
/// that it left everything as it was).
pub(super) fn scanned(text: &str) -> Option<WordsAndRuns> {
    let h = WordHasher::with_seed(3, 4);
    let (mut buf, mut words, mut runs) = (b"x".to_vec(), vec![(0, 0, 0)], vec![(0, 0)]);
    let mut scratch = UnicodeScratch { non_ascii_after_slash_or_dot: true, ..Default::default() };
    if !scan_unicode(text, &mut buf, &h, &mut words, &mut runs, &mut scratch) {
        assert_eq!((buf.len(), words.len(), runs.len()), (1, 1, 1), "left as it was");
        return None;
    }
    // What `MessageWords::fill` skips the mark check on: never `false` where a non-ASCII
    // character follows a `/` or a `.`.
    if non_ascii_after_slash_or_dot(text) {
        assert!(scratch.non_ascii_after_slash_or_dot, "non-ASCII after `/` or `.` in {text:?}");
    }
    Some(found(&h, &buf, &words[1..], &runs[1..]))
}

/// The texts of the words and runs a scanner found in `buf`, each word's hash checked.
fn found(
    h: &WordHasher,
    buf: &[u8],
    words: &[(u64, u32, u32)],
    runs: &[(u32, u32)],
) -> WordsAndRuns {
    let text_of = |a: u32, b: u32| String::from_utf8(buf[a as usize..b as usize].to_vec());
    let mut out = Vec::new();
    for &(hash, a, b) in words {
        assert_eq!(hash, h.hash(&buf[a as usize..b as usize]), "hash of a word");
        out.push(text_of(a, b).expect("UTF-8 words"));
    }
    let runs = runs.iter().map(|&(a, b)| text_of(a, b).expect("UTF-8 runs")).collect();
    (out, runs)
}

/// What `scan_mixed` finds (checking each hash), or `None` where it declines (checking
/// that it left everything as it was).
fn mixed_scanned(text: &str) -> Option<WordsAndRuns> {
    let h = WordHasher::with_seed(3, 4);
    let (mut buf, mut words, mut runs) = (b"x".to_vec(), vec![(0, 0, 0)], vec![(0, 0)]);
    let mut scratch = UnicodeScratch::default();
    let Some(noticed) =
        scan_mixed(text, &mut buf, &h, &[0; 8], &mut words, &mut runs, &mut scratch)
    else {
        assert_eq!((buf.len(), words.len(), runs.len()), (1, 1, 1), "left as it was");
        return None;
    };
    assert_eq!(noticed.sigil, text.contains(['#', '@', '$']), "sigils of {text:?}");
    Some(found(&h, &buf, &words[1..], &runs[1..]))
}

/// The definition of `UnicodeScratch::non_ascii_after_slash_or_dot`.
fn non_ascii_after_slash_or_dot(text: &str) -> bool {
    text.as_bytes().windows(2).any(|w| matches!(w[0], b'/' | b'.') && w[1] >= 0x80)
}

/// The non-ASCII scanner says whether a non-ASCII character follows a `/` or a `.` (where
/// `MessageWords::fill` looks for a URL whose body begins with a combining mark), exactly
/// when its first pass takes the text (no URL prefix), conservatively (`true`) otherwise.
/// Fails if the scanner misses such a place or if the flag is never cleared.
#[test]
fn the_scanner_notes_non_ascii_after_a_slash_or_a_dot() {
    let exact = [
        ("é a/b c.d", false),
        ("a/é", true),
        ("a.é", true),
        ("end.😭", true),
        ("x.com/Ж é", true),
        ("abcdefghijklmnopqrstuvwxyz0123456789/é", true),
        ("abcdefghijklmnopqrstuvwxyz0123456789.東京", true),
        ("abcdefghijklmnopqrstuvwxyz0123456789 é/x", false),
        ("é/ é. /é", true),
        ("/é", true),
        ("é", false),
        ("😭/😭", true),
        ("😭 / 😭", false),
    ];
    for (text, want) in exact {
        assert_eq!(non_ascii_after_slash_or_dot(text), want, "{text:?}");
        let h = WordHasher::with_seed(3, 4);
        let (mut buf, mut words, mut runs) = (Vec::new(), Vec::new(), Vec::new());
        let mut scratch =
            UnicodeScratch { non_ascii_after_slash_or_dot: !want, ..Default::default() };
        assert!(scan_unicode(text, &mut buf, &h, &mut words, &mut runs, &mut scratch), "{text:?}");
        assert_eq!(scratch.non_ascii_after_slash_or_dot, want, "{text:?}");
    }
    // A URL prefix: the first pass stops there, and the flag stays as the caller set it.
    let h = WordHasher::with_seed(3, 4);
    let (mut buf, mut words, mut runs) = (Vec::new(), Vec::new(), Vec::new());
    let mut scratch = UnicodeScratch { non_ascii_after_slash_or_dot: true, ..Default::default() };
    assert!(scan_unicode("é http://x y", &mut buf, &h, &mut words, &mut runs, &mut scratch));
    assert!(scratch.non_ascii_after_slash_or_dot);
}

/// What `MessageWords::field` finds, whichever path it takes.
fn field(words: &mut MessageWords, text: &str) -> WordsAndRuns {
    let h = WordHasher::with_seed(3, 4);
    words.bytes.clear();
    words.words.clear();
    words.runs.clear();
    words.field(text, &h, &[0; 8]);
    let text_of = |a: u32, b: u32| {
        String::from_utf8(words.bytes[a as usize..b as usize].to_vec()).expect("UTF-8")
    };
    let found = words.words.iter().map(|&(_, a, b)| text_of(a, b)).collect();
    let runs = words.runs.iter().map(|&(a, b)| text_of(a, b)).collect();
    (found, runs)
}

/// The contract: the full tokenizer's words and no-space runs.
fn tokenizer(text: &str) -> WordsAndRuns {
    let t = Tokens::of(text, UrlMode::Canonicalize);
    let (mut words, mut runs) = (Vec::new(), Vec::new());
    for (i, w) in t.words().iter().enumerate() {
        let list = if w.no_space { &mut runs } else { &mut words };
        list.push(t.word_text(i).to_string());
    }
    (words, runs)
}

/// The normalised text a phrase is looked for in, built without the full view where the
/// message allows (`Prepared::simple_text`), or `None`; checked against the full view (one
/// field, that text).
fn simple_text(text: &str) -> Option<String> {
    let msg = crate::Message::new("1", text);
    let mut prepared = crate::matcher::prepare::Prepared::default();
    let simple = prepared.simple_text(&msg)?.to_owned();
    let fields = prepared.get(&msg).fields();
    assert_eq!(fields.len(), 1, "one field in {text:?}");
    assert_eq!(simple, fields[0].tokens.text(), "normalised text of {text:?}");
    Some(simple)
}

/// Checks `text` all ways; returns whether the per-character scanner took it.
fn check(text: &str) -> bool {
    simple_text(text);
    let want = tokenizer(text);
    if let Some(found) = mixed_scanned(text) {
        assert_eq!(found, want, "scan_mixed of {text:?}");
    }
    assert_eq!(field(&mut MessageWords::default(), text), want, "field of {text:?}");
    match scanned(text) {
        Some(found) => {
            assert_eq!(found, want, "scan_unicode of {text:?}");
            true
        }
        None => false,
    }
}

/// URL prefixes in non-ASCII text: the cases the scanner must take (it used to hand every
/// one of them to the tokenizer), each equal to the tokenizer.
#[test]
fn urls_in_non_ascii_text_are_blanked_like_the_tokenizer_removes_them() {
    for s in [
        "café http://x.com",
        "😭🇺🇸👨\u{200d}👩\u{200d}👧 night https://t.co/DeQ7q1nge6 soufflé",
        "東京 http://例え.jp/ü HTTPS://WWW.Bücher.DE/Straße",
        "«http://www.bücher.de» ok, “www.Ünï.com” (ftp://x.y/é)",
        "x\u{a0}www.y.com é x\u{3000}http://y.z ü x\u{2003}https://www.q.r",
        "é://x éhttp://x ａhttp://x ｗｗｗ．x.com ＨＴＴＰ://y",
        "www.www.x é, a.b://c ä, http://x http://y ö, ::// ü, http:// é, www. é",
        "h\u{200b}ttp://x.com é \u{200b}http://y.com \u{ad}www.z.com «\u{200d}www.q.com",
        "Σ http://ΣΑΣ.gr/ς www.ΌΣΟΣ.gr ﬁ http://ﬁ.com/ﬁ",
        "مرحبا http://مثال.com שלום www.דוגמה.co.il \u{200f}http://x.com\u{200f}",
        "emoji👍🏽http://x.com 👍🏽https://y.com 1\u{fe0f}\u{20e3} www.x.com",
        "a.b.c...d: e:f ww.w w.ww. é x.:// :/ .www. é",
    ] {
        assert!(check(s), "the scanner should take {s:?}");
    }
    // Ignorables inside a prefix: the tokenizer drops them before it looks for one, so
    // `www\u{200b}.` and `http:\u{ad}//` are URL prefixes (the byte checks see neither).
    for s in [
        "www\u{200b}.example.com é",
        "http:\u{200b}//x.com é",
        "h\u{200b}ttp\u{ad}:/\u{2060}/www\u{200d}.x.com é",
        "ww\u{200b}w.x 東京",
        "w\u{200b}ww.x é W\u{2060}WW.y",
        "http:/\u{ad}/x é",
        // Ignorables elsewhere (emoji sequences) with `.` and `:` about: no prefix.
        "❤\u{fe0f} 👨\u{200d}👩\u{200d}👧 a.b: c... x:y",
    ] {
        assert!(check(s), "the scanner should take {s:?}");
    }
    // Combining marks right after a removed prefix attach to the leading punctuation (or
    // start the token): the scanner declines, the tokenizer decides.
    for s in ["http://\u{301}x é", "(http://\u{301}x é", "é www.\u{300}y"] {
        check(s);
    }
}

/// The mixed scanner takes posts whose non-ASCII characters are letters (accented, Cyrillic,
/// Greek, folded in place; CJK and Thai in no-space runs), marks after letters, emoji (a word
/// each, also between letters and across the 64-byte blocks' edges), separators and URL
/// prefixes, as the tokenizer words them; and it declines what needs more (foldings of another
/// length, a mark not after a letter, an NFC-unstable character, an ignorable inside a word, a
/// run or a URL prefix). Fails if it declined every post (the path unused) or took one wrongly.
#[test]
fn the_mixed_scanner_takes_letters_marks_emoji_and_separators_in_place() {
    let pad = |k: usize| "a".repeat(k);
    let mut taken = vec![
        "café 😂 Київ МИР ΣΊΣΥΦΟΣ soufflé… “quoted” — x".to_string(),
        "😎😎🤔 feed😂you a😂b 🍕👨\u{200d}👩\u{200d}👧 x❤\u{fe0f} y".to_string(),
        "#tag @user $x 🇺🇸 ok".to_string(),
        "Crème brûlée, naïve résumé: Ångström!".to_string(),
        "\u{a0}x\u{3000}y\u{2003}z\u{85}".to_string(),
        "Ж".to_string(),
        "😭".to_string(),
        "ＡＢＣ ｗｗｗ".to_string(),
        "é http://x.com «www.Bücher.de» x\u{a0}https://www.q.r www.www.x".to_string(),
        "😭 https://t.co/DeQ7q1nge6 😂 http://ΣΑΣ.gr/ς".to_string(),
        "東京 tower 北京😂上海, ภาษา こんにちはworld 日本語 https://t.co/x 上海".to_string(),
        "a.b: c... x:y é".to_string(),
    ];
    // Every position of an emoji, an accented letter and a Cyrillic word around the 64- and
    // 128-byte edges, between letters and after a space.
    if cfg!(miri) {
        // Under Miri, which runs this test for the scanners' `unsafe` (SSE2, AVX2), a few
        // texts with characters across the block's edge, against the tokenizer only.
        for text in [
            taken[0].clone(),
            format!("{}😂{}", pad(62), pad(3)),
            format!("{}東京 é{}", pad(63), pad(70)),
        ] {
            assert_eq!(mixed_scanned(&text), Some(tokenizer(&text)), "{text:?}");
        }
        return;
    }
    taken.extend(around_block_edges(&["😂", "é", "Ж", "👍🏽", "東京", "ภา"]));
    for text in &taken {
        assert!(mixed_scanned(text).is_some(), "scan_mixed should take {text:?}");
        check(text);
        if !text.contains(['#', '@', '$']) && !may_hold_url(text.as_bytes()) {
            assert!(simple_text(text).is_some(), "a simple text: {text:?}");
        }
    }
    // `ß` (folded to `ss` in place) and Thai and Lao marks in canonical order (103 before 107,
    // 9 alone), in words and runs, across the block's edges: taken, as the tokenizer reads
    // them.
    let mut in_place = vec![
        "straße STRAßE ßa aß ß e\u{fb03}cient \u{fb04}ow".to_string(),
        "ข้าว กุ้ง ผู้ ที่ น้ำ ปุ่ม ภาษาไทย ບໍ່ ກູ້".to_string(),
        "x กุ้ง😂ที่ a ผู้ b".to_string(),
    ];
    in_place.extend(around_block_edges(&["ß", "\u{fb03}", "กุ้ง", "ที่", "ກູ້"]));
    for text in &in_place {
        assert!(mixed_scanned(text).is_some(), "scan_mixed should take {text:?}");
        check(text);
    }
    for text in [
        "東\u{200b}京 tower",
        "ẞ big",
        "\u{fb01}ne",
        "x \u{301}y",
        "😭\u{301}",
        "ab\u{200b}cd é",
        // Marks out of canonical order (NFC reorders them): 107 before 103, 103 before 9.
        "ก\u{e49}\u{e38}ง",
        "ก\u{e38}\u{e3a}",
        "ß\u{301}",
        "http:\u{200b}//x.com é",
    ] {
        assert!(mixed_scanned(text).is_none(), "scan_mixed should decline {text:?}");
        check(text);
    }
}

/// Texts with each of `pieces` at every offset from 56 to 69 and, twice in a row, from 116 to
/// 129 (across the first and second 64-byte block edges), between letters and after a space.
fn around_block_edges(pieces: &[&str]) -> Vec<String> {
    let pad = |k: usize| "a".repeat(k);
    let mut out = Vec::new();
    for k in 56..70 {
        for c in pieces {
            out.push(format!("{}{c}{}", pad(k), pad(3)));
            out.push(format!("{} {c} {}", pad(k), pad(70)));
            out.push(format!("{}{c}{c}{}", pad(k + 60), pad(2)));
        }
    }
    out
}

/// Pieces of generated posts: what the corpus's non-ASCII posts hold, and the cases that
/// make a scanner go wrong.
fn piece() -> impl Strategy<Value = String> {
    let url = select(vec![
        "http://",
        "HTTPS://",
        "www.",
        "WwW.",
        "://",
        "ftp://",
        "www",
        "w.",
        "(http://www.",
        "«http://",
        "“www.",
        "h\u{200b}ttp://",
        "\u{ad}www.",
        "ｗｗｗ．",
        "ＨＴＴＰ://",
        "x+y.z://",
        ".",
        ":",
        "/",
        "t.co/",
        "é://",
        "http://\u{301}",
    ]);
    let emoji = select(vec![
        "😭",
        "🇺🇸",
        "👨\u{200d}👩\u{200d}👧",
        "❤\u{fe0f}",
        "🌧\u{fe0f}",
        "👍🏽",
        "🏳\u{fe0f}\u{200d}🌈",
        "1\u{fe0f}\u{20e3}",
        "🍕🍕",
        "©",
        "☕",
    ]);
    let words = select(vec![
        "Привет",
        "МИР",
        "музыка",
        "東京",
        "ありがとう",
        "中国",
        "ภาษา",
        "φιλοσοφία",
        "ΣΊΣΥΦΟΣ",
        "ς",
        "Σ",
        "ὈΔΥΣΣΕΎΣ",
        "soufflé",
        "Épées",
        "krónur",
        "Lumière",
        "STRASSE",
        "straße",
        "İstanbul",
        "ǅ",
        "ﬁ",
        "ẞ",
        "ＡＢＣ",
        "ｗｗｗ",
        "１２３",
        "שלום",
        "مرحبا",
        "مَرْحَبًا",
        "한국어",
        "กุ้ง",
        "ที่",
        "ก\u{e49}\u{e38}ง",
        "ບໍ່",
        "ß\u{301}",
        "e\u{301}",
        "\u{212b}",
    ]);
    prop_oneof![
        4 => "[a-zA-Z0-9]{1,8}",
        2 => "[a-zA-Z0-9 ,.#]{8,40}",
        3 => "[ \t\n\u{a0}\u{3000}\u{2003}\u{85}]{1,2}",
        2 => "[!-/:-@\\[-`{-~«»“”、。¿¡]{1,2}",
        3 => url.prop_map(String::from),
        3 => emoji.prop_map(String::from),
        3 => words.prop_map(String::from),
        1 => "[\u{ad}\u{200b}\u{200d}\u{200e}\u{200f}\u{fe0f}\u{2060}]",
        1 => "[\u{300}-\u{36f}]",
        1 => "[àéîõüßİΣσςДжΐǅﬁﬃﬄẞⓂ㎒]{1,3}",
        1 => "[กข\u{e31}\u{e34}\u{e38}\u{e39}\u{e3a}\u{e47}-\u{e4e}ກ\u{eb8}\u{ec8}-\u{ecb}]{1,4}",
        1 => "\\PC{1,3}",
    ]
}

/// Proptest cases: 1,024, or `STREAMTRACK_PROPTEST_CASES` for a long local run.
fn cases() -> u32 {
    std::env::var("STREAMTRACK_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1024)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]
    /// Generated non-ASCII posts (emoji sequences, combining marks, RTL, URLs with non-ASCII
    /// around them, `www.`, mixed case, Greek final sigma, full-width forms, ignorables): the
    /// scanner, where it takes a post, and `MessageWords::field` always, find the
    /// tokenizer's words and runs.
    #[test]
    #[cfg_attr(miri, ignore = "too slow under Miri")]
    fn unicode_scanner_equals_tokenizer_on_generated_posts(
        pieces in proptest::collection::vec(piece(), 0..30),
        tail in "[é東🍕]",
    ) {
        let text = format!("{}{tail}", pieces.concat());
        check(&text);
    }
}

/// Every non-ASCII post of the side-by-side corpus (`target/peers/data/messages.txt`,
/// written by `../shared/bench/gen_corpus.py`): the same words as the tokenizer, and the
/// scanner takes them all (none needs the tokenizer: emoji, accented, Cyrillic, Greek and
/// CJK words, URLs).
#[test]
#[cfg_attr(miri, ignore = "reads a file")]
fn every_non_ascii_post_of_the_corpus() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/peers/data/messages.txt");
    let Ok(corpus) = std::fs::read_to_string(&path) else {
        eprintln!(
            "skipped: no corpus at target/peers/data/messages.txt (python3 \
             ../shared/bench/gen_corpus.py --out target/peers/data writes it)"
        );
        return;
    };
    let mut words = MessageWords::default();
    let (mut posts, mut taken, mut mixed, mut simple) = (0, 0, 0, 0);
    for post in corpus.lines().filter(|l| !l.is_ascii()) {
        posts += 1;
        let want = tokenizer(post);
        assert_eq!(field(&mut words, post), want, "{post:?}");
        taken += usize::from(scanned(post).is_some_and(|found| found == want));
        if let Some(found) = mixed_scanned(post) {
            assert_eq!(found, want, "scan_mixed of {post:?}");
            mixed += 1;
        }
        simple += usize::from(simple_text(post).is_some());
    }
    eprintln!(
        "{taken} of {posts} non-ASCII posts taken by the scanner, {mixed} by the mixed \
         scanner; {simple} with a simple normalised text"
    );
    assert!(posts > 0, "a corpus with non-ASCII posts");
    assert_eq!(taken, posts, "the scanner takes every non-ASCII post of the corpus");
}
