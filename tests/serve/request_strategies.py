"""Hypothesis strategies for HTTP requests a hostile or broken client may send to the bot server.

Shared by ``test_serve_fuzz.py`` (a few hundred examples in the suite) and
``bench/hostile.py`` (10,000). A request is ``(method, path, headers,
body)``; bodies range from the contract's JSON with a plausible PGN, through
JSON of every wrong shape and PGNs built from PGN's own tokens in the wrong
order, to arbitrary bytes.
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

PATHS = ["/", "/move", "/health", "/static/app.js", "/static/../../etc/passwd", "/static/x.svg", "/nope", "/move/"]
METHODS = ["POST", "POST", "POST", "GET", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"]
SAN = ["e4", "e5", "d4", "d5", "Nf3", "Nc6", "Bb5", "a6", "O-O", "O-O-O", "exd5", "Qxf7#", "e8=Q", "Kxe2", "--",
       "Z0", "0-0", "Nbd2", "R1a3", "h8=N+", "@e4", "P@e4", "e.p."]
TOKENS = SAN + ["1.", "2...", "(", ")", "{", "}", "{ a comment }", ";", "; rest of line\n", "$1", "!", "??", "!?",
                "*", "1-0", "0-1", "1/2-1/2", "\n", "\n\n", "%escape\n", '[Event "x"]\n', '[FEN "8/8/8/8/8/8/8/8 w - - 0 1"]\n',
                '[FEN "4k3/P7/8/8/8/8/8/4K3 w - - 0 1"]\n', '[Variant "Atomic"]\n', '[SetUp "1"]\n', "[", "]", '"', "\\",
                "\x00", "é", "♞", " "]

pgn_texts = st.one_of(
    st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join),
    st.lists(st.sampled_from(SAN), max_size=40).map(lambda moves: " ".join(
        f"{i // 2 + 1}. {m}" if i % 2 == 0 else m for i, m in enumerate(moves))),
    st.text(max_size=200),
    st.just(""),
)
"""PGN-shaped text: tokens of PGN in any order, numbered moves (mostly illegal after a few), any text."""

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)

timelefts = st.one_of(st.integers(min_value=0, max_value=300), st.integers(), st.sampled_from([0, 1, 10**18, -1, 2**53]))


@st.composite
def move_bodies(draw: st.DrawFn) -> bytes:
    """Bodies for POST /move: the contract's fields with right and wrong types, extras, or no JSON at all."""
    kind = draw(st.sampled_from(["contract", "contract", "wrong-types", "any-json", "bytes", "broken-json"]))
    if kind == "contract":
        data: object = {"pgn": draw(pgn_texts), "timeleft": draw(timelefts)}
        if draw(st.booleans()):
            data[draw(st.text(max_size=8))] = draw(json_values)
    elif kind == "wrong-types":
        data = {"pgn": draw(st.one_of(pgn_texts, json_values)), "timeleft": draw(st.one_of(timelefts, json_values))}
        for key in draw(st.lists(st.sampled_from(["pgn", "timeleft"]), max_size=2)):
            data.pop(key, None)
    elif kind == "any-json":
        data = draw(json_values)
    elif kind == "bytes":
        return draw(st.binary(max_size=300))
    else:
        text = json.dumps({"pgn": draw(pgn_texts), "timeleft": draw(timelefts)})
        cut = draw(st.integers(min_value=0, max_value=len(text)))
        return (text[:cut] + draw(st.text(max_size=5))).encode("utf-8", "surrogatepass")
    return json.dumps(data).encode()


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes]:
    """``(method, path, headers, body)``: mostly POST /move, and every other route and method."""
    if draw(st.integers(min_value=0, max_value=9)) < 7:
        method, path = "POST", "/move"
    else:
        method, path = draw(st.sampled_from(METHODS)), draw(st.sampled_from(PATHS) | st.text(min_size=1, max_size=20).map(
            lambda t: "/" + "".join(c for c in t if c.isalnum())))
    headers = {"content-type": draw(st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                                     "multipart/form-data", "", "application/json; charset=latin-1"]))}
    body = draw(move_bodies()) if method in ("POST", "PUT", "PATCH") else b""
    return method, path, headers, body
