// Camera config files of `vigil watch` (apps/vigil/camera_config.cpp): both layouts, defaults, and that
// every mistake is reported with the file, the line and the key. `vigil watch --check` is tested as a user
// runs it in watch_test.cpp.
#include "camera_config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;
using vigil::cli::Camera;
using vigil::cli::parse_camera_config;
using vigil::cli::parse_camera_config_text;

namespace {

bool contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

// The error message parsing `text` as `path` gives ("" when it parses).
std::string error_of(const std::string& text, const std::string& path = "cam1.json") {
  const auto r = parse_camera_config_text(text, path, Camera{});
  return r ? "" : r.error();
}

TEST(CameraConfig, OneCameraPerFileTakesItsIdFromTheFileName) {
  const std::string text = R"({
  // The gate camera
  "source": "/dev/video0",
  "name": "Gate, north lane",
  "roi": [[0, 300], [1280, 300], [1280, 720], [0, 720]],
  "min_plate_width": 40,
  "server": "https://registry.example.org:8443",
  "token": "abc123",
  "outbox": "/var/lib/vigil/cam1.outbox"
})";
  Camera defaults;
  defaults.stride = 3;
  const auto r = parse_camera_config_text(text, "/etc/vigil/cameras/gate-1.json", defaults);
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(r->size(), 1u);
  const Camera& c = r->front();
  EXPECT_EQ(c.id, "gate-1");
  EXPECT_EQ(c.name, "Gate, north lane");
  EXPECT_EQ(c.source, "/dev/video0");
  ASSERT_EQ(c.roi.size(), 4u);
  EXPECT_EQ(c.roi[1], cv::Point2f(1280, 300));
  EXPECT_EQ(c.min_plate_width, 40);
  EXPECT_EQ(c.stride, 3);  // from the defaults
  EXPECT_EQ(c.server, "https://registry.example.org:8443");
  EXPECT_EQ(c.token, "abc123");
  EXPECT_EQ(c.outbox, "/var/lib/vigil/cam1.outbox");
  EXPECT_EQ(c.origin, "/etc/vigil/cameras/gate-1.json:1");

  const auto with_id = parse_camera_config_text(R"({"id": "lane2", "source": "x.mp4"})", "cam1.json", {});
  ASSERT_TRUE(with_id) << with_id.error();
  EXPECT_EQ(with_id->front().id, "lane2");
}

TEST(CameraConfig, SeveralCamerasShareTheKeysBesideTheList) {
  const std::string text = R"({
  "min_plate_width": 30,
  "server": "http://10.0.0.2:8080",
  "cameras": [
    {"id": "lane1", "source": "rtsp://10.0.0.5/stream1"},
    {"source": "rtsp://10.0.0.6/stream1", "min_plate_width": 50, "motion": false}
  ]
})";
  const auto r = parse_camera_config_text(text, "site.json", Camera{});
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].id, "lane1");
  EXPECT_EQ((*r)[0].min_plate_width, 30);
  EXPECT_EQ((*r)[0].server, "http://10.0.0.2:8080");
  EXPECT_EQ((*r)[0].origin, "site.json:5");
  EXPECT_EQ((*r)[1].id, "cam2");
  EXPECT_EQ((*r)[1].min_plate_width, 50);
  EXPECT_FALSE((*r)[1].motion);
  EXPECT_TRUE((*r)[0].motion);
  EXPECT_EQ((*r)[1].origin, "site.json:6");
}

