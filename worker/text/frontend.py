"""The text front end: what the caller wrote into what the model is asked to say.

In order: control characters out, pause tags cut out, the written words
(what timings and cues list), the job's language, pronunciations, then
normalization. The result keeps, per written word, what is spoken for it (a
few spoken words, or none: an emoji, a dash), so that timings computed on
spoken words can be mapped back onto the words as written
(``written_spans``). Pure Python, no torch.
"""
from __future__ import annotations

import bisect
import itertools
import unicodedata
from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence, Tuple

from worker.text import cleaning, pauses
from worker.text import normalize as normalizer
from worker.text.language import resolve_language
from worker.text.pronunciations import apply_pronunciations, merge_pronunciations
from worker.text.words import graphemes, separator, split_words

# Punctuation standing alone ("Bonjour !") joins the word before it, so the
# model still hears the question or the sentence end.
_JOINS_PREVIOUS = set(".,;:!?…»”’)]}」』）】》。，！？；：、")

Span = Optional[Tuple[float, float, Optional[float]]]  # (start, end, confidence)
Unit = Tuple[str, int]  # (spoken word, index of the written word it says)


@dataclass(frozen=True)
class Word:
    """A written word: ``text`` as written, ``spoken`` what is said for it
    ("" for nothing), ``spoken_by`` the index of the word whose speech says it
    (its own, or the first word of a reading over several: "1 000 000")."""
    text: str
    spoken: str
    spoken_by: int


@dataclass(frozen=True)
class Pause:
    seconds: float
    after_word: int  # index of the written word before it; -1 before every word


@dataclass(frozen=True)
class PreparedText:
    words: Tuple[Word, ...]
    pauses: Tuple[Pause, ...]
    units: Tuple[Unit, ...]  # the spoken words in order, each with its written word
    spaced: Tuple[bool, ...]  # per written word: whitespace before it in the text
    language: str
    language_source: str     # request | voice | detected
    notes: Tuple[str, ...]

    @property
    def written(self) -> List[str]:
        return [word.text for word in self.words]

    def unit_spacing(self) -> List[bool]:
        """Per unit: whether it starts a written word that whitespace preceded
        (kept in the model text: in Thai a space marks a phrase)."""
        return [self.spaced[index] and (n == 0 or self.units[n - 1][1] != index)
                for n, (_, index) in enumerate(self.units)]

    def pauses_between(self) -> Tuple[float, List[float]]:
        """(silence before the first unit, silence after each unit)."""
        return pauses_between(self.units, self.pauses)

    @property
    def spoken_text(self) -> str:
        """What the model is asked to say, pauses shown as ``[pause:1.5s]``."""
        lead, after = self.pauses_between()
        parts, run, gaps = ([pause_tag(lead)] if lead else []), [], []
        for (spoken, _), seconds, spaced in zip(self.units, after, self.unit_spacing()):
            run.append(spoken)
            gaps.append(spaced)
            if seconds:
                parts += [join_spoken(run, gaps), pause_tag(seconds)]
                run, gaps = [], []
        if run:
            parts.append(join_spoken(run, gaps))
        return " ".join(parts)


def pause_tag(seconds: float) -> str:
    return f"[pause:{round(seconds, 3):g}s]"


def pauses_between(units: Sequence[Unit], pause_list: Sequence[Pause]) -> Tuple[float, List[float]]:
    """Silence before the first unit and after each unit: a pause after written
    word ``w`` falls after the last unit of a word at or before ``w``."""
    after = [0.0] * len(units)
    lead = 0.0
    owners = [index for _, index in units]
    for pause in pause_list:
        position = _last_at_or_before(owners, pause.after_word)
        if position < 0:
            lead += pause.seconds
        else:
            after[position] += pause.seconds
    return lead, after


def _last_at_or_before(owners: Sequence[int], word: int) -> int:
    return bisect.bisect_right(owners, word) - 1


def join_spoken(spoken: Sequence[str], spaced: Optional[Sequence[bool]] = None) -> str:
    """Spoken words into model text that splits back into exactly those words;
    ``spaced`` marks the words the written text had whitespace before."""
    parts = []
    for position, word in enumerate(spoken):
        if position:
            spaced_here = bool(spaced and spaced[position])
            parts.append(" " if spaced_here else spoken_separator(spoken[position - 1], word))
        parts.append(word)
    text = "".join(parts)
    if split_words(text) != list(spoken):
        return " ".join(spoken)
    return text


def spoken_separator(previous: str, word: str) -> str:
    """What goes between two spoken words: no space inside unspaced scripts,
    where that still keeps the two apart."""
    gap = separator(previous, word)
    if gap == "" and split_words(previous + word) != [previous, word]:
        return " "
    return gap


def check_text(text: str, pauses_allowed: bool = True, field: str = "text") -> None:
    """The checks of ``prepare_text`` that need neither voice nor language (tags,
    something to say), cheap enough for request validation."""
    pieces = pauses.split_pauses(cleaning.clean_text(text), pauses_allowed, field)
    cleaning.require_something_to_say(
        " ".join(piece for piece in pieces if isinstance(piece, str)), field)


