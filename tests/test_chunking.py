"""Chunking by a byte budget: hostile texts never break it, the chunks say every
spoken word once and in order, pauses are cuts, and ordinary punctuated text
chunks as f5-tts's ``chunk_text`` does. Pure Python, no torch."""
from __future__ import annotations

import ast
import functools
import importlib.util
import pathlib
import random
import re

import pytest

from worker.core.errors import WorkerError
from worker.text.chunking import chunk_text
from worker.text.frontend import prepare_text
from worker.text.words import graphemes, split_words

BUDGETS = [1, 40, 135]


def package_chunk_text():
    """f5-tts's own ``chunk_text``, read from the installed package's source and
    compiled alone (importing its module would import torch)."""
    spec = importlib.util.find_spec("f5_tts")
    source = pathlib.Path(list(spec.submodule_search_locations)[0]) / "infer" / "utils_infer.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "chunk_text")
    namespace = {"re": re}
    exec(compile(ast.Module([node], []), str(source), "exec"), namespace)
    return namespace["chunk_text"]


def check(prepared, chunked, budget):
    """The invariants every chunking keeps."""
    for chunk in chunked.chunks:
        assert chunk.units
        assert split_words(chunk.text) == [spoken for spoken, _ in chunk.units], chunk
        size = len(chunk.text.encode("utf-8"))
        assert size <= budget or len(graphemes(chunk.text)) == 1, (size, chunk.text)
    flat = chunked.units
    owners = [index for _, index in flat]
    assert owners == sorted(owners)  # in order, and a word's chunks are consecutive
    said = [""] * len(prepared.words)
    for spoken, owner in flat:
        said[owner] += spoken
    assert said == ["".join(split_words(word.spoken)) for word in prepared.words]
    lead, after = prepared.pauses_between()
    assert chunked.lead_pause == lead
    assert sum(c.pause_after for c in chunked.chunks) == pytest.approx(sum(after))
    # a pause is always a cut: each pause after a unit ends the chunk holding that unit
    ends = []
    for chunk in chunked.chunks:
        ends += [0.0] * (len(chunk.units) - 1) + [chunk.pause_after]
    if all(len(spoken.encode()) <= budget for spoken, _ in prepared.units):
        assert ends == pytest.approx(after)


def hostile_texts():
    rng = random.Random(7)
    words = ["narrator", "river", "ancient", "light", "echo", "Zürich", "naïve", "data"]
    emoji = ["\U0001F600", "\U0001F44D\U0001F3FD", "\U0001F468\u200d\U0001F469\u200d\U0001F467",
             "\U0001F1EF\U0001F1F5", "\u2764\ufe0f"]
    cjk = "我们今天天气很好去公园看花吃饭东京タワーに行きます"
    thai = "สวัสดีครับผมชื่อสมชายยินดีที่ได้รู้จัก"
    return {
        "5000 without punctuation": " ".join(rng.choice(words) for _ in range(700))[:5000],
        "one 300-character word": "x" * 300,
        "a 300-character word among words": "before " + "abcdé" * 60 + " after",
        "2400 CJK without punctuation": "".join(rng.choice(cjk[:14]) for _ in range(2400)),
        "Thai without spaces": (thai * 40)[:1500],
        "emoji runs among words": " ".join(
            rng.choice(words) if rng.random() < 0.5 else "".join(rng.sample(emoji, 3))
            for _ in range(300)),
        "mixed scripts": " ".join(rng.choice(["hello", "Привет", "你好世界", "안녕", "مرحبا",
                                               "สวัสดี", "Γειά", "שלום", "東京タワー"])
                                  for _ in range(400)),
        "URLs": " ".join(rng.choice(["see https://example.com/a/b?c=d&e=f", "mail me@x.org",
                                     "www.example.co.uk/path", "word"]) for _ in range(200)),
        "all numbers": " ".join(str(rng.randint(0, 10 ** rng.randint(1, 12)))
                                for _ in range(400)),
        "a 5000-digit number": "".join(str(rng.randint(0, 9)) for _ in range(5000)),
        "many pause tags": " ".join(rng.choice(["word", "[pause:0.5s]", "<break/>", "go,",
                                                "[pause:300ms]", "end."]) for _ in range(600)),
        "punctuation storms": " ".join(rng.choice(["a!!!", "b???", "—", "…", "c,", "(d)", "「e」",
                                                   "f。", "g，h"]) for _ in range(600)),
        "CJK with full-width punctuation": "，".join(cjk for _ in range(60)) + "。",
    }


HOSTILE = hostile_texts()


@functools.cache
def prepared_hostile(name):
    return prepare_text(HOSTILE[name])


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_texts_keep_every_invariant(name, budget):
    prepared = prepared_hostile(name)
    check(prepared, chunk_text(prepared, budget), budget)


def test_random_mixtures_keep_every_invariant():
    rng = random.Random(11)
    pool = ["word", "$45", "3/4/2025", "10:30am", "你好，", "世界", "สวัสดี", "\U0001F600", "—",
            "!", "[pause:1s]", "e.g.", "https://a.io/x", "1 000", "Dr.", "a" * 90, "ok.",
            "«", "»", "2nd", "45%", "AT&T", "ที่", "ا", "\u0301"]
    for _ in range(60):
        text = " ".join(rng.choice(pool) for _ in range(rng.randint(1, 60)))
        if not re.search(r"\w", re.sub(r"\[pause:1s\]", "", text)):
            continue
        prepared = prepare_text(text, language=rng.choice(["en", "fr", "zh", "th"]))
        budget = rng.choice([1, 3, 10, 50, 200])
        check(prepared, chunk_text(prepared, budget), budget)


