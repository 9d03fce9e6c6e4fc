#!/usr/bin/python3
"""Synthetic licence plates in each country's layout: colours, EU strip, fonts, one and two lines.

render_plate(rng) -> (img_rgb uint8 HxWx3, text, two_line): the plate fills the image exactly, so its
four corners are the image corners. Degradations (perspective, blur, noise, glare, dirt, night) are
applied by the callers (training/train_reader.py, training/train_detector.py) where the geometry is known.

Fonts: Debian's DejaVu and Liberation packages plus any folders passed to set_font_dirs() (the plate fonts
in ../shared/data/fonts: GL-Nummernschild, DIN 1451).

  /usr/bin/python3 training/synth.py --fonts ../shared/data/fonts --out /tmp/synth.png   # a contact sheet
"""
import argparse
import glob
import json
import math
import os
import re

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"

_font_dirs = ["/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation2"]
_fonts = None
_font_cache = {}

FORMATS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "plate_formats.json")
# The generic US layout is a catch-all; vanity plates (letters only, an O) are real and stay in training.
UNCHECKED_COUNTRIES = ("us",)
_MAX_DRAWS = 1000  # every generator below fits at least 1 draw in 10
_patterns = None

PLATE_FONT_HINTS = ("Nummernschild", "din1451")
GENERIC_FONT_HINTS = ("DejaVuSansCondensed-Bold", "DejaVuSans-Bold", "LiberationSans-Bold", "DejaVuSansMono-Bold",
                      "LiberationMono-Bold")


def set_font_dirs(dirs):
    global _font_dirs, _fonts
    _font_dirs = list(dirs) + _font_dirs
    _fonts = None


def _all_fonts():
    global _fonts
    if _fonts is None:
        found = []
        for d in _font_dirs:
            found += sorted(glob.glob(os.path.join(d, "*.ttf")) + glob.glob(os.path.join(d, "*.otf")))
        plate = [f for f in found if any(h in f for h in PLATE_FONT_HINTS) and f.endswith(".ttf")]
        generic = [f for f in found if any(os.path.basename(f).startswith(h) for h in GENERIC_FONT_HINTS)]
        _fonts = (plate, generic)
    return _fonts


def _font(path, size):
    key = (path, size)
    if key not in _font_cache:
        if len(_font_cache) > 2000:
            _font_cache.clear()
        _font_cache[key] = ImageFont.truetype(path, size)
    return _font_cache[key]


def _pick(rng, s):
    return s[rng.integers(len(s))]


def _gen(rng, spec):
    """spec: L letter, D digit, A alnum, anything else literal."""
    out = []
    for c in spec:
        out.append(_pick(rng, LETTERS) if c == "L" else _pick(rng, DIGITS) if c == "D" else
                   _pick(rng, LETTERS + DIGITS) if c == "A" else c)
    return "".join(out)


def country_patterns():
    """{country: compiled regex} from data/plate_formats.json: the texts the decoder accepts for a country."""
    global _patterns
    if _patterns is None:
        with open(FORMATS_FILE, encoding="utf-8") as f:
            data = json.load(f)
        by_country = {}
        for fmt in data["formats"]:
            by_country.setdefault(fmt["country"], []).append(f"(?:{fmt['pattern']})")
        _patterns = {c: re.compile("|".join(ps)) for c, ps in by_country.items()}
    return _patterns


def fits_country(country, text):
    """Whether a plate text (spaces and dashes allowed) is one `country` issues, as its formats say."""
    pattern = country_patterns().get(country)
    return pattern is None or pattern.fullmatch(re.sub(r"[^0-9A-Z]", "", text.upper())) is not None


def _draw_text(rng, country, gen):
    """gen(rng) redrawn until the text fits the country's formats (letters a country never issues, such as an
    O on a Czech plate, would teach the reader plates that do not exist and make unfair test plates)."""
    for _ in range(_MAX_DRAWS):
        text = gen(rng)
        joined = "".join(text) if isinstance(text, tuple) else text
        if country in UNCHECKED_COUNTRIES or fits_country(country, joined):
            return text
    raise ValueError(f"{country}: a text generator draws no text that fits the country's formats ({joined!r})")


