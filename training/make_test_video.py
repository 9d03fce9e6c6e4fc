#!/usr/bin/python3
"""Test videos for `vigil watch`: synthetic plates (training/synth.py) on cars crossing a road scene.

Writes a video (1280x720 by default; .mp4/.mov/.mkv with the mp4v codec, .avi with MJPG) and a JSON file of
ground truth: for each car its plate text, country, the frames in which its plate is fully visible, and the
frames in which it is occluded or stopped.

  /usr/bin/python3 training/make_test_video.py --out /tmp/pass.mp4            # one car, left to right
  /usr/bin/python3 training/make_test_video.py --out /tmp/two.mp4 --two-cars  # a second car the other way
  /usr/bin/python3 training/make_test_video.py --out /tmp/occ.mp4 --occlude 4 --stop 1.5 --brief 3

Scenario flags combine: --two-cars (a second car in another lane at the same time), --brief N (a third plate
visible for only N frames), --occlude N (a truck hides the first car's plate for N frames mid-pass), --stop S
(the first car stops for S seconds mid-frame), --cars 0 (an empty road, e.g. for motion gating), --busy N
(busy traffic: N more cars in view at once for the whole video, in lanes across the frame, each at its own
speed and direction, plates 0.45-0.65 of --plate-width as in a street scene).

  /usr/bin/python3 training/make_test_video.py --out /tmp/busy.mp4 --fps 25 --duration 8 --cars 0 --busy 6 Plates are
drawn large and sharp (--plate-width pixels at 1280 px frame width, scaled with the frame) so that the
recognizer reads them reliably.
"""
import argparse
import contextlib
import json
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import synth  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PLATES = ["1AB 2345:cz", "AB12 CDE:uk", "B MW 123:de", "5T7 8901:cz", "BA 123 XY:sk", "WX 12345:pl",
                  "B 123 ABC:ro", "KL 456 MN:sk"]


@contextlib.contextmanager
def forced_text(country, display):
    """Makes synth.render_plate draw `display` (one line) in `country`'s layout."""
    saved = synth.COUNTRIES[country]
    strip, bg, fg, _, _ = saved
    synth.COUNTRIES[country] = (strip, bg, fg, [lambda r: display], [])
    try:
        yield
    finally:
        synth.COUNTRIES[country] = saved


def render(rng, spec):
    """spec "1AB 2345:cz" -> (plate RGB image, normalised text, country)."""
    display, _, country = spec.rpartition(":")
    if not display or country not in synth.COUNTRIES:
        raise SystemExit(f"make_test_video: bad --plate '{spec}': expected TEXT:COUNTRY with COUNTRY one of "
                         f"{', '.join(sorted(synth.COUNTRIES))}")
    # Plate fonts only: the generic fallback fonts are read less reliably, and the tests want sharp reads.
    plate_fonts, generic = synth._all_fonts()
    keep = (list(plate_fonts), list(generic))
    if plate_fonts:
        generic[:] = plate_fonts
    try:
        with forced_text(country, display):
            img, text, _ = synth.render_plate(rng, country)
    finally:
        plate_fonts[:], generic[:] = keep
    return img, text, country


