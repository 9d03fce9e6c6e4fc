"""Unit tests of the training tools: importers, the split (pinned to the C++ values), the dataset check,
the plate renderer and the reader's rectification."""
import os
import sys
import tempfile
import unittest

import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import make_crop_set  # noqa: E402
import make_small_plate_set  # noqa: E402
import make_subset  # noqa: E402
import make_synthetic_set  # noqa: E402
import make_tilted_set  # noqa: E402
import synth  # noqa: E402
import vigil_data  # noqa: E402


def write_img(path, w=64, h=48):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, np.full((h, w, 3), 127, np.uint8))


class SplitTest(unittest.TestCase):
    def test_hash_matches_cpp(self):
        # Same values as tests/dataset_test.cpp: both sides must put each image in the same part.
        self.assertEqual(vigil_data.split_hash(0, "AYO9034.jpg"), 1609725096428171723)
        self.assertEqual(vigil_data.split_hash(42, "car1.jpg"), 13909594344959146637)

    def test_fraction(self):
        names = [f"img{i}.jpg" for i in range(2000)]
        share = sum(vigil_data.in_test_split(n) for n in names) / len(names)
        self.assertAlmostEqual(share, 0.2, delta=0.03)
        self.assertNotEqual([vigil_data.in_test_split(n, seed=1) for n in names],
                            [vigil_data.in_test_split(n, seed=2) for n in names])


class ImportersTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_openalpr(self):
        write_img(f"{self.d}/a/car.jpg")
        with open(f"{self.d}/a/car.txt", "w") as f:
            f.write("car.jpg\t10\t20\t30\t8\tab-12 3\n")
        s = vigil_data.load_dataset(f"{self.d}/a")
        self.assertEqual(len(s), 1)
        self.assertEqual((s[0].plates[0].x, s[0].plates[0].w, s[0].plates[0].text), (10, 30, "AB123"))

    def test_voc_with_text_from_file_name(self):
        write_img(f"{self.d}/v/Images/AP-666-TQ.jpg")
        os.makedirs(f"{self.d}/v/Annotations")
        with open(f"{self.d}/v/Annotations/AP-666-TQ.xml", "w") as f:
            f.write("<annotation verified='yes'><filename>AP-666-TQ.jpg</filename><size><width>64</width>"
                    "<height>48</height></size><object><name>plate</name><bndbox><xmin>1.5</xmin><ymin>2</ymin>"
                    "<xmax>30</xmax><ymax>12</ymax></bndbox></object></annotation>")
        s = vigil_data.load_dataset(f"{self.d}/v")
        self.assertEqual(len(s), 1)
        self.assertEqual(s[0].plates[0].text, "AP666TQ")
        self.assertAlmostEqual(s[0].plates[0].w, 28.5)

    def test_yolo(self):
        write_img(f"{self.d}/y/images/train/a.jpg", 100, 50)
        os.makedirs(f"{self.d}/y/labels/train")
        with open(f"{self.d}/y/labels/train/a.txt", "w") as f:
            f.write("0 0.5 0.5 0.2 0.1\n")
        s = vigil_data.load_dataset(f"{self.d}/y")
        self.assertEqual(len(s), 1)
        self.assertTrue(s[0].boxes_normalized)
        p = s[0].boxes_px(100, 50)[0]
        self.assertAlmostEqual(p.x, 40)
        self.assertAlmostEqual(p.h, 5)

    def test_csv_groups_rows_and_reports_bad_lines(self):
        write_img(f"{self.d}/c/x.jpg")
        with open(f"{self.d}/c/labels.csv", "w") as f:
            f.write("filename,width,height,class,xmin,ymin,xmax,ymax,text\n"
                    "x.jpg,64,48,plate,1,2,11,6,1AB2345\nx.jpg,64,48,plate,20,2,40,8,\nbad,row\n")
        warnings = []
        s = vigil_data.load_dataset(f"{self.d}/c/labels.csv", warnings=warnings)
        self.assertEqual(len(s), 1)
        self.assertEqual(len(s[0].plates), 2)
        self.assertEqual(s[0].plates[0].text, "1AB2345")
        self.assertTrue(any(":4:" in w for w in warnings))

    def test_missing_path(self):
        with self.assertRaises(FileNotFoundError):
            vigil_data.load_dataset(f"{self.d}/nope")