def _de(rng):
    district = _gen(rng, "L" * int(rng.integers(1, 4)))
    letters = _gen(rng, "L" * int(rng.integers(1, 3)))
    digits = _gen(rng, "D" * int(rng.integers(1, 5 if len(district) + len(letters) <= 4 else 4)))
    if digits[0] == "0":
        digits = "1" + digits[1:]
    return f"{district} {letters} {digits}"


def _fr_old(rng):
    """French FNI (until 2009): 1-4 digits, 1-3 letters, the departement; 8 characters at most."""
    letters = int(rng.choice([1, 2, 3], p=[0.1, 0.6, 0.3]))
    digits = int(rng.integers(1, 9 - 2 - letters)) if letters == 3 else int(rng.integers(1, 5))
    sep = _pick(rng, [" ", " ", "-"])
    return sep.join([_gen(rng, "D" * digits), _gen(rng, "L" * letters), _gen(rng, "DD")])


def _us_free(rng):
    """Layouts of the many states and vanity plates: 5-8 characters of any kind, split in one or two places."""
    n = int(rng.choice([5, 6, 7, 8], p=[0.15, 0.4, 0.35, 0.1]))
    text = _gen(rng, "A" * n) if rng.random() < 0.6 else _gen(rng, "L" * n)
    if rng.random() < 0.6:
        cut = int(rng.integers(2, n - 1))
        text = text[:cut] + " " + text[cut:]
    return text


RO_COUNTIES = ["AB", "AG", "AR", "BC", "BH", "BN", "BR", "BT", "BV", "BZ", "CJ", "CL", "CS", "CT", "CV", "DB", "DJ",
               "GJ", "GL", "GR", "HD", "HR", "IF", "IL", "IS", "MH", "MM", "MS", "NT", "OT", "PH", "SB", "SJ", "SM",
               "SV", "TL", "TM", "TR", "VL", "VN", "VS"]

# country: (strip code, background, text colour, list of display-text generators, two-line generators)
COUNTRIES = {
    "cz": ("CZ", "white", "black", [lambda r: _gen(r, "DLA DDDD"), lambda r: _gen(r, "DLD DDDD")],
           [lambda r: (_gen(r, "DLA"), _gen(r, "DDDD")), lambda r: (_gen(r, "DL"), _gen(r, "DDDDD"))]),
    "sk": ("SK", "white", "black", [lambda r: _gen(r, "LL DDDLL"), lambda r: _gen(r, "LL-DDDLL")],
           [lambda r: (_gen(r, "LL"), _gen(r, "DDDLL"))]),
    "pl": ("PL", "white", "black", [lambda r: _gen(r, "LL DDDDD"), lambda r: _gen(r, "LLL DDDLL"),
                                    lambda r: _gen(r, "LL DDDLL")], [lambda r: (_gen(r, "LL"), _gen(r, "DDDDD"))]),
    "de": ("D", "white", "black", [_de], [lambda r: (_gen(r, "LL LL"), _gen(r, "DDD"))]),
    "at": ("A", "white", "black", [lambda r: _gen(r, "L DDDDDL"), lambda r: _gen(r, "LL DDDLL")],
           [lambda r: (_gen(r, "LL"), _gen(r, "DDDL"))]),
    "hu": ("H", "white", "black", [lambda r: _gen(r, "LLL-DDD"), lambda r: _gen(r, "LL LL-DDD")], []),
    "hr": ("HR", "white", "black", [lambda r: _gen(r, "LL DDDD-LL"), lambda r: _gen(r, "LL DDD-L")], []),
    "si": ("SLO", "white", "black", [lambda r: _gen(r, "LL LL-DDD"), lambda r: _gen(r, "LL L-DDD")], []),
    "ro": ("RO", "white", "black", [lambda r: _pick(r, RO_COUNTIES) + _gen(r, " DD LLL"),
                                    lambda r: "B " + _gen(r, _pick(r, ["DD LLL", "DDD LLL"]))], []),
    "it": ("I", "white", "black", [lambda r: _gen(r, "LL DDDLL")], []),
    "fr": ("F", "white", "black", [lambda r: _gen(r, "LL-DDD-LL"), _fr_old],
           [lambda r: (_gen(r, "LL-DDD"), _gen(r, "LL"))]),
    "es": ("E", "white", "black", [lambda r: _gen(r, "DDDD LLL")], [lambda r: (_gen(r, "DDDD"), _gen(r, "LLL"))]),
    "be": ("B", "white", "#a01010", [lambda r: _gen(r, "D-LLL-DDD")], []),
    "ie": ("IRL", "white", "black", [lambda r: _gen(r, "DD") + _pick(r, "12") + "-" + _pick(r, "CDGLTW") + _gen(r, "-DDDD"),
                                     lambda r: _gen(r, "DD-LL-DDDDD")], []),
    "nl": ("NL", "#f2c400", "black", [lambda r: _gen(r, "LL-DDD-L"), lambda r: _gen(r, "D-LLL-DD"),
                                      lambda r: _gen(r, "LLL-DD-L")], []),
    "uk": ("UK", "white", "black", [lambda r: _gen(r, "LLDD LLL")], [lambda r: (_gen(r, "LLDD"), _gen(r, "LLL"))]),
    "us": (None, "white", "#102a7a", [lambda r: _gen(r, "LLL DDDD"), lambda r: _gen(r, "DLLLDDD"),
                                      lambda r: _gen(r, "LLLDDD"), lambda r: _gen(r, "DDD LLL"),
                                      lambda r: _gen(r, "DLLDDDD"), _us_free], []),
    "br": (None, "#c8c8c8", "black", [lambda r: _gen(r, "LLL-DDDD"), lambda r: _gen(r, "LLLDLDD")],
           [lambda r: (_gen(r, "LLL"), _gen(r, "DDDD"))]),
}