TEST(CameraConfig, ErrorsNameTheFileTheLineAndTheKey) {
  EXPECT_EQ(error_of(R"({
  "source": "/dev/video0",
  "roi": [[0, 0], [10, 10]]
})"),
            "cam1.json:3: roi: expected at least 3 [x, y] points, got 2 (a polygon around the road, in frame "
            "pixels)");
  // A bad point of a roi written one point a line: the line of that point.
  EXPECT_TRUE(
      contains(error_of(R"({
  "source": "/dev/video0",
  "roi": [
    [0, 0],
    [10, 0],
    [10, -5]
  ]
})"),
               "cam1.json:6: roi: point 3 must be [x, y] with x, y >= 0 in frame pixels (got [10,-5])"));
  EXPECT_EQ(error_of("{\"source\": \"a.mp4\",\n \"stride\": 0}"),
            "cam1.json:2: stride: must be an integer >= 1 (got 0)");
  EXPECT_EQ(error_of("{\"source\": \"a.mp4\",\n\n \"motion_threshold\": 300}"),
            "cam1.json:3: motion_threshold: must be an integer from 1 to 255 (got 300)");
  EXPECT_EQ(error_of("{\"source\": \"a.mp4\", \"motion_area\": \"lots\"}"),
            "cam1.json:1: motion_area: must be a number from 0 to 1 (got \"lots\")");
  EXPECT_EQ(error_of("{\"source\": \"a.mp4\", \"live\": true}"),
            "cam1.json:1: live: must be \"auto\", \"yes\" or \"no\" (got true)");
  EXPECT_EQ(error_of("{\"source\": \"\"}"), "cam1.json:1: source: must be a non-empty string (got \"\")");
  EXPECT_TRUE(contains(error_of("{\n\"name\": \"Gate\"\n}"), "cam1.json:1: missing key 'source'"));
}

TEST(CameraConfig, UnknownKeysAreRejectedWithADidYouMean) {
  EXPECT_EQ(error_of("{\"source\": \"a.mp4\",\n \"rio\": [[0,0],[1,0],[1,1]]}"),
            "cam1.json:2: unknown key 'rio' (did you mean 'roi'?)");
  EXPECT_EQ(error_of("{\"source\": \"a.mp4\", \"motion_treshold\": 30}"),
            "cam1.json:1: unknown key 'motion_treshold' (did you mean 'motion_threshold'?)");
  EXPECT_EQ(error_of("{\"source\": \"a.mp4\", \"threshold\": 30}"),
            "cam1.json:1: unknown key 'threshold' (did you mean 'motion_threshold'?)");
  EXPECT_EQ(error_of("{\"source\": \"a.mp4\", \"Source\": \"b.mp4\"}"),
            "cam1.json:1: unknown key 'Source' (did you mean 'source'?)");
  const std::string far = error_of("{\"source\": \"a.mp4\", \"colour\": \"red\"}");
  EXPECT_TRUE(contains(far, "cam1.json:1: unknown key 'colour' (known keys: id, name, source, roi,")) << far;
  // In a list of cameras the entry is named.
  EXPECT_EQ(error_of("{\"cameras\": [\n {\"source\": \"a.mp4\"},\n {\"source\": \"b.mp4\", \"sever\": "
                     "\"http://x\"}]}"),
            "cam1.json:3: cameras[1]: unknown key 'sever' (did you mean 'server'?)");
  EXPECT_EQ(error_of("{\"camera\": [{\"source\": \"a.mp4\"}]}"),
            "cam1.json:1: unknown key 'camera' (did you mean 'cameras'?)");
}

TEST(CameraConfig, TheFirstMistakeInTheFileIsReported) {
  // Keys are checked in file order, not in the alphabetical order nlohmann::json keeps them.
  EXPECT_EQ(error_of("{\"source\": \"a.mp4\",\n \"stride\": -1,\n \"min_frames\": 0}"),
            "cam1.json:2: stride: must be an integer >= 1 (got -1)");
}

