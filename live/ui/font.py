"""Large type for the 'Now' panel: a 5-pixel-high bitmap font drawn with half blocks in 3 rows.

Plain text in the end (no colours of its own), so it reads in `tmux capture-pane` too. Letters
are upper-cased; characters without a glyph print as '?'.
"""

from __future__ import annotations

# '#' = pixel on; each glyph is 5 rows of equal width (mostly 3, wider for M, N, W)
_GLYPHS: dict[str, tuple[str, ...]] = {
    "A": (".#.", "#.#", "###", "#.#", "#.#"),
    "B": ("##.", "#.#", "##.", "#.#", "##."),
    "C": (".##", "#..", "#..", "#..", ".##"),
    "D": ("##.", "#.#", "#.#", "#.#", "##."),
    "E": ("###", "#..", "##.", "#..", "###"),
    "F": ("###", "#..", "##.", "#..", "#.."),
    "G": (".##", "#..", "#.#", "#.#", ".##"),
    "H": ("#.#", "#.#", "###", "#.#", "#.#"),
    "I": ("###", ".#.", ".#.", ".#.", "###"),
    "J": ("..#", "..#", "..#", "#.#", ".#."),
    "K": ("#.#", "##.", "#..", "##.", "#.#"),
    "L": ("#..", "#..", "#..", "#..", "###"),
    "M": ("#...#", "##.##", "#.#.#", "#...#", "#...#"),
    "N": ("#..#", "##.#", "#.##", "#..#", "#..#"),
    "O": (".#.", "#.#", "#.#", "#.#", ".#."),
    "P": ("##.", "#.#", "##.", "#..", "#.."),
    "Q": (".#.", "#.#", "#.#", "##.", ".##"),
    "R": ("##.", "#.#", "##.", "#.#", "#.#"),
    "S": (".##", "#..", ".#.", "..#", "##."),
    "T": ("###", ".#.", ".#.", ".#.", ".#."),
    "U": ("#.#", "#.#", "#.#", "#.#", "###"),
    "V": ("#.#", "#.#", "#.#", "#.#", ".#."),
    "W": ("#...#", "#...#", "#.#.#", "##.##", "#...#"),
    "X": ("#.#", "#.#", ".#.", "#.#", "#.#"),
    "Y": ("#.#", "#.#", ".#.", ".#.", ".#."),
    "Z": ("###", "..#", ".#.", "#..", "###"),
    "0": ("###", "#.#", "#.#", "#.#", "###"),
    "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("##.", "..#", ".#.", "#..", "###"),
    "3": ("##.", "..#", ".#.", "..#", "##."),
    "4": ("#.#", "#.#", "###", "..#", "..#"),
    "5": ("###", "#..", "##.", "..#", "##."),
    "6": (".##", "#..", "###", "#.#", "###"),
    "7": ("###", "..#", ".#.", ".#.", ".#."),
    "8": ("###", "#.#", "###", "#.#", "###"),
    "9": ("###", "#.#", "###", "..#", "##."),
    "_": ("...", "...", "...", "...", "###"),
    "-": ("...", "...", "###", "...", "..."),
    ".": (".", ".", ".", ".", "#"),
    " ": ("..", "..", "..", "..", ".."),
    "?": ("##.", "..#", ".#.", "...", ".#."),
}

_HALF = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
ROWS = 3


def big_width(text: str, scale: int = 1) -> int:
    """Columns `big_text(text, scale)` takes."""
    glyphs = [_GLYPHS.get(ch, _GLYPHS["?"]) for ch in text.upper()]
    return scale * (sum(len(g[0]) for g in glyphs) + max(0, len(glyphs) - 1))


def big_text(text: str, scale: int = 1) -> list[str]:
    """Lines of equal length that spell `text` in large letters.

    Scale 1: 3 lines of half blocks; scale 2: 5 lines of full blocks, two columns per pixel.
    """
    glyphs = [_GLYPHS.get(ch, _GLYPHS["?"]) for ch in text.upper()]
    if scale == 2:
        rows = [".".join(g[r] for g in glyphs) for r in range(5)]
        return [row.replace("#", "██").replace(".", "  ") for row in rows]
    pixels = ["", "", "", "", "", ""]  # 5 pixel rows + a blank 6th for the half-block pairing
    for i, g in enumerate(glyphs):
        sep = "." if i else ""
        for r in range(5):
            pixels[r] += sep + g[r]
        pixels[5] += sep + "." * len(g[0])
    lines = []
    for r in range(0, 6, 2):
        top, bottom = pixels[r], pixels[r + 1]
        lines.append("".join(_HALF[(a == "#", b == "#")] for a, b in zip(top, bottom, strict=True)))
    return lines