class CropLabelsTest(unittest.TestCase):
    """Tight plate crops with a labels.csv (file,text,country,lines,split,flags,source)."""

    def test_split_column_clean_rows_and_plain_letters(self):
        import train_reader as tr
        with tempfile.TemporaryDirectory() as d:
            for n in range(6):
                write_img(f"{d}/crops/images/p{n}.jpg", 120, 30 if n != 3 else 60)
            with open(f"{d}/crops/labels.csv", "w", encoding="utf-8") as f:
                f.write("file,text,country,lines,split,flags,source\n"
                        "p0.jpg,BA123AB,sk,1,train,,x\n"
                        "p1.jpg,MÜN4513,de,1,dev,,x\n"
                        "p2.jpg,AB1?3,cz,1,train,,x\n"
                        "p3.jpg,1AB2345,cz,2,train,country-guessed,x\n"
                        "p4.jpg,XY99,de,1,dev,blurry,x\n"
                        "p5.jpg,ΔOK5512,gr,1,train,,x\n")
            train = vigil_data.load_dataset(f"{d}/crops", "train")
            self.assertEqual([s.plates[0].text for s in train], ["BA123AB", "1AB2345"])
            self.assertEqual(train[1].plates[0].lines, 2)
            self.assertEqual(train[0].plates[0].country, "sk")
            dev = vigil_data.load_dataset(f"{d}/crops/labels.csv", "test")  # dev: clean rows only
            self.assertEqual([s.plates[0].text for s in dev], ["MUN4513"])
            self.assertEqual(dev[0].boxes_px(120, 30)[0].w, 120)
            self.assertEqual(len(vigil_data.load_dataset(f"{d}/crops", "all")), 6)
            crops = tr.RealCrops([f"{d}/crops:train", f"{d}/crops:dev"])
            self.assertEqual([it[5] for it in crops.items], [False, True, False])
            self.assertEqual(crops.by_set, [[0, 1], [2]])
            rng = np.random.default_rng(0)
            picked = {crops.pick(rng) for _ in range(200)}
            self.assertEqual(picked, {0, 1, 2})


class CheckTest(unittest.TestCase):
    def test_detects_bad_images(self):
        with tempfile.TemporaryDirectory() as d:
            good = f"{d}/good.jpg"
            write_img(good)
            self.assertIsNone(vigil_data.check_image(good))
            with open(f"{d}/empty.jpg", "wb"):
                pass
            self.assertIn("empty", vigil_data.check_image(f"{d}/empty.jpg"))
            with open(f"{d}/doc.jpg", "wb") as f:
                f.write(b"%PDF-1.4 hello")
            self.assertIn("not an image", vigil_data.check_image(f"{d}/doc.jpg"))
            cv2.imwrite(f"{d}/really_png.jpg.png", np.zeros((8, 8, 3), np.uint8))
            os.rename(f"{d}/really_png.jpg.png", f"{d}/liar.jpg")
            self.assertIn("PNG", vigil_data.check_image(f"{d}/liar.jpg"))


class SynthTest(unittest.TestCase):
    def test_render_every_country(self):
        rng = np.random.default_rng(0)
        for country in synth.COUNTRIES:
            img, text, two = synth.render_plate(rng, country)
            self.assertEqual(img.dtype, np.uint8)
            self.assertEqual(img.ndim, 3)
            self.assertRegex(text, r"^[A-Z0-9]{3,10}$", country)
            self.assertGreater(img.std(), 10, country)  # something was drawn

    def test_texts_fit_the_country_formats(self):
        # Every country but the catch-all US draws only plates its formats (data/plate_formats.json) accept:
        # no O on a Czech plate, no vowel on a Spanish one, only real Romanian county codes.
        rng = np.random.default_rng(1)
        for country, spec in synth.COUNTRIES.items():
            if country in synth.UNCHECKED_COUNTRIES:
                continue
            layouts = [False] + ([True] if spec[4] else [])
            for two_line in layouts:
                for _ in range(60):
                    _, text, _ = synth.render_plate(rng, country, two_line=two_line)
                    self.assertTrue(synth.fits_country(country, text), f"{country} {text}")
        self.assertFalse(synth.fits_country("cz", "8OW2631"))
        self.assertFalse(synth.fits_country("es", "1234ABC"))
        self.assertTrue(synth.fits_country("es", "1234BCD"))
        self.assertTrue(synth.fits_country("xx", "ANYTHING"))  # no formats: nothing to check

    def test_a_generator_that_never_fits_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "cz"):
            synth._draw_text(np.random.default_rng(0), "cz", lambda r: "OOO 0000")

    def test_deterministic(self):
        a = synth.render_plate(np.random.default_rng(5))
        b = synth.render_plate(np.random.default_rng(5))
        self.assertEqual(a[1], b[1])
        self.assertTrue(np.array_equal(a[0], b[0]))


