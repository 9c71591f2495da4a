#!/usr/bin/env python3
"""Generate src/normalize/tables.rs from the Unicode Character Database.

Usage:
    cargo run --example normalization_data > norm.txt
    python3 scripts/gen_unicode_tables.py UCD_DIR norm.txt > src/normalize/tables.rs && cargo fmt

UCD_DIR holds UnicodeData.txt, PropList.txt, DerivedCoreProperties.txt, Scripts.txt,
ScriptExtensions.txt, CaseFolding.txt and emoji/emoji-data.txt (Unicode 15.0 was used: the
Debian `unicode-data` 15.0.0 files). norm.txt holds the normalisation properties (canonical
combining class, NFC quick check, general category Mark) of the `unicode-normalization` crate
the build uses (Unicode 18.0 for 0.1.26), printed by `examples/normalization_data.rs`: the
flags that decide when NFC may be skipped, and which characters attach to the one before them,
must agree with the NFC the crate computes, not with an older UCD.
The generated file is committed, so building the crate never needs the UCD.
"""
import os
import sys

UCD = sys.argv[1] if len(sys.argv) > 1 else "."
NORM = sys.argv[2] if len(sys.argv) > 2 else "norm.txt"
MAX = 0x110000

# Character classes, in the order of precedence used below. Keep in sync with CharClass in
# src/normalize/mod.rs.
WORD, NOSPACE, EMOJI, PUNCT, CONTROL, SPACE, IGNORABLE = range(7)
NAMES = ["Word", "NoSpace", "Emoji", "Punct", "Control", "Space", "Ignorable"]
NOSPACE_SCRIPTS = {"Han", "Hiragana", "Katakana", "Thai", "Lao", "Khmer", "Myanmar"}
NOSPACE_SHORT = {"Hani", "Hira", "Kana", "Thai", "Laoo", "Khmr", "Mymr"}


