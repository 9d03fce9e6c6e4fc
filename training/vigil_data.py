#!/usr/bin/python3
"""Dataset importers, a dataset check and the seeded train/test split.

Formats (auto-detected): Pascal VOC XML (labelImg), YOLO txt, the OpenALPR benchmark txt format and the
"xml_to_csv" CSV (filename,width,height,class,xmin,ymin,xmax,ymax[,text]). The split is the same as the
C++ side's (include/vigil/dataset.hpp): an image is in the test part when
fnv1a64("<seed>:<file name>") % 10000 < test_fraction * 10000.

  /usr/bin/python3 training/vigil_data.py check DATASET...     # images that do not decode / lie about type
  /usr/bin/python3 training/vigil_data.py stats DATASET... [--split test]
  /usr/bin/python3 training/vigil_data.py list DATASET... --split train   # image paths, one per line
"""
import argparse
import csv
import os
import re
import sys
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class Plate:
    x: float
    y: float
    w: float
    h: float
    text: str = ""
    country: str = ""  # ISO code, lower case, where the dataset says it
    lines: int = 0  # 1 or 2 where the dataset says it, else 0


@dataclass
class Sample:
    path: str
    width: int = 0
    height: int = 0
    boxes_normalized: bool = False
    plates: list = field(default_factory=list)

    def boxes_px(self, img_w, img_h):
        """Plates with boxes in pixels of an image of the given size."""
        if not self.boxes_normalized:
            return list(self.plates)
        return [Plate(p.x * img_w, p.y * img_h, p.w * img_w, p.h * img_h, p.text, p.country, p.lines)
                for p in self.plates]


def normalize_plate(text):
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def split_hash(seed, file_name):
    h = 1469598103934665603
    for b in f"{seed}:{file_name}".encode("utf-8"):
        h ^= b
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def in_test_split(file_name, test_fraction=0.2, seed=0):
    return split_hash(seed, file_name) % 10000 < test_fraction * 10000


def _text_from_stem(path):
    stem = normalize_plate(os.path.splitext(os.path.basename(path))[0])
    if 4 <= len(stem) <= 10 and re.search(r"[0-9]", stem) and re.search(r"[A-Z]", stem):
        # plates-fr style: the image is named after its (single) plate; reject long hashes/ids
        raw = os.path.splitext(os.path.basename(path))[0]
        if re.fullmatch(r"[A-Za-z0-9 \-]+", raw):
            return stem
    return ""


def _find_image(base_dir, name_or_stem):
    stem, ext = os.path.splitext(name_or_stem)
    candidates = []
    dirs = [base_dir]
    parent = os.path.dirname(base_dir)
    for sib in ("Images", "images", "JPEGImages", "imgs"):
        dirs.append(os.path.join(parent, sib))
    for d in dirs:
        if ext.lower() in IMAGE_EXTS:
            candidates.append(os.path.join(d, name_or_stem))
        for e in IMAGE_EXTS:
            candidates.append(os.path.join(d, stem + e))
            candidates.append(os.path.join(d, stem + e.upper()))
    for c in candidates:
        if os.path.isfile(c):
            return c
    return None


def _load_voc(xml_path, warnings):
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as e:
        warnings.append(f"{xml_path}: not valid XML ({e})")
        return None
    fname = (root.findtext("filename") or "").strip()
    stem = os.path.splitext(os.path.basename(xml_path))[0]
    img = _find_image(os.path.dirname(xml_path), fname) if fname else None
    if img is None:
        img = _find_image(os.path.dirname(xml_path), stem + ".jpg")
    if img is None:
        warnings.append(f"{xml_path}: image '{fname}' not found")
        return None
    s = Sample(img)
    try:
        s.width = int(float(root.findtext("size/width") or 0))
        s.height = int(float(root.findtext("size/height") or 0))
    except ValueError:
        pass
    objs = root.findall("object")
    for o in objs:
        bb = o.find("bndbox")
        if bb is None:
            continue
        try:
            x0, y0, x1, y1 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            warnings.append(f"{xml_path}: bad bndbox")
            continue
        text = normalize_plate(o.findtext("text") or o.findtext("plate") or "")
        s.plates.append(Plate(x0, y0, x1 - x0, y1 - y0, text))
    if len(s.plates) == 1 and not s.plates[0].text:
        s.plates[0].text = _text_from_stem(img)
    return s


