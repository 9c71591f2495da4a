#!/usr/bin/env python3
"""Frozen vectors of the Python package vaderSentiment 3.3.2, for tests/analytics_sentiment.rs.

Run from the repository root, with the package in a venv under target/:
    python3 -m venv target/venv && target/venv/bin/pip install vaderSentiment==3.3.2
    target/venv/bin/python scripts/vader_vectors.py ../shared/data/posts > tests/data/vader_vectors.jsonl

Writes one JSON object per text: {"text", "compound", "pos", "neu", "neg"}, the scores
*unrounded* (the module's `round` is replaced by the identity, so that the Rust port can be
compared to 1e-12 instead of to the printed 3-4 decimals). Texts: every tweet of
vader_tweets_en.jsonl, every 13th snippet of vader_snippets_en.jsonl, and the hand-written
edge cases below (the package's own demo sentences, emoji, ALL CAPS, "but", negation, idioms).
"""
import json
import os
import sys

import vaderSentiment
import vaderSentiment.vaderSentiment as vs

assert vaderSentiment.__file__ and vs.__name__
vs.round = lambda x, n=None: x  # unrounded scores

EDGE = [
    "VADER is smart, handsome, and funny.",
    "VADER is smart, handsome, and funny!",
    "VADER is very smart, handsome, and funny.",
    "VADER is VERY SMART, handsome, and FUNNY.",
    "VADER is VERY SMART, handsome, and FUNNY!!!",
    "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
    "VADER is not smart, handsome, nor funny.",
    "The book was good.",
    "At least it isn't a horrible book.",
    "The book was only kind of good.",
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "Today SUX!",
    "Today only kinda sux! But I'll get by, lol",
    "Make sure you :) or :D today!",
    "Catch utf-8 emoji such as 💘 and 💋 and 😁",
    "Not bad at all",
    "Sentiment analysis has never been good.",
    "Sentiment analysis has never been this good!",
    "Most automated sentiment analysis tools are shit.",
    "With VADER, sentiment analysis is the shit!",
    "Other sentiment analysis tools can be quite bad.",
    "On the other hand, VADER is quite bad ass",
    "VADER is such a badass!",
    "Without a doubt, excellent idea.",
    "Roger Dodger is one of the most compelling variations on this theme.",
    "Roger Dodger is at least compelling as a variation on the theme.",
    "Roger Dodger is one of the least compelling variations on this theme.",
    "Not such a badass after all.",
    "Without a doubt, an excellent idea.",
    "It was one of the worst movies I've seen, despite good reviews.",
    "Unbelievably bad acting!! Poor direction. VERY poor production.",
    "This is not the worst phone I have owned",
    "Not the best day ever",
    "I don't know what happened. Anyway :)",
    "not bad :)",
    "Kindly refund my money, the product arrived broken",
    "They treated us kindly",
    "NO NO NO NO",
    "good good but bad bad good",
    "good but good",
    "bad, but good and ok, fine",
    "I love it but I hate it but I love it",
    "DON'T CARE DON'T CARE #royalwedding",
    "kiss of death",
    "this is to die for",
    "he is a bad ass guy",
    "the shit",
    "yeah right",
    "That was the bomb!",
    "kind of bad",
    "sort of good, just enough fun",
    "no problem at all",
    "no no good",
    "no love or hate",
    "??? really ??",
    "wow!!!!!!",
    "",
    "   ",
    "!!!",
    "ok, that's ok.",
    "sooooo gooood",
    "I ❤️ this 😍😍",
    "😀abc",
    "x😀 y",
    "ÉNORME SUCCÈS GREAT",
    "Σ ΣΊΣΥΦΟΣ great",
    "&lt;3 you &amp; me",
    "never so good",
    "never this bad",
    "without doubt good",
    "least good",
    "at least good",
    "very least good",
    "the least good",
]


def main():
    data = sys.argv[1]
    a = vs.SentimentIntensityAnalyzer()
    texts = []
    with open(os.path.join(data, "vader_tweets_en.jsonl"), encoding="utf-8") as f:
        texts += [json.loads(l)["text"] for l in f]
    with open(os.path.join(data, "vader_snippets_en.jsonl"), encoding="utf-8") as f:
        texts += [json.loads(l)["text"] for n, l in enumerate(f) if n % 13 == 0]
    texts += EDGE
    for t in texts:
        s = a.polarity_scores(t)
        print(json.dumps({"text": t, "compound": s["compound"], "pos": s["pos"], "neu": s["neu"],
                          "neg": s["neg"]}, ensure_ascii=False))


if __name__ == "__main__":
    main()