def ranges(path, want=None):
    """Yield (lo, hi, value) from a UCD property file."""
    with open(os.path.join(UCD, path), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = [x.strip() for x in line.split(";")]
            cps = fields[0]
            if ".." in cps:
                lo, hi = (int(x, 16) for x in cps.split(".."))
            else:
                lo = hi = int(cps, 16)
            value = fields[1]
            if want is None or value == want:
                yield lo, hi, value


def case_folding():
    """Full case folding (CaseFolding.txt statuses C and F): code point -> folded string."""
    folds = {}
    with open(os.path.join(UCD, "CaseFolding.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            code, status, mapping = [x.strip() for x in line.split(";")[:3]]
            if status in ("C", "F"):
                folds[int(code, 16)] = "".join(chr(int(x, 16)) for x in mapping.split())
    return folds


def general_categories():
    gc = ["Cn"] * MAX
    with open(os.path.join(UCD, "UnicodeData.txt"), encoding="utf-8") as f:
        first = None
        for line in f:
            fields = line.split(";")
            cp = int(fields[0], 16)
            name, cat = fields[1], fields[2]
            if name.endswith(", First>"):
                first = cp
                continue
            if name.endswith(", Last>"):
                for c in range(first, cp + 1):
                    gc[c] = cat
                continue
            gc[cp] = cat
    return gc


def normalization_data():
    """(version, {code point: (ccc, nfc_qc, is_mark)}) from examples/normalization_data.rs."""
    version, props = None, {}
    with open(NORM, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                version = line[1:].strip()
                continue
            code, ccc, qc, mark = line.strip().split(";")
            props[int(code, 16)] = (int(ccc), qc, mark == "1")
    assert version and props, "norm.txt is empty: run examples/normalization_data.rs"
    return version, props


def main():
    norm_version, norm = normalization_data()
    gc = general_categories()
    white = [False] * MAX
    for lo, hi, _ in ranges("PropList.txt", "White_Space"):
        for c in range(lo, hi + 1):
            white[c] = True
    ignorable = [False] * MAX
    for lo, hi, _ in ranges("DerivedCoreProperties.txt", "Default_Ignorable_Code_Point"):
        for c in range(lo, hi + 1):
            ignorable[c] = True
    emoji = [False] * MAX
    for lo, hi, _ in ranges("emoji/emoji-data.txt", "Emoji"):
        for c in range(lo, hi + 1):
            emoji[c] = True
    for c in b"#*0123456789":
        emoji[c] = False
    script = [None] * MAX
    for lo, hi, value in ranges("Scripts.txt"):
        for c in range(lo, hi + 1):
            script[c] = value
    scx = {}
    for lo, hi, value in ranges("ScriptExtensions.txt"):
        for c in range(lo, hi + 1):
            scx[c] = set(value.split())

    cls = [WORD] * MAX
    for c in range(MAX):
        if white[c]:
            cls[c] = SPACE
        elif ignorable[c]:
            cls[c] = IGNORABLE
        elif emoji[c]:
            cls[c] = EMOJI
        elif gc[c] == "Cc":
            cls[c] = CONTROL
        elif gc[c][0] in "PSZ" or gc[c] in ("Cf", "Cs"):
            cls[c] = PUNCT
        else:
            nospace = script[c] in NOSPACE_SCRIPTS or (
                c in scx and scx[c] <= NOSPACE_SHORT
            )
            cls[c] = NOSPACE if nospace else WORD

    # Flags for the fast paths: does case folding change the character; may NFC change a
    # string holding it. NFC is the `unicode-normalization` crate's (norm.txt): a character is
    # NFC-stable when its canonical combining class is 0 and its NFC quick check is Yes (then
    # NFC never reorders, composes or decomposes across it: text can be normalised in pieces
    # cut before such characters). Conservatively, characters unassigned in the UCD read here
    # count as unstable, and so does a character whose case folding starts with an unstable
    # one (so the folded text can be cut at the same places).
    folding = case_folding()
    folds_set = set(folding)
    FAST_LIMIT = 0x30000

    def nfc_unstable(c):
        ccc, qc, _ = norm.get(c, (0, "Y", False))
        return ccc != 0 or qc != "Y" or gc[c] == "Cn"

    flags = bytearray(FAST_LIMIT)
    for c in range(FAST_LIMIT):
        v = cls[c]
        if c in folds_set:
            v |= 0x08
        unstable = nfc_unstable(c) or (c in folding and nfc_unstable(ord(folding[c][0])))
        if unstable:
            v |= 0x10
        flags[c] = v
    # A character whose case folding is of another class takes the class of its folding, so
    # that tokenising text and tokenising its folded form agree (U+24C2 is an emoji, its
    # folding U+24DC is a symbol: both are symbols here).
    fold_first = {c: ord(v[0]) for c, v in folding.items()}
    for c, first in fold_first.items():
        if cls[c] != cls[first] and cls[c] not in (SPACE, IGNORABLE):
            cls[c] = cls[first]
            if c < len(flags):
                flags[c] = (flags[c] & ~7) | cls[first]
    # Combining marks: bit 0x20. A mark joins the class of the character before it. Marks
    # are the crate's general category M plus every character with a non-zero combining class
    # (U+0345 too, although it folds to a letter: text is normalised before it is split into
    # words, so a mark never stands where NFC could move another one in front of it).
    for c in range(FAST_LIMIT):
        ccc, _, mark = norm.get(c, (0, "Y", False))
        if mark or ccc != 0 or gc[c][0] == "M":
            flags[c] |= 0x20
    # Above the fast table no character may have a combining class (is_mark reads the table).
    assert all(c < FAST_LIMIT for c, (ccc, _, _) in norm.items() if ccc != 0)

    blocks = {}
    block_index = []
    block_data = []
    for b in range(FAST_LIMIT // 256):
        chunk = bytes(flags[b * 256:(b + 1) * 256])
        if chunk not in blocks:
            blocks[chunk] = len(block_data)
            block_data.append(chunk)
        block_index.append(blocks[chunk])

    out = []
    out.append("// Generated by scripts/gen_unicode_tables.py from the Unicode 15.0 UCD and the\n")
    out.append("// normalisation properties of %s. Do not edit.\n" % norm_version)
    out.append("//! Character classes and case folding generated from the Unicode Character Database.\n\n")
    out.append("use super::CharClass;\n\n")
    out.append("/// Classes of the ASCII characters, indexed by byte.\n")
    out.append("pub(crate) static ASCII_CLASS: [CharClass; 128] = [\n")
    for c in range(128):
        out.append("    CharClass::%s,\n" % NAMES[cls[c]])
    out.append("];\n\n")
    # Ranges above ASCII whose class is not Word.
    rows = []
    c = 128
    while c < MAX:
        k = cls[c]
        start = c
        while c + 1 < MAX and cls[c + 1] == k:
            c += 1
        if k != WORD:
            rows.append((start, c, k))
        c += 1
    out.append("/// Sorted, disjoint ranges (first, last, class) of non-ASCII code points whose class is\n")
    out.append("/// not `Word`.\n")
    out.append("pub(crate) static CLASS_RANGES: [(u32, u32, CharClass); %d] = [\n" % len(rows))
    for lo, hi, k in rows:
        out.append("    (0x%04X, 0x%04X, CharClass::%s),\n" % (lo, hi, NAMES[k]))
    out.append("];\n\n")
    folds = list(folding.items())
    folds.sort()
    out.append("/// Full case folding (CaseFolding.txt statuses C and F), sorted by code point.\n")
    out.append("pub(crate) static CASE_FOLD: [(u32, &str); %d] = [\n" % len(folds))
    for cp, s in folds:
        esc = "".join("\\u{%X}" % ord(ch) for ch in s)
        out.append('    (0x%04X, "%s"),\n' % (cp, esc))
    out.append("];\n")
    out.append("\n/// Code points below this have their flags in [`BLOCK_INDEX`]/[`BLOCKS`].\n")
    out.append("pub(crate) const FAST_LIMIT: u32 = 0x%X;\n\n" % FAST_LIMIT)
    out.append("/// For each 256-code-point block below `FAST_LIMIT`, its row in [`BLOCKS`].\n")
    out.append("pub(crate) static BLOCK_INDEX: [u8; %d] = [\n" % len(block_index))
    for i in range(0, len(block_index), 24):
        out.append("    " + ", ".join(str(x) for x in block_index[i:i + 24]) + ",\n")
    out.append("];\n\n")
    out.append("/// Per code point: class in bits 0-2 (CharClass order), 0x08 = case folding changes it,\n")
    out.append("/// 0x10 = NFC may change a string holding it.\n")
    out.append("pub(crate) static BLOCKS: [[u8; 256]; %d] = [\n" % len(block_data))
    for chunk in block_data:
        out.append("    [" + ", ".join(str(x) for x in chunk) + "],\n")
    out.append("];\n")
    assert len(block_data) <= 256
    sys.stdout.write("".join(out))


if __name__ == "__main__":
    main()
