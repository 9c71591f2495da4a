use streamtrack::normalize::{char_class, fold, CharClass, Tokens, UrlMode};
use streamtrack::rule::Rule;

#[test]
fn probe() {
    let mut changes = Vec::new();
    for cp in 0..=0x10FFFFu32 {
        let Some(c) = char::from_u32(cp) else { continue };
        let k = char_class(c);
        if k == CharClass::Ignorable || k == CharClass::Space || k == CharClass::Control {
            continue;
        }
        let s = c.to_string();
        let f = fold(&s);
        let fk: Vec<CharClass> = f.chars().map(char_class).collect();
        let same = fk.iter().all(|&x| x == k || (k.is_word() && x.is_word() && false));
        if !same {
            changes.push(format!("U+{cp:04X} {c} {k:?} -> {f:?} {fk:?}"));
        }
    }
    println!("{} class changes", changes.len());
    for c in changes.iter().take(80) {
        println!("{c}");
    }
    for s in [
        "\n", "\t", "\r", "\u{b}", "\u{c}", "\u{85}", "\u{1c}", "\u{180e}", "\u{202e}", "\u{2066}",
        "\u{301}", "Ⓜ", "ⓜ",
    ] {
        println!("{:?} {:?}", s, char_class(s.chars().next().unwrap()));
    }
    for r in ["Ⓜ", "from:\"@ a\"", "\u{301}", "\u{202e}", "a\u{202e}b"] {
        match Rule::parse(r) {
            Ok(x) => println!(
                "{r:?} -> {:?} {:?} -> {:?}",
                x.root(),
                x.to_string(),
                Rule::parse(&x.to_string())
            ),
            Err(e) => println!("{r:?} -> err {e:?}"),
        }
        match Rule::parse_track(r) {
            Ok(x) => println!(
                "track {r:?} -> {:?} {:?} -> {:?}",
                x.root(),
                x.to_string(),
                Rule::parse_track(&x.to_string())
            ),
            Err(e) => println!("track {r:?} -> err {e:?}"),
        }
    }
    let t = Tokens::of("Ⓜ \u{301}apple", UrlMode::Canonicalize);
    println!("{:?} {:?}", t.text(), t.word_texts().collect::<Vec<_>>());
}