TEST(CameraConfig, BrokenJsonSaysLineAndColumn) {
  std::string e = error_of("{\n  \"source\": \"a.mp4\"\n  \"stride\": 2\n}\n");
  EXPECT_TRUE(
      contains(e,
               "cam1.json:3:10: not valid JSON: syntax error while parsing object - unexpected string "
               "literal; expected '}' (a missing comma?)"))
      << e;
  e = error_of("{\n  \"source\": \"a.mp4\",\n  \"stride\": 2 x\n}\n");
  EXPECT_TRUE(contains(e,
                       "cam1.json:3:15: not valid JSON: syntax error while parsing object - invalid literal; "
                       "last read: '2 x'"))
      << e;
  EXPECT_FALSE(contains(e, "missing comma")) << e;
  EXPECT_TRUE(contains(error_of("  \n"), "cam1.json: the file is empty"));
  EXPECT_TRUE(contains(error_of("[{\"source\": \"a.mp4\"}]"), "cam1.json:1: expected an object"));
}

TEST(CameraConfig, CommentsAreAllowedAndKeepTheLineNumbers) {
  EXPECT_EQ(error_of("/* a camera\n   box */\n{\n  // where\n  \"source\": \"a.mp4\", // the file\n  "
                     "\"stride\": 0\n}"),
            "cam1.json:6: stride: must be an integer >= 1 (got 0)");
}

TEST(CameraConfig, TrailingCommasAreAllowed) {
  const auto r = parse_camera_config_text(
      "{\n  \"source\": \"a.mp4\",\n  \"roi\": [[0, 0], [9, 0], [9, 9],],\n  \"name\": \"a, b\", // "
      "last\n}\n",
      "cam1.json", {});
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->front().roi.size(), 3u);
  EXPECT_EQ(r->front().name, "a, b");
  // A comma where a key should follow is still an error.
  EXPECT_TRUE(contains(error_of("{\"source\": \"a.mp4\", , \"stride\": 2}"), "cam1.json:1:"));
}

TEST(CameraConfig, TheExampleConfigOfThePackageIsValid) {
  const auto r =
      parse_camera_config(std::string(VIGIL_SOURCE_DIR) + "/packaging/etc/cameras/example.json", {});
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->front().id, "example");
  EXPECT_EQ(r->front().source, "/dev/video0");
}

TEST(CameraConfig, AKeyGivenTwiceIsAnError) {
  EXPECT_EQ(error_of("{\"source\": \"a.mp4\",\n \"stride\": 2,\n \"stride\": 3}"),
            "cam1.json:3: stride: given twice (first on line 2); keep one");
}

TEST(CameraConfig, UploadKeysAreChecked) {
  EXPECT_TRUE(contains(error_of("{\"source\": \"a.mp4\",\n \"server\": \"ftp://host\"}"),
                       "cam1.json:2: server: expected the registry's base URL, http://HOST[:PORT] or "
                       "https://HOST[:PORT] (got \"ftp://host\")"));
  EXPECT_TRUE(contains(error_of("{\"source\": \"a.mp4\", \"server\": \"https://\"}"), "server: expected"));
  EXPECT_EQ(error_of("{\"source\": \"a.mp4\", \"server\": \"https://h\",\n \"token\": \"abc\\n\"}"),
            "cam1.json:2: token: must not contain spaces or control characters (check for a pasted line "
            "break)");
  EXPECT_TRUE(
      contains(error_of("{\"source\": \"a.mp4\", \"server\": \"https://h\",\n \"outbox\": \"out.db\"}"),
               "cam1.json:2: outbox: expected an absolute file path"));
  EXPECT_TRUE(contains(error_of("{\"source\": \"a.mp4\",\n \"outbox\": \"/var/lib/vigil/o\"}"),
                       "cam1.json:2: outbox: set but 'server' is not"));
  EXPECT_TRUE(contains(error_of("{\"source\": \"a.mp4\",\n \"token\": \"t\"}"),
                       "cam1.json:2: token: set but 'server' is not"));
  EXPECT_EQ(
      error_of("{\"token\": \"t\",\n \"cameras\": [{\"source\": \"a.mp4\", \"server\": \"http://h\"},\n "
               "{\"source\": \"b.mp4\"}]}"),
      "cam1.json:3: cameras[1]: 'token' is set (line 1) but this camera has no 'server': add \"server\": "
      "\"https://HOST\" (the registry the events are uploaded to)");
  // A token from the command line or the environment (the defaults) is not the file's mistake.
  Camera defaults;
  defaults.token = "from-VIGIL_TOKEN";
  EXPECT_TRUE(parse_camera_config_text("{\"source\": \"a.mp4\"}", "cam1.json", defaults));
  // Given beside "cameras", the server is every camera's.
  const auto r = parse_camera_config_text(
      R"({"server": "https://h", "cameras": [{"source": "a.mp4", "token": "t"}]})", "x.json", {});
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->front().server, "https://h");
  EXPECT_EQ(r->front().token, "t");
}