def bars_plate(n=5, width=10, first=14, pitch=22):
    """A 32x128 grey 'plate': n dark bars (characters) on white; returns the image and the bars' spans."""
    plate = np.full((32, 128), 230, np.uint8)
    spans = [(first + i * pitch, first + i * pitch + width) for i in range(n)]
    for a, b in spans:
        plate[6:26, a:b] = 20
    return plate, spans


class RecomposeTest(unittest.TestCase):
    def test_slots_are_cut_between_the_characters(self):
        import train_reader as tr
        plate, spans = bars_plate(n=6, pitch=16)
        centres = [a + 9.0 for a, _ in spans]  # CTC emission points sit off the characters' centres
        slots = tr._snap_slots(plate, centres)
        self.assertEqual(len(slots), len(spans))
        for (a, b), (ca, cb) in zip(slots, spans):
            self.assertLessEqual(a, ca)  # every character lies whole inside its slot
            self.assertGreaterEqual(b, cb)

    def test_character_slots_follow_the_readers_emissions(self):
        import torch
        import train_reader as tr
        plate, spans = bars_plate()

        class Emits(torch.nn.Module):  # emits "ABCDE", one letter at the start column of each bar
            def forward(self, x):
                out = torch.zeros(x.shape[0], len(tr.ALPHABET) + 1, 1, 32)
                out[:, 0] = 5.0
                for k, (a, _) in enumerate(spans):
                    out[:, 1 + tr.ALPHABET.index("ABCDE"[k]), 0, a // 4] = 10.0
                return out

        real = tr.RealCrops([])
        big = cv2.resize(plate, (128 * 2, 32 * 2))
        # a quad that rectifies to the whole picture: undo rectify's margins
        quad = tr.expand_quad(np.float32([[0, 0], [256, 0], [256, 64], [0, 64]]),
                              -tr.MARGIN_X / (1 + 2 * tr.MARGIN_X), -tr.MARGIN_Y / (1 + 2 * tr.MARGIN_Y))
        bgr = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)
        real.items = [(bgr, quad, "ABCDE", "a.jpg", None, False), (bgr, quad, "ABCDX", "b.jpg", None, False),
                      (bgr, quad, "ABCDE", "c.jpg", None, True)]
        slots = tr.character_slots(Emits(), real)
        self.assertIsNone(slots[1])  # read wrong: not cut
        self.assertIsNone(slots[2])  # two-line: not cut into one row
        self.assertEqual(len(slots[0]), 5)
        for (a, b), (ca, cb) in zip(slots[0], spans):
            self.assertTrue(a <= ca + 1 and b >= cb - 1, (a, b, ca, cb))
        rng = np.random.default_rng(0)
        for _ in range(20):
            out, text = tr.recompose(rng, big, quad, "ABCDE", slots[0])
            self.assertEqual(out.shape, (tr.IN_H, tr.IN_W))
            self.assertTrue(4 <= len(text) <= 6 and set(text) <= set("ABCDE"), text)
            ink = (out[10:22] < 120).any(axis=0)  # as many dark bars as characters, give or take a blur
            bars = int(ink[0]) + int(np.sum(ink[1:] & ~ink[:-1]))
            self.assertLessEqual(abs(bars - len(text)), 1, text)


