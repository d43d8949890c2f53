"""Junk a reviewer may pay for: exact, cheap checks of a rewrite's text (no model).

The depth-3 pack showed what a 135M reviewer rewards that a person would not: the same table
pasted twice, JSON cut off inside a key, tables of placeholders (``| ancient_grain1 | 250 |``) and
phrases copied from an action's demonstration (GitHub issue 18). Each detector here is exact and
conservative (a coherent table, working code or valid JSON passes) and returns the offending
snippet, or None. :func:`junk_reasons` runs them on one rewrite and keeps only junk the rewrite
brought in: a seed's own quirks are not the rewrite's doing.

Data blocks are what the complicate-input action adds below an instruction
(:data:`teams_env.actions.DATA_OPENERS`): Markdown tables, fenced code and JSON.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from teams_env.actions import ACTIONS, DATA_REFERENCES
from teams_env.reward.elimination import STOP_WORDS

BlockKind = Literal["table", "code", "json"]
BLOCK_KINDS: tuple[BlockKind, ...] = ("table", "code", "json")

SNIPPET_CHARS = 160
"""Snippets are cut to this length: enough to recognise the junk in a report."""

SPAN_WORDS = 6
"""A copied demonstration phrase: this many consecutive words (shorter spans are common English)."""

_WORD = re.compile(r"[a-z0-9']+")
_SEPARATOR_ROW = re.compile(r"^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?$")
_FENCE = "```"
_OPENER = {")": "(", "]": "[", "}": "{"}


@dataclass(frozen=True)
class Block:
    """A data block of a text."""

    kind: BlockKind
    lines: tuple[str, ...]
    """Its content: the table's rows, the code between the fences, the JSON text."""

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _snippet(text: str) -> str:
    text = text.strip()
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 3] + "..."


def _normal(line: str) -> str:
    return " ".join(line.split())


def _looks_like_json(line: str) -> bool:
    """A line that opens JSON: ``{`` or ``[`` then what JSON allows next. "[Insert name]" and
    "{% highlight %}" are not JSON."""
    if line[:1] == "{":
        return line[1:2] in ("", '"', "}") or line[1:2].isspace()
    if line[:1] == "[":
        rest = line[1:2]
        return rest in ("", "{", "[", '"', "]", "-") or rest.isspace() or rest.isdigit()
    return False


def _json_depth(line: str, stack: list[str]) -> bool:
    """Push and pop the brackets of ``line`` outside JSON strings; False on a closer that matches
    no opener (the stack is left as it was at the mismatch)."""
    in_string = escaped = False
    for char in line:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append(char)
        elif char in "}]" and (not stack or stack.pop() != _OPENER[char]):
            return False
    return True