TEST(CameraConfig, CameraIdsAreNamesOfFilesAndUnits) {
  EXPECT_TRUE(contains(error_of("{\"id\": \"gate 1\", \"source\": \"a.mp4\"}"),
                       "cam1.json:1: id: must be at most 64 letters, digits"));
  EXPECT_TRUE(contains(error_of("{\"source\": \"a.mp4\"}", "/tmp/my camera.json"),
                       "/tmp/my camera.json:1: the file name 'my camera' cannot be the camera id"));
  EXPECT_EQ(error_of("{\"id\": \"gate\", \"source\": \"a.mp4\"}", "/tmp/my camera.json"), "");
  EXPECT_EQ(
      error_of("{\"cameras\": [\n {\"id\": \"a\", \"source\": \"a.mp4\"},\n {\"id\": \"a\", "
               "\"source\": \"b.mp4\"}]}"),
      "cam1.json:3: cameras[1].id: duplicate camera id 'a' (also on line 2); give each camera its own id");
}

TEST(CameraConfig, TheListLayoutIsChecked) {
  EXPECT_EQ(error_of("{\"source\": \"a.mp4\", \"cameras\": [{\"source\": \"b.mp4\"}]}"),
            "cam1.json:1: source: belongs in each entry of \"cameras\", not beside it");
  EXPECT_TRUE(contains(error_of("{\"cameras\": []}"), "cam1.json:1: cameras: must be a non-empty list"));
  EXPECT_TRUE(
      contains(error_of("{\"cameras\": [\n \"a.mp4\"]}"), "cam1.json:2: cameras[0]: expected an object"));
  EXPECT_TRUE(contains(error_of("{\"cameras\": [{\"source\": \"a.mp4\"},\n {\"id\": \"b\"}]}"),
                       "cam1.json:2: cameras[1]: missing key 'source'"));
}

TEST(CameraConfig, SourcesAreShownWithoutPasswords) {
  using vigil::cli::source_for_display;
  EXPECT_EQ(source_for_display("rtsp://admin:s3cr:et@10.0.0.5:554/stream1"),
            "rtsp://admin:***@10.0.0.5:554/stream1");
  EXPECT_EQ(source_for_display("http://10.0.0.5:8080/video.mjpg"), "http://10.0.0.5:8080/video.mjpg");
  EXPECT_EQ(source_for_display("rtsp://user@host/s?a=b@c"), "rtsp://user@host/s?a=b@c");
  EXPECT_EQ(source_for_display("/dev/video0"), "/dev/video0");
}

TEST(CameraConfig, FilesThatCannotBeReadSaySo) {
  const fs::path dir = fs::temp_directory_path() / ("vigil-camera-config-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto r = parse_camera_config((dir / "missing.json").string(), {});
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error(), "cannot open camera config " + (dir / "missing.json").string()))
      << r.error();
  r = parse_camera_config(dir.string(), {});
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error(), "is a folder")) << r.error();
  std::ofstream(dir / "cam7.json") << "{\"source\": \"/dev/video7\"}\n";
  r = parse_camera_config((dir / "cam7.json").string(), {});
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->front().id, "cam7");
  fs::remove_all(dir);
}

}  // namespace