def background(w, h, source, rng):
    if source and source != "road":
        img = cv2.imread(source)
        if img is None:
            raise SystemExit(f"make_test_video: cannot read background image {source}")
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(img, (0, 0), 6)
    # A grey road: sky-ish band at the top, asphalt getting darker towards the camera, lane markings.
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    grey = 150 - 60 * y + np.zeros((1, w), np.float32)
    img = np.repeat(grey[:, :, None], 3, axis=2)
    img[: int(0.18 * h)] = (200, 180, 160)
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 1.2)
    for k in range(0, w, w // 8):
        for ly in (0.47, 0.8):
            cv2.rectangle(img, (k, int(ly * h)), (k + w // 16, int(ly * h) + max(2, h // 120)), (235, 235, 235), -1)
    return np.clip(img, 0, 255).astype(np.uint8)


class Car:
    def __init__(self, plate_rgb, text, country, lane_y, plate_w, frames, x_from, x_to, colour, stop=None, brief=False):
        ph, pw = plate_rgb.shape[:2]
        self.plate = cv2.cvtColor(cv2.resize(plate_rgb, (plate_w, max(8, round(ph * plate_w / pw))),
                                             interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
        self.text, self.country, self.lane_y = text, country, lane_y
        self.f0, self.f1 = frames  # first and last frame in which the plate is fully visible
        self.x_from, self.x_to = x_from, x_to
        self.colour = colour
        self.stop = stop  # (first, last) frame of the stop, or None
        self.occluded = None
        self.brief = brief

    def centre_x(self, f):
        """Plate centre x at frame f: constant speed, holding still during the stop."""
        n = self.f1 - self.f0
        if self.stop is None:
            moving, done = n, f - self.f0
        else:
            s0, s1 = self.stop
            moving = n - (s1 - s0)
            done = (f - self.f0) if f <= s0 else (s0 - self.f0) if f <= s1 else (f - self.f0) - (s1 - s0)
        a = done / max(1, moving)
        return self.x_from + (self.x_to - self.x_from) * a

    def draw(self, img, f, body=True, plate=True):
        if not (self.f0 <= f <= self.f1):
            return
        ph, pw = self.plate.shape[:2]
        cx, cy = int(round(self.centre_x(f))), self.lane_y
        # Car body around the plate (rear view): body, rear window, lights.
        bw, bh = int(pw * 2.2), int(pw * 0.9)
        x0, y0 = cx - bw // 2, cy - int(bh * 0.72)
        if body:
            cv2.rectangle(img, (x0, y0), (x0 + bw, y0 + bh), self.colour, -1)
            cv2.rectangle(img, (x0 + bw // 8, y0 + bh // 12), (x0 + bw * 7 // 8, y0 + bh * 2 // 5), (60, 55, 50), -1)
            for lx in (x0 + bw // 20, x0 + bw * 16 // 20):
                cv2.rectangle(img, (lx, cy - ph), (lx + bw // 7, cy - ph // 3), (30, 30, 200), -1)
        if not plate:
            return
        px, py = cx - pw // 2, cy - ph // 2
        h, w = img.shape[:2]
        sx0, sy0, sx1, sy1 = max(0, px), max(0, py), min(w, px + pw), min(h, py + ph)
        if sx1 > sx0 and sy1 > sy0:
            img[sy0:sy1, sx0:sx1] = self.plate[sy0 - py:sy1 - py, sx0 - px:sx1 - px]
        if self.occluded and self.occluded[0] <= f <= self.occluded[1]:
            # A truck in the nearer lane passes in front of the plate.
            cv2.rectangle(img, (px - pw // 2, py - ph * 3), (px + pw * 3 // 2, py + ph * 3), (70, 90, 110), -1)

    def box(self, f):
        ph, pw = self.plate.shape[:2]
        cx = int(round(self.centre_x(f)))
        return [cx - pw // 2, self.lane_y - ph // 2, pw, ph]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="video file (.mp4/.mov/.mkv: mp4v, .avi: MJPG)")
    ap.add_argument("--truth", help="ground-truth JSON (default: the video's name with .json)")
    ap.add_argument("--plate", action="append", default=[], metavar="TEXT:COUNTRY",
                    help=f"plates in order of the cars (default: {', '.join(DEFAULT_PLATES)})")
    ap.add_argument("--cars", type=int, default=1, help="cars crossing one after the other in lane 1 (0: none)")
    ap.add_argument("--two-cars", action="store_true", help="a second car in another lane, at the same time")
    ap.add_argument("--brief", type=int, default=0, metavar="N", help="a plate visible for only N frames")
    ap.add_argument("--occlude", type=int, default=0, metavar="N", help="hide the first plate for N frames")
    ap.add_argument("--stop", type=float, default=0.0, metavar="S", help="the first car stops for S seconds")
    ap.add_argument("--busy", type=int, default=0, metavar="N",
                    help="N more cars in view at once for the whole video, in their own lanes (busy traffic)")
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=4.0, help="seconds")
    ap.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT")
    ap.add_argument("--plate-width", type=int, default=240, help="plate width in pixels at 1280 px frame width")
    ap.add_argument("--background", default="road", help="'road' (a grey road) or an image file (blurred)")
    ap.add_argument("--noise", type=float, default=2.0, help="per-frame sensor noise (grey levels, sigma)")
    ap.add_argument("--fonts", action="append", default=[], help="extra font folder (default: ../shared/data/fonts)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    try:
        w, h = (int(v) for v in a.size.lower().split("x"))
    except ValueError:
        raise SystemExit(f"make_test_video: bad --size '{a.size}': expected WIDTHxHEIGHT")
    fonts = a.fonts or [d for d in [os.path.join(HERE, "..", "..", "shared", "data", "fonts")] if os.path.isdir(d)]
    synth.set_font_dirs(fonts)
    rng = np.random.default_rng(a.seed)
    n = max(1, int(round(a.fps * a.duration)))
    scale = w / 1280.0
    plate_w = max(16, int(round(a.plate_width * scale)))
    plates = a.plate or DEFAULT_PLATES
    need = a.cars + a.two_cars + (a.brief > 0) + a.busy
    while len(plates) < need:
        plates = plates + DEFAULT_PLATES
    specs = iter(plates)
    colours = [(40, 40, 160), (150, 110, 40), (60, 130, 60), (140, 140, 140), (30, 30, 30)]

    cars = []
    margin = int(0.16 * w)
    span = n // max(1, a.cars) if a.cars else n
    for i in range(a.cars):
        img, text, country = render(rng, next(specs))
        f0, f1 = i * span + int(0.05 * span), (i + 1) * span - int(0.1 * span) - 1
        stop = None
        if i == 0 and a.stop > 0:
            k = int(round(a.stop * a.fps))
            mid = (f0 + f1) // 2
            stop = (mid - k // 2, mid - k // 2 + k)
        cars.append(Car(img, text, country, int(0.8 * h), plate_w, (f0, f1), margin, w - margin, colours[i % 5],
                        stop=stop))
    if a.occlude > 0:
        if not cars:
            raise SystemExit("make_test_video: --occlude needs a car (--cars >= 1)")
        c = cars[0]
        mid = (c.f0 + c.f1) // 2
        c.occluded = (mid - a.occlude // 2, mid - a.occlude // 2 + a.occlude - 1)
    if a.two_cars:
        img, text, country = render(rng, next(specs))
        cars.append(Car(img, text, country, int(0.4 * h), int(plate_w * 0.9), (int(0.1 * n), int(0.85 * n)),
                        w - margin, margin, colours[3]))
    if a.brief > 0:
        img, text, country = render(rng, next(specs))
        # Lane 2, mid-video; after the second car has left when there is one.
        start = n // 2 if not a.two_cars else min(n - a.brief, int(0.85 * n) + 1)
        c = Car(img, text, country, int(0.4 * h), plate_w, (start, start + a.brief - 1), int(0.5 * w),
                int(0.5 * w) + 1, colours[4], brief=True)
        cars.append(c)

    for i in range(a.busy):
        img, text, country = render(rng, next(specs))
        # Lanes from 0.3 to 0.95 of the height, nearer lanes with larger plates; every other lane the other way;
        # each car crosses a part of the frame over the whole video, so all are in view at once.
        lane = (i + 0.5) / a.busy
        lane_y = int((0.3 + 0.65 * lane) * h)
        bw = int(plate_w * (0.45 + 0.2 * lane))
        x0 = margin + (w - 2 * margin) * ((i * 0.37) % 0.4)
        x1 = x0 + (w - 2 * margin) * (0.4 + 0.2 * ((i * 0.61) % 1.0))
        if i % 2:
            x0, x1 = x1, x0
        cars.append(Car(img, text, country, lane_y, bw, (0, n - 1), x0, x1, colours[i % 5]))

    ext = os.path.splitext(a.out)[1].lower()
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if ext == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(a.out, fourcc, a.fps, (w, h))
    if not writer.isOpened():
        raise SystemExit(f"make_test_video: cannot write {a.out}")
    bg = background(w, h, a.background, rng)
    # Sensor noise: a few fields cycled (fresh noise every frame is the slowest part of rendering), each split
    # into what saturating uint8 arithmetic adds and subtracts.
    noise = []
    if a.noise > 0:
        for _ in range(7):
            field = np.rint(rng.normal(0, a.noise, (h, w, 3)))
            noise.append((np.clip(field, 0, 255).astype(np.uint8), np.clip(-field, 0, 255).astype(np.uint8)))
    boxes = {i: {} for i in range(len(cars))}
    for f in range(n):
        frame = bg.copy()
        # Far lane first, so the nearer cars are drawn over it.
        order = sorted(enumerate(cars), key=lambda ic: ic[1].lane_y)
        if a.busy:
            # Busy traffic: every plate stays in view (the cars' bodies first, then their plates), so each car
            # is one pass however the lanes overlap.
            for _, c in order:
                c.draw(frame, f, plate=False)
            for _, c in order:
                c.draw(frame, f, body=False)
        for i, c in order:
            if not a.busy:
                c.draw(frame, f)
            if c.f0 <= f <= c.f1 and not (c.occluded and c.occluded[0] <= f <= c.occluded[1]):
                boxes[i][f] = c.box(f)
        if noise:
            add, sub = noise[f % len(noise)]
            frame = cv2.subtract(cv2.add(frame, add), sub)
        writer.write(frame)
    writer.release()

    truth = {
        "video": os.path.abspath(a.out), "width": w, "height": h, "fps": a.fps, "frames": n,
        "cars": [{
            "text": c.text, "country": c.country, "first_frame": c.f0, "last_frame": c.f1,
            "first_s": c.f0 / a.fps, "last_s": c.f1 / a.fps,
            "direction": "right" if c.x_to > c.x_from + 1 else "left" if c.x_to < c.x_from - 1 else "",
            "occluded": list(c.occluded) if c.occluded else None,
            "stopped": list(c.stop) if c.stop else None, "brief": c.brief,
            "visible_frames": len(boxes[i]),
            "boxes": {str(f): b for f, b in boxes[i].items()},
        } for i, c in enumerate(cars)],
    }
    truth_path = a.truth or os.path.splitext(a.out)[0] + ".json"
    with open(truth_path, "w") as fh:
        json.dump(truth, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