def split_blocks(text: str) -> tuple[list[Block], list[str]]:
    """The data blocks of ``text`` and its prose lines (every line outside a block)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    prose: list[str] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith(_FENCE):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(_FENCE)), None)
            stop = len(lines) if end is None else end
            blocks.append(Block("code", tuple(lines[i + 1 : stop])))
            i = stop + 1
        elif stripped.startswith("|"):
            end = i
            while end < len(lines) and lines[end].strip().startswith("|"):
                end += 1
            if end - i >= 2:  # a header and a row at least; one "|" line is prose
                blocks.append(Block("table", tuple(line.strip() for line in lines[i:end])))
            else:
                prose.append(lines[i])
            i = end
        elif _looks_like_json(stripped):
            stack: list[str] = []
            end = i
            # JSON has no blank line and no fence: there a block cut off has ended.
            while end < len(lines) and lines[end].strip() and not lines[end].strip().startswith(_FENCE):
                balanced = _json_depth(lines[end], stack)
                end += 1
                if not balanced or not stack:
                    break  # closed, or a stray closer ended it
            blocks.append(Block("json", tuple(lines[i:end])))
            i = end
        else:
            prose.append(lines[i])
            i += 1
    return blocks, prose


def _table_rows(block: Block) -> list[str]:
    return [_normal(row) for row in block.lines if not _SEPARATOR_ROW.match(row.strip())]


def _nontrivial(line: str) -> bool:
    """A line whose repetition means something: 3 words or 20 characters (not "}" or "return x")."""
    return len(re.findall(r"\w+", line)) >= 3 or len(line) >= 20


def _repeats(text: str) -> Iterator[str]:
    blocks, prose = split_blocks(text)
    # Line by line: prose and table rows. Code and JSON lines legitimately repeat ("for x in xs:",
    # '"unit": "grams",'), so those blocks are compared whole below.
    lines = [_normal(line) for line in prose] + [
        row for b in blocks if b.kind == "table" for row in _table_rows(b)
    ]
    for line, count in Counter(lines).items():
        if count >= 2 and _nontrivial(line):
            yield _snippet(line)
    # A table pasted twice in a row parses as one table whose header comes back in its body.
    for rows in (_table_rows(b) for b in blocks if b.kind == "table"):
        if rows[0] in rows[1:]:
            yield _snippet(rows[0])
    # A whole block (or its content pasted elsewhere as prose) occurring twice.
    flat = "\n".join(
        _normal(line)
        for line in text.splitlines()
        if line.strip() and not _SEPARATOR_ROW.match(line.strip()) and not line.strip().startswith(_FENCE)
    )
    for block in blocks:
        content = "\n".join(_table_rows(block) if block.kind == "table" else map(_normal, block.lines))
        content = "\n".join(line for line in content.splitlines() if line)
        if len(content) >= 20 and flat.count(content) >= 2:
            yield _snippet(content)


def repeated_block(text: str) -> str | None:
    """A block repeated in ``text``: a prose line or table row of at least 3 words (or 20
    characters) that occurs twice, a table whose header row comes back in its body, or a code,
    table or JSON block whose content occurs twice. A small expert that runs out of ideas pastes
    what it already wrote; the reviewer sees more text and calls it new."""
    return next(_repeats(text), None)


def _gram_list(text: str, n: int = SPAN_WORDS) -> list[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def _grams(text: str) -> set[tuple[str, ...]]:
    return set(_gram_list(text))


@functools.cache
def demonstration_spans() -> frozenset[tuple[str, ...]]:
    """The 6-word spans of the demonstrations' rewrites that their own instructions lack (what the
    demonstration added), without spans of stop words only."""
    spans: set[tuple[str, ...]] = set()
    for action in ACTIONS:
        for before, after in action.demonstrations:
            # The sentence that introduces complicate-input data is the action's own template (every
            # such rewrite has it), not a phrase copied from a demonstration: no span crosses it.
            for part in re.split("|".join(map(re.escape, DATA_REFERENCES.values())), after):
                spans |= _grams(part) - _grams(before)
    return frozenset(span for span in spans if not all(word in STOP_WORDS for word in span))


def demonstration_leak(before: str, after: str) -> str | None:
    """A 6-word span of an action's demonstration rewrite that ``after`` has and ``before`` had not.
    The demonstrations are earlier chat turns; a small expert copies their additions ("a
    university student living alone on a part-time income") into any instruction, and the
    reviewer rewards the copy as new."""
    spans, earlier = demonstration_spans(), _grams(before)
    return next((" ".join(g) for g in _gram_list(after) if g in spans and g not in earlier), None)


_STRING = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'")
_COMMENT = re.compile(r"(?:^|\s)#\s.*$")  # "# note", not CSS "#id {" or C "#include"


def _code_balanced(lines: tuple[str, ...]) -> bool:
    """Brackets of code balance, outside string literals and ``# `` comments."""
    stack: list[str] = []
    for line in lines:
        for char in _COMMENT.sub("", _STRING.sub('""', line)):
            if char in "([{":
                stack.append(char)
            elif char in _OPENER and (not stack or stack.pop() != _OPENER[char]):
                return False
    return not stack


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def _malformations(text: str) -> Iterator[str]:
    fences = [line for line in text.splitlines() if line.strip().startswith(_FENCE)]
    if len(fences) % 2:
        yield _snippet(text[text.rfind(fences[-1].strip()) :])
    for block in split_blocks(text)[0]:
        broken = block.kind == "json" and not _parses(block.text)
        broken |= block.kind == "code" and not _code_balanced(block.lines)
        if broken:
            yield _snippet("\n".join(block.lines[-3:]))


def malformed_data(text: str) -> str | None:
    """Data cut off or broken: an odd number of ``` fences (a code block never closed), code whose
    brackets do not balance (outside strings and comments), or JSON that does not parse (cut off
    inside a key, a trailing comma). The expert stops mid-block or loses track of its brackets; the
    reviewer judges the text, not whether it parses."""
    return next(_malformations(text), None)


_PLACEHOLDER = re.compile(
    r"""^(?:
        \.{2,}|…                        # ... or …
        |<[a-z _-]+>|\[[a-z _-]+\]      # <name>, [value]
        |n/?a|tbd|tba|todo|x{2,}|\?+    # N/A, TBD, xxx, ???
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_NUMBERED = re.compile(r"^([A-Za-z][a-z]*(?:_[a-z]+)*?)_?(\d{1,3})$")
"""An identifier plus a number: ``item1``, ``ancient_grain1``, ``value_2``."""


def _numbered_placeholders(cells: list[str]) -> set[str]:
    """Cells that number a made-up name: snake_case (``ancient_grain1``, ``value_2``; no name in a
    table is written so), or a stem numbered at least twice (``item1``, ``item2``). A lone
    ``python3`` or ``Windows10`` is a real name."""
    numbered = {cell: _NUMBERED.match(cell) for cell in cells}
    numbers: dict[str, set[str]] = {}
    for match in filter(None, numbered.values()):
        numbers.setdefault(match[1].lower(), set()).add(match[2])
    return {
        cell
        for cell, match in numbered.items()
        if match and ("_" in cell or len(numbers[match[1].lower()]) >= 2)
    }


def _body_cells(block: Block) -> list[str]:
    rows = [row for row in block.lines if not _SEPARATOR_ROW.match(row)]
    return [cell.strip() for row in rows[1:] for cell in row.strip().strip("|").split("|")]


def _placeholder_tables(text: str) -> Iterator[str]:
    for block in split_blocks(text)[0]:
        if block.kind != "table":
            continue
        cells = _body_cells(block)
        numbered = _numbered_placeholders(cells)
        placeholders = sum(
            bool(_PLACEHOLDER.match(cell)) or "lorem ipsum" in cell.lower() or cell in numbered
            for cell in cells
        )
        empty = sum(not cell for cell in cells)
        if cells and (placeholders + empty) * 2 >= len(cells) and (placeholders or empty == len(cells)):
            yield _snippet(block.text)


def placeholder_table(text: str) -> str | None:
    """A Markdown table whose body is mostly placeholders: at least half its cells empty or
    placeholders (``...``, ``<x>``, ``[x]``, N/A, TBD, xxx, ``ancient_grain1``, ``item1`` beside
    ``item2``, lorem ipsum), with at least one placeholder or nothing at all. A fill-in table (real
    questions, empty answers) passes: empty cells alone do not make it junk. The expert fills the
    format it was asked for with names it makes up; the reviewer sees a table and calls it data."""
    return next(_placeholder_tables(text), None)


def _kind_counts(text: str) -> Counter[str]:
    return Counter(block.kind for block in split_blocks(text)[0])


def added_data(before: str, after: str) -> list[str]:
    """The kinds of data block (table, code, json) ``after`` has more of than ``before``: what a
    rewrite added, kept apart from data the instruction already carried."""
    grown = _kind_counts(after) - _kind_counts(before)
    return [kind for kind in BLOCK_KINDS if grown[kind]]


_REFERENCE = re.compile(
    r"\b(?:tables?|code|data|json|snippets?|functions?|lists?|dataset|arrays?|objects?|csv|records?"
    r"|rows?|columns?|entries|program|script|below|following|above|given|provided"
    r"|(?:this|these)\s+[a-z]+)\b",
    re.IGNORECASE,
)


def unreferenced_data(before: str, after: str) -> str | None:
    """Data added (:func:`added_data`) while the prose of ``after`` outside its blocks names no data
    ("table", "code", "json", "list", "below", "the following", "this X", ...): a table pasted under
    a question it has nothing to do with. A heuristic, for audits only: the prose may refer to the
    data in words this list lacks, or use one of these words about something else."""
    kinds = added_data(before, after)
    if not kinds:
        return None
    blocks, prose = split_blocks(after)
    if _REFERENCE.search("\n".join(prose)):
        return None
    added = next(block for block in reversed(blocks) if block.kind in kinds)
    return _snippet(added.text) or f"(an empty {added.kind} block)"


_STEP = r"(?:first|firstly|then|second|secondly|next|third|thirdly|finally|lastly|after that)"
_DEFINE_TOPIC = re.compile(
    rf"\b{_STEP},?\s+(?:explain|describe|define|state)\s+what\s+(?P<topic>[^.,;:!?\n]{{2,80}}?)\s+(?:is|are|means?)\b",
    re.IGNORECASE,
)
_GIVE_ANSWER = re.compile(
    rf"\b{_STEP},?\s+(?:give|state|provide|write)\s+(?:the|your|an)\s+(?:final\s+)?answer\b", re.IGNORECASE
)


def _filler_steps(before: str, after: str) -> Iterator[str]:
    topic_words = set(content_words(before))
    for match in _DEFINE_TOPIC.finditer(after):
        words = content_words(match["topic"])
        # "First, explain what sleep is" about the instruction's own topic: a step that adds nothing.
        if words and all(word in topic_words for word in words):
            yield _snippet(match.group(0))
    for match in _GIVE_ANSWER.finditer(after):
        yield _snippet(match.group(0))


def filler_steps(before: str, after: str) -> str | None:
    """A reasoning step that is a template, not reasoning: "First, explain what X is" where X is
    the instruction's own topic (every word of it from the instruction), or "Then, give the
    answer" as a step. The prompted 135M expert pads most increase-reasoning rewrites this way,
    and the review head paid for the extra sentences (issue 26's reading)."""
    inherited = set(_filler_steps(before, before))
    return next((found for found in _filler_steps(before, after) if found not in inherited), None)


_INPUT_REFERENCE = re.compile(
    r"\b(?:the|this|these)\s+(?:following\s+)?(?:table|code|json|data|dataset|list|passage|text|snippet"
    r"|function|program|script|csv|items?|records?)\s+(?:below|above)\b"
    r"|\bthe\s+following\s+(?:table|code|json|data|dataset|passage|text|snippet|function|program|script|csv)\b",
    re.IGNORECASE,
)


def _refers_to_missing_input(text: str) -> str | None:
    request, _, rest = text.strip().partition("\n")
    if rest.strip():  # something follows the first line: the input may be there
        return None
    found = _INPUT_REFERENCE.search(request)
    if found is None or re.search(r":\s*\S", request[found.end() :]):  # "the list below: 3, 1, 2"
        return None
    return _snippet(found.group(0))


def missing_input(before: str, after: str) -> str | None:
    """``after`` refers to input ("the table below", "the following code", "the list above") and
    carries none: it is one line. Rewrites that keep an instruction's request but drop its table or
    code read as fine to the review head and are unanswerable. Not counted where ``before`` was
    already so (the rewrite did not drop anything)."""
    if _refers_to_missing_input(before) is not None:
        return None
    return _refers_to_missing_input(after)


def content_words(text: str) -> list[str]:
    """Words of at least 3 letters that are no stop words, a plural's final s dropped."""
    words = (w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 3 and w not in STOP_WORDS)
    return [w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words]


def _first_new(findings: Callable[[str], Iterator[str]], before: str, after: str) -> str | None:
    """The first finding in ``after`` that ``before`` does not have: junk the rewrite brought in,
    not junk it inherited."""
    inherited = set(findings(before))
    return next((found for found in findings(after) if found not in inherited), None)


Detector = Callable[[str, str], str | None]

EXACT_DETECTORS: dict[str, Detector] = {
    "repeated_block": functools.partial(_first_new, _repeats),
    "demonstration_leak": demonstration_leak,
    "malformed_data": functools.partial(_first_new, _malformations),
    "placeholder_table": functools.partial(_first_new, _placeholder_tables),
}
"""The exact detectors, as ``(before, after) -> snippet | None`` for junk ``after`` brings in."""

JUDGE_DETECTORS: dict[str, Detector] = {"filler_steps": filler_steps, "missing_input": missing_input}
"""Exact detectors that belong to a judge: a review head names those it applies
(:attr:`~teams_env.reward.review_head.ReviewHead.rules`), so a pack recorded under an older head
keeps the rules it was recorded with."""

HEURISTIC_DETECTORS: dict[str, Detector] = {"unreferenced_data": unreferenced_data}
"""Detectors that guess from word lists: audits report them apart from the exact ones."""


def junk_reasons(before: str, after: str, *, heuristics: bool = False) -> dict[str, str]:
    """Detector name -> snippet for each exact detector that finds junk ``after`` brings in over
    ``before``; with ``heuristics``, also the heuristic ones (:data:`HEURISTIC_DETECTORS`)."""
    detectors = EXACT_DETECTORS | (HEURISTIC_DETECTORS if heuristics else {})
    found = {name: detector(before, after) for name, detector in detectors.items()}
    return {name: snippet for name, snippet in found.items() if snippet is not None}
