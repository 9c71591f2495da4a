//! `streamtrack bench flood`: hash flooding. An adversary who knows the word hash's key crafts
//! terms whose hashes share their low bits, so that they pile up in a few slots of the
//! open-addressing word table. Every matcher draws a random key, so crafted terms scatter;
//! this benchmark shows both, in one run: lookups with the key the terms were crafted for,
//! and with a random key.

use clap::Args;
use std::process::ExitCode;
use std::time::Instant;
use streamtrack::matcher::{word_hash, Matcher, Scratch};
use streamtrack::{Message, Rule};

#[derive(Args)]
pub struct FloodBench {
    /// Number of crafted terms.
    #[arg(long, default_value_t = 100_000)]
    terms: usize,
    /// Low hash bits the crafted terms share.
    #[arg(long, default_value_t = 10)]
    bits: u32,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Words `w<n>` (lower-case ASCII) whose hash under key (0, 0) has `bits` low bits zero.
fn craft(count: usize, bits: u32) -> Vec<String> {
    let mask = (1u64 << bits) - 1;
    let mut out = Vec::with_capacity(count);
    let mut n: u64 = 0;
    let mut buf = String::new();
    while out.len() < count {
        buf.clear();
        // Base-26 letters: always one word.
        let mut k = n;
        buf.push('w');
        loop {
            buf.push((b'a' + (k % 26) as u8) as char);
            k /= 26;
            if k == 0 {
                break;
            }
        }
        if word_hash(0, 0, buf.as_bytes()) & mask == 0 {
            out.push(buf.clone());
        }
        n += 1;
    }
    out
}

/// Nanoseconds per message word for matching `messages` with `matcher`.
fn ns_per_word(matcher: &Matcher, messages: &[Message], words_per_msg: usize) -> f64 {
    let mut scratch = Scratch::new();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        for m in messages {
            std::hint::black_box(matcher.find(m, &mut scratch).len());
        }
        best = best.min(t.elapsed().as_nanos() as f64 / (messages.len() * words_per_msg) as f64);
    }
    best
}

pub fn run(args: FloodBench) -> ExitCode {
    let t = Instant::now();
    let words = craft(args.terms, args.bits);
    let craft_secs = t.elapsed().as_secs_f64();
    let rules: Vec<Rule> =
        words.iter().map(|w| Rule::parse(w).expect("crafted words are keywords")).collect();
    // Messages made of crafted words: every word is a term, every lookup lands in the pile.
    let per = 20;
    let messages: Vec<Message> = (0..2_000)
        .map(|i| {
            let text: Vec<&str> =
                (0..per).map(|j| words[(i * 7919 + j * 104_729) % words.len()].as_str()).collect();
            Message::new(i.to_string(), text.join(" "))
        })
        .collect();
    let t = Instant::now();
    let known = Matcher::builder().hash_seed(0, 0).build(&rules);
    let build_known = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let keyed = Matcher::new(&rules);
    let build_keyed = t.elapsed().as_secs_f64();
    let known_ns = ns_per_word(&known, &messages, per);
    let keyed_ns = ns_per_word(&keyed, &messages, per);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "terms": args.terms,
                "shared_low_bits": args.bits,
                "craft_secs": craft_secs,
                "known_key_build_secs": build_known,
                "random_key_build_secs": build_keyed,
                "known_key_ns_per_word": known_ns,
                "random_key_ns_per_word": keyed_ns,
                "slowdown": known_ns / keyed_ns,
            })
        );
    } else {
        println!(
            "streamtrack bench flood: {} terms crafted in {craft_secs:.1} s to share their {} low hash bits under key (0, 0)",
            args.terms, args.bits
        );
        println!();
        println!("| word table key | build s | lookup ns per message word |");
        println!("|---|---:|---:|");
        println!("| the key the terms were crafted for (as an unkeyed hash would be) | {build_known:.2} | {known_ns:.0} |");
        println!("| a random key (what every matcher draws) | {build_keyed:.2} | {keyed_ns:.0} |");
    }
    ExitCode::SUCCESS
}