class RectifyTest(unittest.TestCase):
    def test_two_line_halves_side_by_side(self):
        import train_reader as tr
        img = np.zeros((100, 100), np.uint8)
        img[:50] = 200  # top half bright, bottom dark
        quad = np.float32([[0, 0], [100, 0], [100, 100], [0, 100]])
        quad = tr.expand_quad(quad, -tr.MARGIN_X / (1 + 2 * tr.MARGIN_X), -tr.MARGIN_Y / (1 + 2 * tr.MARGIN_Y))
        out = tr.rectify(img, quad, True)
        self.assertEqual(out.shape, (tr.IN_H, tr.IN_W))
        self.assertGreater(out[:, : tr.IN_W // 2 - 4].mean(), 150)
        self.assertLess(out[:, tr.IN_W // 2 + 4:].mean(), 50)


class DetectionsTest(unittest.TestCase):
    def test_real_crops_keep_the_overlapping_detection(self):
        import json
        import train_reader as tr
        with tempfile.TemporaryDirectory() as d:
            write_img(f"{d}/set/a.jpg", 400, 300)
            write_img(f"{d}/set/b.jpg", 400, 300)
            with open(f"{d}/set/a.txt", "w") as f:
                f.write("a.jpg\t100\t100\t100\t30\tAB123\n")
            with open(f"{d}/set/b.txt", "w") as f:
                f.write("b.jpg\t100\t100\t100\t30\tCD456\n")
            # As `vigil read --json` writes it: a's plate found slightly off, plus a far false positive;
            # b's only detection is elsewhere.
            with open(f"{d}/det.jsonl", "w") as f:
                f.write(json.dumps({"image": f"{d}/set/a.jpg", "plates": [
                    {"corners": [[300, 250], [340, 250], [340, 262], [300, 262]]},
                    {"corners": [[104, 98], [204, 102], [202, 132], [102, 128]]}]}) + "\n")
                f.write(json.dumps({"image": f"{d}/set/b.jpg", "plates": [
                    {"corners": [[300, 250], [340, 250], [340, 262], [300, 262]]}]}) + "\n\n")
            crops = tr.RealCrops([f"{d}/set:all"], detections=tr.load_detections([f"{d}/det.jsonl"]))
            self.assertEqual(len(crops), 2)
            self.assertEqual(crops.with_detection, 1)
            by_text = {item[2]: item for item in crops.items}
            # The crop starts half a plate left of and 0.8 plates above the box: (50, 76).
            np.testing.assert_allclose(by_text["AB123"][4], [[54, 22], [154, 26], [152, 56], [52, 52]])
            np.testing.assert_allclose(by_text["AB123"][1], [[50, 24], [150, 24], [150, 54], [50, 54]])
            self.assertIsNone(by_text["CD456"][4])
            # make_sample uses either quad.
            rng = np.random.default_rng(0)
            img, text = tr.make_sample(rng, crops, [], 1.0)
            self.assertEqual(img.shape, (tr.IN_H, tr.IN_W))
            self.assertIn(text, ("AB123", "CD456"))

    def test_synthetic_us_plates_with_emblems(self):
        rng = np.random.default_rng(3)
        for _ in range(60):
            img, text, two = synth.render_plate(rng, "us")
            self.assertRegex(text, r"^[A-Z0-9]{5,8}$")
            self.assertFalse(two)


class PackTest(unittest.TestCase):
    """What a GPU machine without the datasets trains from: --save-pack / --from-pack, and the samples made
    in worker processes."""

    def _toy_set(self, d):
        rng = np.random.default_rng(1)
        for name, text in (("a", "AB123"), ("b", "CD456"), ("c", "EF789")):
            img = rng.integers(0, 255, (300, 400, 3), np.uint8)
            os.makedirs(f"{d}/set", exist_ok=True)
            cv2.imwrite(f"{d}/set/{name}.png", img)
            with open(f"{d}/set/{name}.txt", "w") as f:
                f.write(f"{name}.png\t100\t100\t120\t30\t{text}\n")

    def test_reader_pack_round_trip_and_worker_batches(self):
        import train_reader as tr
        with tempfile.TemporaryDirectory() as d:
            self._toy_set(d)
            real = tr.RealCrops([f"{d}/set:all"])
            evals = {"held": tr.RealCrops([f"{d}/set:all"])}
            bgs = [np.full((240, 320, 3), 90, np.uint8)]
            tr.save_pack(f"{d}/p.pkl", real, evals, bgs)
            r2, e2, b2 = tr.load_pack(f"{d}/p.pkl")
            self.assertEqual(len(r2), 3)
            self.assertEqual(r2.datasets, ["set"])
            self.assertEqual(list(e2), ["held"])
            self.assertEqual(len(b2), 1)
            self.assertEqual(r2.by_set, [[0, 1, 2]])
            for (c1, q1, t1, _, _, _), (c2, q2, t2, _, _, _) in zip(real.items, r2.items):
                self.assertEqual(t1, t2)
                np.testing.assert_allclose(q1, q2)
                # the reader sees grey only, and grey is kept losslessly
                self.assertTrue(np.array_equal(cv2.cvtColor(c1, cv2.COLOR_BGR2GRAY),
                                               cv2.cvtColor(c2, cv2.COLOR_BGR2GRAY)))
            raw, shape, texts = next(iter(tr.SampleStream(r2, b2, 1.0, 4, 0)))
            self.assertEqual(shape, (4, tr.IN_H, tr.IN_W))
            self.assertEqual(len(raw), 4 * tr.IN_H * tr.IN_W)
            self.assertTrue(set(texts) <= {"AB123", "CD456", "EF789"})
            x = tr.normalise(np.frombuffer(raw, np.uint8).reshape(shape), "cpu")
            self.assertEqual(tuple(x.shape), (4, 1, tr.IN_H, tr.IN_W))
            self.assertGreaterEqual(float(x.min()), -1.0)
            self.assertLessEqual(float(x.max()), 1.0)

    def test_detector_pack_shrinks_but_keeps_plates_readable(self):
        import train_detector as td
        with tempfile.TemporaryDirectory() as d:
            self._toy_set(d)
            real = td.RealImages([("set", vigil_data.load_dataset(f"{d}/set", "all"))])
            negs = [np.full((600, 800, 3), 50, np.uint8)]
            # long side 200 would make the 120 px plates 60 px wide: they are kept at 100 px instead
            td.save_pack(f"{d}/p.pkl", real, negs, 90, long_side=200, min_plate_w=100, max_images=2)
            r2, n2 = td.load_pack(f"{d}/p.pkl")
            self.assertEqual(len(r2.items), 2)
            self.assertEqual(r2.by_set, [[0, 1]])
            self.assertEqual(r2.stats, real.stats)  # the sampling weights stay those of the whole set
            _, img, boxes = r2.items[0]
            self.assertAlmostEqual(float(boxes[0, 2] - boxes[0, 0]), 100.0, places=3)
            self.assertEqual(img.shape[:2], (250, 333))
            self.assertEqual(max(n2[0].shape[:2]), 200)
            t = next(iter(td.BatchStream(r2, n2, 0, 3, 128, 0.0, 0.3)))
            self.assertEqual(tuple(t["img"].shape), (3, 3, 128, 128))
            self.assertEqual(int(t["n_syn"]), 0)


class SmallPlateSetTest(unittest.TestCase):
    def test_cover_fills_the_canvas(self):
        img = np.zeros((48, 64, 3), np.uint8)
        self.assertEqual(make_small_plate_set.cover(img, 400, 100).shape, (100, 400, 3))
        self.assertEqual(make_small_plate_set.cover(img, 30, 90).shape, (90, 30, 3))

    def test_compose_shrinks_the_photo_and_moves_the_box(self):
        import random
        photo = np.full((300, 400, 3), 50, np.uint8)
        photo[100:140, 100:300] = 255  # the "plate": 200 x 40
        plate = vigil_data.Plate(100, 100, 200, 40, "AB123")
        background = np.zeros((1000, 1500, 3), np.uint8)
        canvas, (x, y, w, h) = make_small_plate_set.compose(photo, plate, background, 50, random.Random(1))
        self.assertEqual(canvas.shape, background.shape)
        self.assertAlmostEqual(w, 50)
        self.assertAlmostEqual(h, 10)
        inside = canvas[round(y) + 2:round(y + h) - 2, round(x) + 2:round(x + w) - 2]
        self.assertGreater(inside.min(), 200)  # the plate's pixels are where the box says
        self.assertFalse(background.any())  # the background is not drawn on
        # Enlarging (a plate narrower than asked) and photos bigger than the canvas are refused.
        self.assertIsNone(make_small_plate_set.compose(photo, plate, background, 400, random.Random(1)))
        self.assertIsNone(make_small_plate_set.compose(photo, plate, np.zeros((50, 50, 3), np.uint8), 100,
                                                       random.Random(1)))


class SyntheticSetTest(unittest.TestCase):
    def test_two_line_plates_are_forced_and_boxed(self):
        rng = np.random.default_rng(3)
        for country in synth.two_line_countries():
            _, text, two = synth.render_plate(rng, country, two_line=True)
            self.assertTrue(two, country)
            self.assertTrue(text.isalnum(), country)
        with self.assertRaises(ValueError):
            synth.render_plate(rng, "it", two_line=True)  # Italy has no two-line layout here

    def test_scene_labels_box_the_pasted_plates(self):
        rng = np.random.default_rng(5)
        background = np.zeros((360, 640, 3), np.uint8)
        img, labels = make_synthetic_set.make_image(rng, background, ["cz", "uk"], True, 2, (60, 120))
        self.assertEqual(img.shape, background.shape)
        self.assertGreaterEqual(len(labels), 1)
        drawn = img.max(axis=2) > 10
        for x, y, w, h, text in labels:
            self.assertTrue(text.isalnum())
            self.assertTrue(0 <= x and 0 <= y and x + w <= 640 and y + h <= 360)
            self.assertGreater(w, 20)
            self.assertGreater(drawn[int(y):int(y + h), int(x):int(x + w)].mean(), 0.5)  # the plate is there

    def test_reader_two_line_share(self):
        import train_reader as tr
        rng = np.random.default_rng(2)
        bg = [np.full((60, 200, 3), 90, np.uint8)]
        self.assertTrue(all(tr.synth_sample(rng, bg, p_two_line=1.0)[3] for _ in range(10)))
        drawn = [tr.synth_sample(rng, bg)[3] for _ in range(60)]
        self.assertLess(sum(drawn), 30)  # about 1 in 10 by default

    def test_plate_quad_is_about_the_asked_width(self):
        rng = np.random.default_rng(0)
        for _ in range(20):
            q = synth.plate_quad(rng, 520, 110, 100.0)
            self.assertEqual(q.shape, (4, 2))
            top = np.linalg.norm(q[1] - q[0])
            self.assertTrue(30 < top < 160, top)



class TiltedSetTest(unittest.TestCase):
    def test_labels_follow_the_turned_plates(self):
        with tempfile.TemporaryDirectory() as d:
            src, out = os.path.join(d, "src"), os.path.join(d, "out")
            os.makedirs(src)
            plates = [(0, (80, 60, 60, 20), "AB123"), (1, (150, 100, 40, 14), "XY9")]
            for i, (x, y, w, h), text in plates:
                img = np.full((200, 320, 3), 200, np.uint8)
                cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), (0, 0, 0), -1)
                cv2.imwrite(os.path.join(src, f"car{i}.png"), img)
                with open(os.path.join(src, f"car{i}.txt"), "w") as f:
                    f.write(f"car{i}.png\t{x}\t{y}\t{w}\t{h}\t{text}\n")
            self.assertEqual(make_tilted_set.make_set(src, 30, out), (2, 2))
            got = vigil_data.load_dataset(out, "all")
            self.assertEqual(sorted(p.text for s in got for p in s.plates), ["AB123", "XY9"])
            for s in got:
                (p,) = s.plates
                img = cv2.imread(s.path, cv2.IMREAD_GRAYSCALE)
                self.assertEqual(img.shape, (200, 320))  # the frame keeps its size
                ys, xs = np.nonzero(img < 100)  # the turned plate's pixels
                self.assertAlmostEqual(xs.min(), p.x, delta=2)
                self.assertAlmostEqual(xs.max() + 1, p.x + p.w, delta=2)
                self.assertAlmostEqual(ys.min(), p.y, delta=2)
                self.assertAlmostEqual(ys.max() + 1, p.y + p.h, delta=2)
                # turned, not just copied: a 60x20 plate at 30 degrees spans about 62x47
                self.assertGreater(p.h / p.w, 0.6 if p.text == "AB123" else 0.5)


class CropSetTest(unittest.TestCase):
    def test_crops_keep_the_plate_and_its_margin(self):
        with tempfile.TemporaryDirectory() as d:
            src, out = os.path.join(d, "src"), os.path.join(d, "out")
            os.makedirs(src)
            img = np.full((200, 320, 3), 200, np.uint8)
            cv2.rectangle(img, (100, 80), (199, 109), (0, 0, 0), -1)  # a 100x30 plate
            cv2.rectangle(img, (0, 0), (39, 14), (0, 0, 0), -1)  # a 40x15 plate in the corner
            cv2.imwrite(os.path.join(src, "car.png"), img)
            with open(os.path.join(src, "car.txt"), "w") as f:
                f.write("car.png\t100\t80\t100\t30\tAB-123\ncar.png\t0\t0\t40\t15\tXY9\n")
            self.assertEqual(make_crop_set.make_set([src], 0.3, out), 2)
            got = {s.plates[0].text: s for s in vigil_data.load_dataset(out, "all")}
            self.assertEqual(sorted(got), ["AB123", "XY9"])
            p = got["AB123"].plates[0]
            crop = cv2.imread(got["AB123"].path, cv2.IMREAD_GRAYSCALE)
            self.assertEqual(crop.shape, (48, 160))  # 30% of 100x30 on each side
            self.assertEqual((p.x, p.y, p.w, p.h), (30, 9, 100, 30))
            ys, xs = np.nonzero(crop < 100)
            self.assertEqual((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), (30, 9, 130, 39))
            p = got["XY9"].plates[0]  # clipped at the image's corner
            self.assertEqual(cv2.imread(got["XY9"].path).shape[:2], (20, 52))
            self.assertEqual((p.x, p.y), (0, 0))


class SubsetTest(unittest.TestCase):
    def test_picks_by_name_and_darkness_and_keeps_the_boxes(self):
        with tempfile.TemporaryDirectory() as d:
            src, out = os.path.join(d, "src"), os.path.join(d, "out")
            os.makedirs(os.path.join(src, "images"))
            os.makedirs(os.path.join(src, "labels"))
            # YOLO labels without text, as in the detection-only sets: a night frame and a day frame
            for name, grey in (("nightride_1", 20), ("dayride_1", 150)):
                cv2.imwrite(os.path.join(src, "images", name + ".jpg"), np.full((100, 200, 3), grey, np.uint8))
                with open(os.path.join(src, "labels", name + ".txt"), "w") as f:
                    f.write("0 0.5 0.5 0.2 0.1\n")
            self.assertEqual(make_subset.make_subset([src], out, darker_than=40), (1, 1))
            (s,) = vigil_data.load_dataset(out, "all")
            self.assertIn("nightride_1", s.path)
            self.assertTrue(os.path.islink(s.path))
            (p,) = s.plates
            self.assertEqual((p.x, p.y, p.w, p.h, p.text), (80, 45, 40, 10, ""))
            day = os.path.join(d, "day")
            self.assertEqual(make_subset.make_subset([src], day, name_contains="day"), (1, 1))
            self.assertEqual(make_subset.make_subset([src], os.path.join(d, "none"), name_contains="day",
                                                     darker_than=40), (0, 0))
            self.assertEqual(make_subset.make_subset([src], os.path.join(d, "lit"), brighter_than=40), (1, 1))


class ScoreHeadTest(unittest.TestCase):
    def test_grafted_head_changes_scores_only(self):
        import torch
        import refit_score_head as rsh
        from det_model import PlateDetector, export_onnx
        from train_detector import MODEL_KW
        torch.manual_seed(0)
        with tempfile.TemporaryDirectory() as d:
            src, dst = os.path.join(d, "det.onnx"), os.path.join(d, "out.onnx")
            export_onnx(PlateDetector(**MODEL_KW), src, h=64, w=96)
            head = rsh.ScoreHead(MODEL_KW["head"], 4)
            self.assertEqual(float(head(torch.ones(1, MODEL_KW["head"], 5, 5)).abs().max()), 0.0)  # starts at zero
            torch.nn.init.normal_(head.c2.weight, std=1.0)
            torch.nn.init.constant_(head.c2.bias, 2.0)
            rsh.graft(src, head, dst)
            rgb = np.random.default_rng(0).integers(0, 255, (60, 90, 3), dtype=np.uint8)
            d_rest, d_score = rsh.check_graft(src, dst, head, rgb, 32)  # raises when they differ
            self.assertEqual(d_rest, 0.0)
            blob = rsh.padded_blob(rgb, 32)
            self.assertEqual(blob.shape, (1, 3, 64, 96))
            outs = []
            for path in (src, dst):
                net = cv2.dnn.readNetFromONNX(path)
                net.setInput(blob)
                outs.append(net.forward("out"))
            self.assertGreater(float(np.abs(outs[0][0, 0] - outs[1][0, 0]).max()), 1e-3)

    def test_padding_is_ignored_and_plates_are_targets(self):
        import refit_score_head as rsh

        class FakeNet:
            def setInput(self, blob):
                self.shape = blob.shape

            def forward(self, names):
                h, w = self.shape[2] // 4, self.shape[3] // 4
                return np.zeros((1, 8, h, w), np.float32), np.zeros((1, 1, h, w), np.float32)

        views = rsh.Views()
        rgb = np.zeros((100, 150, 3), np.uint8)
        plates = [(np.array([[40, 40], [80, 40], [80, 52], [40, 52]], np.float32), False)]
        views.add(FakeNet(), rgb, plates, 32)
        ((shape, items),) = views.by_shape.items()
        self.assertEqual(shape, (32, 40))  # 128 x 160 padded input
        f, logit, hm, ign = items[0]
        self.assertEqual(hm[0, 46 // 4, 60 // 4], 1.0)
        self.assertTrue((ign[0, 25:, :] == 1).all() and (ign[0, :, 38:] == 1).all())
        self.assertTrue((ign[0, :25, :38] == 0).all())


class OnnxInitTest(unittest.TestCase):
    """--init MODEL.onnx: the exported weights go back into the torch network unchanged."""

    @staticmethod
    def _trained_looking(model, seed):
        import torch
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():  # BatchNorms far from identity, so folding them is not a no-op
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                    m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                    m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
        return model.eval()

    def test_reader_round_trip(self):
        import torch
        import onnx_init
        import train_reader as tr
        torch.manual_seed(0)
        src = self._trained_looking(tr.Reader(), 1)
        x = torch.rand(8, 1, tr.IN_H, tr.IN_W) * 2 - 1
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "reader.onnx")
            tr.export(src, path, {"steps": 7, "samples": 448, "minutes": 1.5})
            got = onnx_init.load_onnx_weights(tr.Reader(), path, x)
            self.assertEqual(onnx_init.sidecar_training(path)["samples"], 448)
        with torch.no_grad():
            want, mine = src(x), got(x)
            self.assertLess(float((want - mine).abs().max()), 1e-4)
            # in training mode the calibration batch is normalised by its own statistics: the same function
            got.train()
            self.assertLess(float((got(x) - want).abs().max()), 1e-3)

    def test_detector_round_trip_and_other_architectures_refused(self):
        import torch
        import onnx_init
        import train_reader as tr
        from det_model import PlateDetector, export_onnx
        from train_detector import MODEL_KW
        torch.manual_seed(0)
        src = self._trained_looking(PlateDetector(**MODEL_KW), 2)
        x = torch.rand(4, 3, 64, 96)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "detector.onnx")
            export_onnx(src, path, h=64, w=96)
            got = onnx_init.load_onnx_weights(PlateDetector(**MODEL_KW), path, x)
            with torch.no_grad():
                self.assertLess(float((src.eval()(x) - got(x)).abs().max()), 1e-4)
            with self.assertRaisesRegex(SystemExit, "not a model of this architecture"):
                onnx_init.load_onnx_weights(tr.Reader(), path, torch.zeros(2, 1, tr.IN_H, tr.IN_W))
            with self.assertRaisesRegex(SystemExit, "not a model of this architecture"):
                onnx_init.load_onnx_weights(PlateDetector(widths=(16, 24, 48, 64, 96)), path, x)
            self.assertEqual(onnx_init.sidecar_training(path), {})  # no sidecar


if __name__ == "__main__":
    unittest.main()