def test_text_without_punctuation_is_cut_into_even_parts():
    prepared = prepared_hostile("5000 without punctuation")
    chunks = chunk_text(prepared, 200).chunks
    sizes = [len(chunk.text.encode()) for chunk in chunks]
    assert max(sizes) <= 200 and min(sizes) >= 150
    total = len(" ".join(s for s, _ in prepared.units).encode())
    assert len(chunks) <= -(-total // 200) + 1


def test_an_over_long_word_is_cut_between_graphemes_evenly():
    prepared = prepare_text("é" * 300)  # 600 bytes
    chunks = chunk_text(prepared, 200).chunks
    assert [len(chunk.text.encode()) for chunk in chunks] == [200, 200, 200]
    assert all(index == 0 for chunk in chunks for _, index in chunk.units)


def test_pauses_cut_and_lead_pause_kept():
    prepared = prepare_text("[pause:1s] Hello there, friend. [pause:2s] Bye [pause:0.5s]")
    chunked = chunk_text(prepared, 1000)
    assert chunked.lead_pause == 1.0
    assert [(c.text, c.pause_after) for c in chunked.chunks] == [
        ("Hello there, friend.", 2.0), ("Bye", 0.5)]


def test_chunks_say_the_normalized_text():
    prepared = prepare_text("It costs $45. Call at 10:30am!")
    chunks = chunk_text(prepared, 30).chunks
    assert [c.text for c in chunks] == ["It costs forty-five dollars.", "Call at ten thirty a m!"]
    assert chunks[0].units[2:] == (("forty-five", 2), ("dollars.", 2))


ORDINARY = (
    "The old lighthouse stood at the edge of the cliff, its lamp long dark. Nobody had "
    "climbed its stairs in years; the door was rusted shut. Still, on stormy nights, "
    "sailors swore they saw a light! Was it a ghost? Perhaps. Or perhaps someone lived "
    "there after all: a keeper who never left, tending a flame no one else could see. "
    "The town council voted, twice, to tear it down. Both times the vote failed."
)
CHINESE = "今天天气很好，我们去公园散步。公园里有很多人，有的在跑步，有的在下棋！你想一起去吗？"


@pytest.mark.parametrize("budget", [60, 100, 135, 250, 1000])
@pytest.mark.parametrize("text", [ORDINARY, CHINESE, ORDINARY + " " + CHINESE])
def test_ordinary_text_chunks_like_the_package(text, budget):
    reference = package_chunk_text()
    expected = reference(text, max_chars=budget)
    clauses = re.split(r"(?<=[;:,.!?])\s+|(?<=[；：，。！？])", text)
    assert all(len(clause.encode()) <= budget for clause in clauses if clause)
    prepared = prepare_text(text, normalize=False)
    assert [chunk.text for chunk in chunk_text(prepared, budget).chunks] == expected


def test_a_clause_over_the_budget_is_cut_where_the_package_would_not():
    reference = package_chunk_text()
    assert max(len(c.encode()) for c in reference(ORDINARY, max_chars=30)) > 30
    prepared = prepare_text(ORDINARY, normalize=False)
    chunks = chunk_text(prepared, 30).chunks
    assert max(len(c.text.encode()) for c in chunks) <= 30
    check(prepared, chunk_text(prepared, 30), 30)


def test_budget_from_the_reference():
    from worker.text.chunking import budget_bytes

    assert budget_bytes("x" * 100, 5.0, 25.0) == 400  # 20 bytes/s for 20 s
    assert budget_bytes("x" * 100, 5.0, 25.0, speed=0.5) == 200
    assert budget_bytes("x", 30.0, 25.0) == 1


def test_random_unicode_never_raises_anything_but_invalid_input():
    rng = random.Random(3)
    blocks = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x400, 0x4FF), (0x590, 0x6FF),
              (0x900, 0x97F), (0xE00, 0xEFF), (0x1000, 0x109F), (0x1780, 0x17FF),
              (0x2000, 0x206F), (0x2190, 0x27BF), (0x3000, 0x30FF), (0x4E00, 0x4E80),
              (0xAC00, 0xAC50), (0xFE00, 0xFE0F), (0xFF00, 0xFFEF), (0x1F300, 0x1F6FF),
              (0x1F1E6, 0x1F1FF), (0xD800, 0xD8FF), (0xE000, 0xE0FF), (0x30, 0x39)]
    pieces = ["[pause:1s]", "<break/>", "$45", "3/4/2025", "10:30", "1 000", "e.g.", " ", "\n"]
    spoken = 0
    for _ in range(300):
        parts = [rng.choice(pieces) if rng.random() < 0.2 else chr(rng.randint(*rng.choice(blocks)))
                 for _ in range(rng.randint(1, 40))]
        language = rng.choice([None, "en", "de", "fr", "zh", "ja", "th", "it", "hi"])
        try:
            prepared = prepare_text("".join(parts), language=language)
        except WorkerError as error:
            assert error.code == "invalid_input"
            continue
        budget = rng.choice([1, 5, 20, 100])
        check(prepared, chunk_text(prepared, budget), budget)
        spoken += 1
    assert spoken > 200