def prepare_text(text: str, language: Optional[str] = None,
                 voice_language: Optional[str] = None, normalize: bool = True,
                 pronunciations: Optional[Mapping[str, str]] = None,
                 voice_pronunciations: Optional[Mapping[str, str]] = None,
                 pauses_allowed: bool = True, field: str = "text") -> PreparedText:
    """Run the front end over ``text`` (see the module docstring).

    ``invalid_input`` when nothing is left to say or a pause tag is malformed,
    out of range, or not allowed (``pauses_allowed=False``, for ``align``).
    """
    pieces = pauses.split_pauses(cleaning.clean_text(text), pauses_allowed, field)
    prose = " ".join(piece for piece in pieces if isinstance(piece, str))
    cleaning.require_something_to_say(prose, field)
    written, spaced, segments, pause_list = _words_and_pauses(pieces)
    resolved = resolve_language(prose, language, voice_language)
    table = merge_pronunciations(voice_pronunciations, pronunciations)
    respelled = apply_pronunciations(written, table, {p.after_word for p in pause_list})
    spoken, spoken_by, notes = _normalized(respelled, segments, resolved.code, normalize)
    words = _joined_punctuation(written, spoken, spoken_by, segments)
    units = tuple((part, index) for index, word in enumerate(words)
                  for part in split_words(word.spoken))
    if not units:
        cleaning.require_something_to_say("", field)
    return PreparedText(tuple(words), tuple(pause_list), units, tuple(spaced),
                        resolved.code, resolved.source, notes)


def _words_and_pauses(pieces) -> Tuple[List[str], List[bool], List[int], List[Pause]]:
    """Written words, whether whitespace preceded each, each word's segment
    (pause tags cut segments) and the pauses, adjacent ones added up."""
    written: List[str] = []
    spaced: List[bool] = []
    segments: List[int] = []
    pause_list: List[Pause] = []
    for piece in pieces:
        if isinstance(piece, str):
            for token in piece.split():
                words = split_words(token)
                written += words
                spaced += [True] + [False] * (len(words) - 1)
                segments += [len(pause_list)] * len(words)
        elif pause_list and pause_list[-1].after_word == len(written) - 1:
            pause_list[-1] = Pause(pause_list[-1].seconds + piece, len(written) - 1)
        else:
            pause_list.append(Pause(piece, len(written) - 1))
    return written, spaced, segments, pause_list


def _normalized(respelled, segments: Sequence[int], language: str, normalize: bool):
    """Per written word: spoken text, the word that says it, and the notes."""
    tokens: List[Tuple[str, int]] = [(token, index) for index, item in enumerate(respelled)
                                     for token in split_words(item.text)]
    said = [token for token, _ in tokens]
    said_by = list(range(len(tokens)))
    notes: Tuple[str, ...] = ()
    if normalize:
        said, said_by = [], []
        by_segment = itertools.groupby(range(len(tokens)), lambda n: segments[tokens[n][1]])
        for _, group in by_segment:
            members = list(group)
            result = normalizer.normalize_tokens([tokens[n][0] for n in members], language)
            said += result.spoken
            said_by += [members[other] for other in result.said_by]
            notes = notes or result.notes
    spoken = [""] * len(respelled)
    spoken_by = [item.spoken_by for item in respelled]
    for n, (_, index) in enumerate(tokens):
        if said[n]:
            spoken[index] = (spoken[index] + " " + said[n]).strip()
        elif said_by[n] != n and not spoken[index]:
            spoken_by[index] = tokens[said_by[n]][1]
    return spoken, spoken_by, notes


def _without_emoji(text: str) -> str:
    return "".join(cluster for cluster in graphemes(text) if not _is_emoji(cluster))


def _is_emoji(cluster: str) -> bool:
    return any((unicodedata.category(char) == "So" and ord(char) >= 0x2190)
               or 0x1F1E6 <= ord(char) <= 0x1F1FF or 0x1F3FB <= ord(char) <= 0x1F3FF
               for char in cluster)


def _joined_punctuation(written, spoken, spoken_by, segments) -> List[Word]:
    """Words with emoji taken out of their speech; a word left with no letter or
    digit says nothing, or, if it is closing punctuation, joins the spoken word
    before it in the same segment."""
    words: List[Word] = []
    last_spoken = -1
    for index, text in enumerate(written):
        said = " ".join(_without_emoji(part) for part in spoken[index].split()).strip()
        owner = spoken_by[index]
        if said and not cleaning.has_something_to_say(said):
            joins = (set(said) <= _JOINS_PREVIOUS and last_spoken >= 0
                     and segments[last_spoken] == segments[index])
            if joins:
                previous = words[last_spoken]
                words[last_spoken] = Word(previous.text, previous.spoken + said,
                                          previous.spoken_by)
                owner = last_spoken
            said = ""
        if said:
            last_spoken = index
        words.append(Word(text, said, owner))
    return words


def written_spans(prepared: PreparedText, units: Sequence[Unit],
                  spans: Sequence[Span]) -> List[Span]:
    """Per written word, its span from per-spoken-word spans: the first timed
    spoken word's start to the last one's end, the lowest confidence; a word
    spoken by another ("000" in "1 000") takes that word's span; ``None``
    where no spoken word of it was timed. ``units`` are the spoken words the
    spans belong to (``prepared.units``, or the chunks' units in order)."""
    if len(units) != len(spans):
        raise ValueError(f"{len(spans)} spans for {len(units)} spoken words")
    out: List[Span] = [None] * len(prepared.words)
    for (_, index), span in zip(units, spans):
        if span is None:
            continue
        current = out[index]
        if current is None:
            out[index] = span
            continue
        confidences = [c for c in (current[2], span[2]) if c is not None]
        out[index] = (current[0], span[1], min(confidences) if confidences else None)
    for index, word in enumerate(prepared.words):
        if out[index] is None and word.spoken_by != index:
            out[index] = out[word.spoken_by]
    return out