COUNTRY_WEIGHTS = {"cz": 3, "sk": 1.5, "pl": 1.5, "de": 2, "at": 1, "hu": 1, "hr": 1, "si": 1, "ro": 1, "it": 1,
                   "fr": 2, "es": 1.5, "be": 1, "ie": 1, "nl": 1, "uk": 2, "us": 3.5, "br": 2}
US_STATES = ["CALIFORNIA", "TEXAS", "NEW YORK", "FLORIDA", "OHIO", "ILLINOIS", "NEVADA", "ARIZONA", "GEORGIA"]


def _fit_text(draw, text, font_path, box_w, box_h):
    size = max(8, int(box_h * 1.05))
    for _ in range(6):
        f = _font(font_path, size)
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=f)
        h = y1 - y0
        if h <= 0:
            break
        scale = box_h / h
        if abs(scale - 1) < 0.05:
            break
        size = max(8, int(size * scale))
    return _font(font_path, size)


def _draw_line(img, text, font_path, box, colour, rng):
    """Draws text into box (x0, y0, x1, y1), squeezing horizontally if needed."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    tmp_draw = ImageDraw.Draw(img)
    f = _fit_text(tmp_draw, text, font_path, bw, bh)
    tx0, ty0, tx1, ty1 = tmp_draw.textbbox((0, 0), text, font=f)
    tw, th = tx1 - tx0, ty1 - ty0
    layer = Image.new("L", (tw + 4, th + 4), 0)
    ImageDraw.Draw(layer).text((2 - tx0, 2 - ty0), text, font=f, fill=255)
    target_w = min(bw, int(tw * rng.uniform(0.85, 1.1)))
    layer = layer.resize((max(4, target_w), bh))
    px = x0 + (bw - target_w) // 2 + int(rng.integers(-2, 3))
    img.paste(Image.new("RGB", layer.size, colour), (px, y0), layer)


def _emblem(d, box, rng):
    """A state emblem, logo or picture fragment in box (x0, y0, x1, y1): what US plates put between and
    beside the characters, which the reader must learn not to read."""
    x0, y0, x1, y1 = box
    colour = tuple(int(c) for c in rng.integers(0, 220, 3))
    kind = int(rng.integers(5))
    if kind == 0:  # round seal
        d.ellipse(box, fill=colour, outline=tuple(int(c) for c in rng.integers(0, 255, 3)), width=2)
    elif kind == 1:  # state-outline-like polygon
        n = int(rng.integers(5, 9))
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(0.55, 1.0, n)
        d.polygon([(cx + rx * r * np.cos(a), cy + ry * r * np.sin(a)) for a, r in zip(ang, rad)], fill=colour)
    elif kind == 2:  # several strokes: a bird, a wave, a mountain
        for _ in range(int(rng.integers(2, 5))):
            pts = [(float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))) for _ in range(3)]
            d.line(pts, fill=colour, width=int(rng.integers(2, 5)))
    elif kind == 3:  # wheelchair-like pictogram on a blue square
        d.rectangle(box, fill="#1e4fb8")
        w, h = x1 - x0, y1 - y0
        d.ellipse([x0 + w * 0.3, y0 + h * 0.4, x0 + w * 0.8, y0 + h * 0.9], outline="white", width=2)
        d.line([(x0 + w * 0.45, y0 + h * 0.15), (x0 + w * 0.45, y0 + h * 0.6), (x0 + w * 0.8, y0 + h * 0.6)],
               fill="white", width=3)
    else:  # small stacked letters ("DP", "DV", "TRK")
        letters = _pick(rng, ["DP", "DV", "TRK", "DIS", "PP"])
        f = _font(_all_fonts()[1][0] if _all_fonts()[1] else _all_fonts()[0][0], max(8, int((y1 - y0) / len(letters))))
        for i, ch in enumerate(letters):
            d.text(((x0 + x1) / 2, y0 + (i + 0.5) * (y1 - y0) / len(letters)), ch, font=f, fill=colour, anchor="mm")


def two_line_countries():
    """Countries with a two-line (square, motorcycle) layout."""
    return [c for c, spec in COUNTRIES.items() if spec[4]]


def render_plate(rng, country=None, two_line=None):
    """A plate of `country` (None: drawn by COUNTRY_WEIGHTS); two_line None: two lines 18% of the time where the
    country has a two-line layout, True/False: forced (True needs such a layout)."""
    plate_fonts, generic_fonts = _all_fonts()
    if country is None:
        keys = list(COUNTRY_WEIGHTS)
        w = np.array([COUNTRY_WEIGHTS[k] for k in keys], dtype=np.float64)
        country = keys[rng.choice(len(keys), p=w / w.sum())]
    strip, bg, fg, gens, gens2 = COUNTRIES[country]
    if two_line is None:
        two_line = bool(gens2) and rng.random() < 0.18
    elif two_line and not gens2:
        raise ValueError(f"{country} has no two-line layout")
    if country == "uk" and rng.random() < 0.5:
        bg = "#f2c400"
    if country == "us":
        bg = _pick(rng, ["white", "#f4f1e0", "#e8eef8", "#fdf6d8"])
        fg = _pick(rng, ["#102a7a", "#101010", "#7a1010", "#0c5a20"])
    if country == "br" and rng.random() < 0.5:
        bg = "white"  # Mercosul
    fr_old = False
    if country == "fr" and not two_line:
        disp = _draw_text(rng, country, _pick(rng, gens))
        fr_old = disp[2] != "-" or not disp[:2].isalpha()
        if fr_old:  # FNI plates: white front, yellow rear, or the old black plates with silver text
            bg, fg = [("white", "black"), ("#f2c400", "black"), ("#141414", "#d8d8d8")][
                int(rng.choice(3, p=[0.35, 0.45, 0.2]))]
            if bg == "#141414" or rng.random() < 0.4:  # the EU strip is optional on FNI plates
                strip = None
    if rng.random() < 0.15:
        fonts = generic_fonts
    else:
        fonts = plate_fonts if (plate_fonts and country not in ("us",)) else generic_fonts
    if country in ("us", "br", "uk") and generic_fonts and rng.random() < 0.5:
        fonts = generic_fonts
    font_path = _pick(rng, fonts)

    if two_line:
        top, bottom = _draw_text(rng, country, _pick(rng, gens2))
        text = (top + bottom)
        W, H = (int(rng.integers(200, 300)), int(rng.integers(150, 210)))
    else:
        if country != "fr":
            disp = _draw_text(rng, country, _pick(rng, gens))
        text = disp
        if country == "us":
            W, H = 300, 150
        elif country == "br":
            W, H = 400, 130
        else:
            W, H = 520, int(rng.integers(105, 120))
    img = Image.new("RGB", (W, H), bg)
    d = ImageDraw.Draw(img)
    border = max(2, H // 40)
    d.rectangle([1, 1, W - 2, H - 2], outline=fg if rng.random() < 0.7 else "#303030", width=border)
    x_left, x_right = border + 4, W - border - 4
    y_top, y_bottom = border + 4, H - border - 4
    has_strip = strip is not None and (country != "uk" or rng.random() < 0.6)
    if has_strip:
        sw = int(W * (0.085 if not two_line else 0.14))
        d.rectangle([border, border, border + sw, H - border], fill="#1e3fa8")
        for k in range(12):  # the EU stars, roughly
            a = 2 * np.pi * k / 12
            cx, cy, r = border + sw / 2, border + H * (0.3 if not two_line else 0.22), sw * 0.28
            sx, sy = cx + r * np.cos(a), cy + r * np.sin(a)
            d.ellipse([sx - 1.5, sy - 1.5, sx + 1.5, sy + 1.5], fill="#ffd200")
        code_font = _font(generic_fonts[0] if generic_fonts else font_path, max(8, int(sw * 0.45)))
        d.text((border + sw / 2, H * (0.78 if not two_line else 0.6)), strip, font=code_font, fill="white",
               anchor="mm")
        x_left = border + sw + 6
        if country == "it" or (country == "fr" and not fr_old):
            d.rectangle([W - border - sw, border, W - border, H - border], fill="#1e3fa8")
            x_right = W - border - sw - 6
    if country == "at":
        d.rectangle([border, border, W - border, border + H // 10], fill="#c8102e")
        d.rectangle([border, H - border - H // 10, W - border, H - border], fill="#c8102e")
        y_top, y_bottom = border + H // 10 + 3, H - border - H // 10 - 3
    us_gap = None
    if country == "us":
        if rng.random() < 0.35:  # a pictorial background: low-contrast blobs behind the text
            for _ in range(int(rng.integers(2, 6))):
                cx, cy = rng.uniform(0, W), rng.uniform(0, H)
                r = rng.uniform(0.1, 0.4) * W
                tint = tuple(int(c) for c in rng.integers(150, 256, 3))
                d.ellipse([cx - r, cy - r * 0.6, cx + r, cy + r * 0.6], fill=tint)
        if rng.random() < 0.5:  # registration stickers in the top corners
            for cx in ([border + 6] if rng.random() < 0.5 else []) + ([W - border - 36] if rng.random() < 0.7 else []):
                d.rectangle([cx, border + 3, cx + 30, border + 24], fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
                d.text((cx + 15, border + 13), _gen(rng, "DD"), font=_font(generic_fonts[0] if generic_fonts else font_path, 12),
                       fill="black", anchor="mm")
        if rng.random() < 0.3:  # a graphic or stacked letters left of the characters
            gw = int(W * rng.uniform(0.1, 0.2))
            _emblem(d, (x_left, int(H * 0.3), x_left + gw, int(H * 0.8)), rng)
            x_left += gw + 4
        if " " in disp and rng.random() < 0.5:  # an emblem in the gap between the two groups
            us_gap = rng.uniform(0.6, 1.1)
        state = _pick(rng, US_STATES)
        sf = _font(generic_fonts[0] if generic_fonts else font_path, int(H * 0.14))
        d.text((W / 2, border + H * 0.1), state, font=sf, fill=_pick(rng, ["#7a1010", "#102a7a", "#202020"]),
               anchor="mm")
        y_top = int(H * 0.24)
        y_bottom = int(H * 0.84)
        if rng.random() < 0.5:
            d.text((W / 2, H * 0.91), _pick(rng, ["DMV.CA.GOV", "THE LONE STAR STATE", "SUNSHINE STATE"]),
                   font=_font(generic_fonts[0] if generic_fonts else font_path, int(H * 0.08)), fill="#303030",
                   anchor="mm")
    if country == "br":
        if bg == "white":
            d.rectangle([border, border, W - border, border + int(H * 0.2)], fill="#1e3fa8")
            d.text((W / 2, border + H * 0.1), "BRASIL", font=_font(generic_fonts[0], int(H * 0.13)), fill="white",
                   anchor="mm")
        else:
            d.text((W / 2, border + H * 0.1), _pick(rng, ["SP SAO PAULO", "RJ RIO DE JANEIRO", "MG BELO HORIZONTE"]),
                   font=_font(generic_fonts[0], int(H * 0.12)), fill="#202020", anchor="mm")
        y_top = int(H * 0.26)
    if two_line:
        mid = (y_top + y_bottom) // 2
        gap = int(H * 0.04)
        _draw_line(img, top, font_path, (x_left, y_top, x_right, mid - gap), fg, rng)
        _draw_line(img, bottom, font_path, (x_left, mid + gap, x_right, y_bottom), fg, rng)
    elif us_gap is not None:
        pad = int((y_bottom - y_top) * rng.uniform(0.02, 0.12))
        left, right = disp.split(" ", 1)
        unit = (x_right - x_left) / (len(left) + len(right) + us_gap)
        xl = x_left + int(unit * len(left))
        xr = x_right - int(unit * len(right))
        _draw_line(img, left, font_path, (x_left, y_top + pad, xl, y_bottom - pad), fg, rng)
        _draw_line(img, right, font_path, (xr, y_top + pad, x_right, y_bottom - pad), fg, rng)
        h = y_bottom - y_top - 2 * pad
        _emblem(ImageDraw.Draw(img), (xl + 2, y_top + pad + h // 5, max(xl + 6, xr - 2), y_bottom - pad - h // 5), rng)
    else:
        pad = int((y_bottom - y_top) * rng.uniform(0.02, 0.12))
        _draw_line(img, disp, font_path, (x_left, y_top + pad, x_right, y_bottom - pad), fg, rng)
    arr = np.asarray(img).copy()
    return arr, "".join(c for c in text if c.isalnum()).upper(), two_line


def plate_quad(rng, pw, ph, tw):
    """Perspective view of a pw x ph plate scaled to ~tw px wide: 4x2 corners around (0, 0), in the order
    top-left, top-right, bottom-right, bottom-left. Yaw mostly within +-30 degrees, pitch +-20, roll mostly
    small."""
    yaw = math.radians(rng.uniform(-30, 30) if rng.random() < 0.8 else rng.uniform(-45, 45))
    pitch = math.radians(rng.uniform(-20, 20))
    roll = math.radians(rng.normal(0, 5) if rng.random() < 0.75 else rng.uniform(-30, 30))
    k = tw / pw
    pts = np.array([[-pw / 2, -ph / 2, 0], [pw / 2, -ph / 2, 0], [pw / 2, ph / 2, 0], [-pw / 2, ph / 2, 0]]) * k
    cy_, sy_ = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    Ry = np.array([[cy_, 0, sy_], [0, 1, 0], [-sy_, 0, cy_]])
    Rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    Rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    p = pts @ (Rz @ Ry @ Rx).T
    f = tw * rng.uniform(1.5, 5.0)
    z = f + p[:, 2]
    q = p[:, :2] * (f / z)[:, None]
    return q.astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fonts", action="append", default=[], help="extra font folder (repeatable)")
    ap.add_argument("--out", default="/tmp/synth.png")
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    set_font_dirs(a.fonts)
    rng = np.random.default_rng(a.seed)
    tiles = []
    for _ in range(a.n):
        img, text, two = render_plate(rng)
        tile = Image.fromarray(img).resize((260, 60) if not two else (120, 90))
        canvas = Image.new("RGB", (280, 110), "gray")
        canvas.paste(tile, (10, 5))
        ImageDraw.Draw(canvas).text((10, 95), text + (" (2 lines)" if two else ""), fill="yellow")
        tiles.append(canvas)
    cols = 4
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (280 * cols, 110 * rows))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % cols) * 280, (i // cols) * 110))
    sheet.save(a.out)
    print(a.out)


if __name__ == "__main__":
    main()
