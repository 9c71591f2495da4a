//! Prints the normalisation properties of the `unicode-normalization` crate this build uses,
//! for `scripts/gen_unicode_tables.py` (the crate's Unicode version is newer than the UCD files
//! the generator reads, and the tables must agree with the crate's NFC).
//!
//! Usage: `cargo run --example normalization_data > norm.txt`, then
//! `python3 scripts/gen_unicode_tables.py UCD_DIR norm.txt > src/normalize/tables.rs`.
//!
//! Output: a `# unicode-normalization X.Y.Z` header, then one line `CODE;ccc;qc;mark` for every
//! code point with a non-zero canonical combining class, an NFC quick-check value other than
//! `Y`, or the general category Mark (`mark` is 1 or 0).

use unicode_normalization::char::{canonical_combining_class, is_combining_mark};
use unicode_normalization::{is_nfc_quick, IsNormalized, UNICODE_VERSION};

fn main() {
    let (major, minor, update) = UNICODE_VERSION;
    println!("# unicode-normalization Unicode {major}.{minor}.{update}");
    for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
        let ccc = canonical_combining_class(c);
        let qc = match is_nfc_quick(std::iter::once(c)) {
            IsNormalized::Yes => 'Y',
            IsNormalized::No => 'N',
            IsNormalized::Maybe => 'M',
        };
        let mark = is_combining_mark(c);
        if ccc != 0 || qc != 'Y' || mark {
            println!("{:04X};{ccc};{qc};{}", c as u32, u8::from(mark));
        }
    }
}