def _load_openalpr(txt_path, warnings):
    plates = []
    img = None
    with open(txt_path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) < 5 or not parts[0].strip():
                if line.strip():
                    warnings.append(f"{txt_path}:{n}: expected NAME<TAB>x<TAB>y<TAB>w<TAB>h<TAB>PLATE")
                continue
            try:
                x, y, w, h = (float(v) for v in parts[1:5])
            except ValueError:
                warnings.append(f"{txt_path}:{n}: non-numeric box")
                continue
            img = img or _find_image(os.path.dirname(txt_path), parts[0].strip())
            plates.append(Plate(x, y, w, h, normalize_plate(parts[5]) if len(parts) > 5 else ""))
    if img is None:
        if plates:
            warnings.append(f"{txt_path}: image not found")
        return None
    return Sample(img, plates=plates)


def _load_yolo(txt_path, image_path, warnings):
    s = Sample(image_path, boxes_normalized=True)
    with open(txt_path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                _, cx, cy, w, h = (float(v) for v in parts[:5])
            except ValueError:
                warnings.append(f"{txt_path}:{n}: expected 'class cx cy w h'")
                continue
            s.plates.append(Plate(cx - w / 2, cy - h / 2, w, h, ""))
    return s


def _looks_yolo(txt_path):
    try:
        with open(txt_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if not parts:
                    continue
                if len(parts) < 5:
                    return False
                vals = [float(v) for v in parts[:5]]
                return all(0.0 <= v <= 1.0 for v in vals[1:])
    except (ValueError, OSError):
        return False
    return True  # empty label file: an image with no plates


def _load_csv(csv_path, warnings):
    by_name = {}
    base = os.path.dirname(csv_path)
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if not row or (n == 1 and row[0].strip().lower() == "filename"):
                continue
            try:
                name = row[0].strip()
                w, h = int(float(row[1])), int(float(row[2]))
                x0, y0, x1, y1 = (float(v) for v in row[4:8])
            except (ValueError, IndexError):
                warnings.append(f"{csv_path}:{n}: expected filename,width,height,class,xmin,ymin,xmax,ymax[,text]")
                continue
            text = normalize_plate(row[8]) if len(row) > 8 else ""
            if name not in by_name:
                img = _find_image(base, name) or _find_image(os.path.join(base, "images"), name)
                if img is None:
                    warnings.append(f"{csv_path}:{n}: image '{name}' not found")
                    by_name[name] = None
                    continue
                by_name[name] = Sample(img, w, h)
            if by_name[name] is not None:
                by_name[name].plates.append(Plate(x0, y0, x1 - x0, y1 - y0, text))
    return [s for s in by_name.values() if s is not None]


def plain_letters(text):
    """Letters with diacritics as their plain letter (Ä -> A, Š -> S): the reader's alphabet is A-Z/0-9 and the
    plain letter is how registries and the other European readers write these plates."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


CROP_SKIP_FLAGS = {"cut", "disputed", "unsure"}  # unfit to train on: the text is not what the crop shows


def _is_crop_labels(csv_path):
    """A plate-crops `labels.csv` (file,text,country,lines,split,flags,...): one tight plate crop a row."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            head = next(csv.reader(f), [])
    except OSError:
        return False
    return [h.strip().lower() for h in head[:2]] == ["file", "text"]


def _load_crop_labels(csv_path, split, warnings):
    """Tight plate crops: the plate is the whole picture. The file's own split column decides the part
    ("train", or "dev"/"test"). Held-out parts keep the clean rows only (no flag, no '?'), the ones accuracy is
    reported on; the train part drops rows whose text may not be what the crop shows (cut, disputed, unsure)
    and texts outside A-Z/0-9 once diacritics are dropped (Greek, Korean): they have no plain-letter reading."""
    base = os.path.dirname(csv_path)
    out = []
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        for n, row in enumerate(csv.DictReader(f), 2):
            name, text = (row.get("file") or "").strip(), plain_letters((row.get("text") or "").strip().upper())
            part = (row.get("split") or "").strip().lower()
            flags = {x for x in (row.get("flags") or "").split(";") if x}
            if part == "test":
                part = "dev"
            want = {"train": "train", "test": "dev", "dev": "dev"}.get(split, "all")
            if want != "all" and part != want:
                continue
            if want == "dev" and (flags or "?" in text):
                continue
            if "?" in text or flags & CROP_SKIP_FLAGS or not re.fullmatch(r"[A-Z0-9]+", text):
                if want != "all":
                    continue
                text = ""
            img = _find_image(base, name) or _find_image(os.path.join(base, "images"), name)
            if img is None:
                warnings.append(f"{csv_path}:{n}: image '{name}' not found")
                continue
            lines = (row.get("lines") or "").strip()
            s = Sample(img, boxes_normalized=True)
            s.plates.append(Plate(0.0, 0.0, 1.0, 1.0, text, (row.get("country") or "").strip().lower(),
                                  int(lines) if lines in ("1", "2") else 0))
            out.append(s)
    return out


def load_dataset(path, split="all", test_fraction=0.2, seed=0, warnings=None):
    """Loads every annotated image under `path` (a folder, searched recursively, or a CSV file)."""
    warnings = [] if warnings is None else warnings
    if not os.path.exists(path):
        raise FileNotFoundError(f"dataset {path}: no such file or directory")
    samples = []
    crop_labels = path if os.path.isfile(path) else os.path.join(path, "labels.csv")
    if crop_labels.lower().endswith(".csv") and os.path.isfile(crop_labels) and _is_crop_labels(crop_labels):
        return sorted(_load_crop_labels(crop_labels, split, warnings), key=lambda s: s.path)
    if os.path.isfile(path):
        if path.lower().endswith(".csv"):
            samples = _load_csv(path, warnings)
        elif path.lower().endswith(".xml"):
            samples = [s for s in [_load_voc(path, warnings)] if s]
    else:
        for dirpath, _, files in os.walk(path):
            for fn in sorted(files):
                full = os.path.join(dirpath, fn)
                low = fn.lower()
                if low.endswith(".xml"):
                    s = _load_voc(full, warnings)
                    if s:
                        samples.append(s)
                elif low.endswith(".csv"):
                    samples.extend(_load_csv(full, warnings))
                elif low.endswith(".txt") and fn not in ("classes.txt", "README.txt", "LICENSE.txt"):
                    stem = os.path.splitext(fn)[0]
                    if _looks_yolo(full):
                        img = _find_image(dirpath, stem + ".jpg")
                        if img is None:  # labels/<split>/NAME.txt -> images/<split>/NAME.jpg
                            alt = dirpath.replace(os.sep + "labels", os.sep + "images")
                            img = _find_image(alt, stem + ".jpg")
                        if img is None:
                            warnings.append(f"{full}: image for YOLO label not found")
                            continue
                        samples.append(_load_yolo(full, img, warnings))
                    else:
                        s = _load_openalpr(full, warnings)
                        if s:
                            samples.append(s)
    if split != "all":
        want_test = split == "test"
        samples = [s for s in samples if in_test_split(os.path.basename(s.path), test_fraction, seed) == want_test]
    samples.sort(key=lambda s: s.path)
    return samples


MAGIC = [
    (b"\xff\xd8\xff", (".jpg", ".jpeg")),
    (b"\x89PNG\r\n\x1a\n", (".png",)),
    (b"BM", (".bmp",)),
    (b"RIFF", (".webp",)),
    (b"II*\x00", (".tif", ".tiff")),
    (b"MM\x00*", (".tif", ".tiff")),
]


def check_image(path):
    """Returns None when the image is fine, else a message saying what is wrong."""
    import cv2
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        return f"cannot open: {e.strerror}"
    if not head:
        return "empty file (0 bytes)"
    ext = os.path.splitext(path)[1].lower()
    kind = next((exts for magic, exts in MAGIC if head.startswith(magic)), None)
    if kind is None:
        return f"not an image (starts with {head[:8]!r})"
    if ext not in kind:
        return f"extension {ext} but the content is {kind[0][1:].upper()}"
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        return "does not decode (truncated or corrupt)"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["check", "stats", "list"])
    ap.add_argument("datasets", nargs="+")
    ap.add_argument("--split", default="all", choices=["all", "train", "test", "dev"],
                    help="plate-crop sets (labels.csv with a split column) use their own: train, dev (= test)")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    bad = 0
    for d in a.datasets:
        warnings = []
        samples = load_dataset(d, a.split, a.test_fraction, a.seed, warnings)
        if a.command == "list":
            for w in warnings:
                print(f"warning: {w}", file=sys.stderr)
            for s in samples:
                print(s.path)
            continue
        for w in warnings:
            print(f"warning: {w}")
        n_pl = sum(len(s.plates) for s in samples)
        n_txt = sum(1 for s in samples for p in s.plates if p.text)
        print(f"{d}: {len(samples)} images, {n_pl} plates, {n_txt} with text ({a.split})")
        if a.command == "check":
            for s in samples:
                msg = check_image(s.path)
                if msg:
                    bad += 1
                    print(f"bad: {s.path}: {msg}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
