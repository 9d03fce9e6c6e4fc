// The vigil command line as a user runs it: the binary is spawned with generated inputs and its stdout,
// stderr and exit status are checked. The models' accuracy is still changing, so these tests check the
// structure and behaviour of the output, never particular plate texts.
#include <sys/stat.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "vigil/common.hpp"
#include "vigil/dataset.hpp"

extern char** environ;

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// What one run of the binary did.
struct RunResult {
  int status = -1;  // exit status; 128 + the signal's number when a signal ended it
  bool timed_out = false;
  std::string out, err;
};

std::ostream& operator<<(std::ostream& os, const RunResult& r) {
  return os << "status " << r.status << (r.timed_out ? " (timed out)" : "") << "\n--- stdout ---\n"
            << r.out << "--- stderr ---\n"
            << r.err;
}

// Runs vigil with `args`, feeding `input` on its stdin. A run that takes longer than timeout_s is killed
// and reported as timed out, so a hang fails the test instead of blocking the suite.
RunResult run_vigil(const std::vector<std::string>& args, const std::string& input = "", int timeout_s = 90) {
  // The child may exit without reading its stdin; writing to that pipe must not kill the test.
  ::signal(SIGPIPE, SIG_IGN);
  RunResult r;
  std::vector<std::string> strings = {VIGIL_BINARY};
  strings.insert(strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return r;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, VIGIL_BINARY, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (spawned != 0) {
    ADD_FAILURE() << "cannot run " << VIGIL_BINARY << ": " << std::strerror(spawned);
    ::close(in[1]);
    ::close(out[0]);
    ::close(err[0]);
    return r;
  }

  int stdin_fd = in[1];
  std::size_t written = 0;
  if (input.empty()) {
    ::close(stdin_fd);
    stdin_fd = -1;
  } else {
    ::fcntl(stdin_fd, F_SETFL, O_NONBLOCK);
  }
  int out_fd = out[0], err_fd = err[0];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  auto ms_left = [&] {
    return int(std::max<long long>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())
               .count()));
  };
  while (out_fd >= 0 || err_fd >= 0 || stdin_fd >= 0) {
    std::vector<pollfd> fds;
    if (stdin_fd >= 0) fds.push_back({stdin_fd, POLLOUT, 0});
    if (out_fd >= 0) fds.push_back({out_fd, POLLIN, 0});
    if (err_fd >= 0) fds.push_back({err_fd, POLLIN, 0});
    const int left = ms_left();
    if (left == 0) {
      r.timed_out = true;
      break;
    }
    if (::poll(fds.data(), fds.size(), left) < 0 && errno != EINTR) break;
    for (const auto& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == stdin_fd) {
        const ssize_t n = ::write(stdin_fd, input.data() + written, input.size() - written);
        if (n > 0) written += std::size_t(n);
        if (n < 0 && errno != EAGAIN) written = input.size();  // the child closed its stdin
        if (written == input.size()) {
          ::close(stdin_fd);
          stdin_fd = -1;
        }
        continue;
      }
      char buf[65536];
      const ssize_t n = ::read(p.fd, buf, sizeof buf);
      if (n > 0) {
        (p.fd == out_fd ? r.out : r.err).append(buf, std::size_t(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(p.fd);
        (p.fd == out_fd ? out_fd : err_fd) = -1;
      }
    }
  }
  for (int fd : {stdin_fd, out_fd, err_fd})
    if (fd >= 0) ::close(fd);

  // The output is closed; wait for the exit, still within the deadline.
  if (r.timed_out) ::kill(pid, SIGKILL);
  int wstatus = 0;
  for (;;) {
    const pid_t done = ::waitpid(pid, &wstatus, r.timed_out ? 0 : WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) {
      ADD_FAILURE() << "waitpid: " << std::strerror(errno);
      return r;
    }
    if (!r.timed_out && ms_left() == 0) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
    } else if (!r.timed_out) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  return r;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Parses one JSON object per line; a line that is not JSON fails the test.
std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  for (const auto& line : lines_of(text)) {
    json j = json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
    out.push_back(std::move(j));
  }
  return out;
}

bool is_plate_text(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); });
}

bool in_unit_range(const json& v) {
  return v.is_number() && v.get<double>() >= 0.0 && v.get<double>() <= 1.0;
}

// Checks one entry of "plates" against the image it was found in.
void expect_valid_plate(const json& p, int width, int height, std::size_t top_n) {
  SCOPED_TRACE(p.dump());
  ASSERT_TRUE(p.is_object());
  ASSERT_TRUE(p.contains("text") && p["text"].is_string());
  const std::string text = p["text"];
  EXPECT_FALSE(text.empty());  // plates read as nothing are not reported
  EXPECT_TRUE(is_plate_text(text)) << text;
  EXPECT_TRUE(in_unit_range(p["confidence"]));
  EXPECT_TRUE(in_unit_range(p["detection_confidence"]));
  EXPECT_TRUE(p["fits_format"].is_boolean());
  EXPECT_TRUE(p["country"].is_null() || p["country"].is_string());

  ASSERT_TRUE(p["box"].is_array());
  ASSERT_EQ(p["box"].size(), 4u);
  for (const auto& v : p["box"]) ASSERT_TRUE(v.is_number_integer()) << v;
  const int x = p["box"][0], y = p["box"][1], w = p["box"][2], h = p["box"][3];
  EXPECT_GE(x, 0);
  EXPECT_GE(y, 0);
  EXPECT_GT(w, 0);
  EXPECT_GT(h, 0);
  EXPECT_LE(x + w, width);
  EXPECT_LE(y + h, height);

  ASSERT_TRUE(p["corners"].is_array());
  ASSERT_EQ(p["corners"].size(), 4u);
  for (const auto& c : p["corners"]) {
    ASSERT_TRUE(c.is_array() && c.size() == 2u) << c;
    EXPECT_TRUE(c[0].is_number() && c[1].is_number()) << c;
    // Rounded to a tenth of a pixel.
    EXPECT_NEAR(c[0].get<double>() * 10, std::round(c[0].get<double>() * 10), 1e-6) << c;
  }

  ASSERT_TRUE(p["candidates"].is_array());
  ASSERT_GE(p["candidates"].size(), 1u);
  EXPECT_LE(p["candidates"].size(), top_n);
  EXPECT_EQ(p["candidates"][0]["text"], p["text"]);  // the chosen read comes first
  for (const auto& c : p["candidates"]) {
    ASSERT_TRUE(c["text"].is_string()) << c;
    EXPECT_TRUE(is_plate_text(c["text"].get<std::string>())) << c;
    EXPECT_TRUE(in_unit_range(c["confidence"])) << c;
  }
}

// Checks the structure every `read --json` line has; `width`/`height` are those of a good input.
void expect_read_line(const json& j, const std::string& image) {
  SCOPED_TRACE(j.dump());
  ASSERT_TRUE(j.is_object());
  for (const char* key : {"image", "width", "height", "plates", "ms", "error"})
    EXPECT_TRUE(j.contains(key)) << "missing " << key;
  EXPECT_EQ(j["image"], image);
  EXPECT_TRUE(j["width"].is_number_integer());
  EXPECT_TRUE(j["height"].is_number_integer());
  EXPECT_TRUE(j["plates"].is_array());
  ASSERT_TRUE(j["ms"].is_object());
  for (const char* key : {"detect", "read", "total"}) {
    ASSERT_TRUE(j["ms"].contains(key)) << "missing ms." << key;
    EXPECT_TRUE(j["ms"][key].is_number());
    EXPECT_GE(j["ms"][key].get<double>(), 0.0);
  }
  EXPECT_TRUE(j["error"].is_null() || j["error"].is_string());
}

std::uint32_t crc32(const std::string& bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string be32(std::uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 0xFF), char((v >> 8) & 0xFF), char(v & 0xFF)};
}

// A bundled photo with real plates in it.
std::string sample_photo() {
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(fs::path(VIGIL_SOURCE_DIR) / "samples"))
    if (e.path().extension() == ".jpg") found.push_back(e.path());
  std::sort(found.begin(), found.end());
  EXPECT_FALSE(found.empty()) << "no samples/*.jpg in " << VIGIL_SOURCE_DIR;
  return found.empty() ? std::string() : found.front().string();
}

// Detection and reading thresholds low enough that the sample photo gives plates with any usable model.
const std::vector<std::string> kPermissive = {"--detect-threshold", "0.05", "--min-confidence", "0"};

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Each test works in its own folder under the system temp dir, removed afterwards.
class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::temp_directory_path() / ("vigil_cli_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string path(const std::string& relative) const { return (root_ / relative).string(); }

  std::string write_file(const std::string& relative, const std::string& bytes) {
    const fs::path p = root_ / relative;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
    return p.string();
  }

  // A grey picture with a few shapes and a white plate-like box with dark text at (100,150) 100x30 when the
  // image is large enough.
  static cv::Mat picture(int width, int height) {
    cv::Mat m(height, width, CV_8UC3, cv::Scalar(128, 128, 128));
    cv::circle(m, {width / 4, height / 4}, std::max(2, height / 10), cv::Scalar(30, 60, 200), -1);
    cv::line(m, {0, height - 1}, {width - 1, 0}, cv::Scalar(20, 20, 20), 3);
    cv::rectangle(m, cv::Rect(100, 150, 100, 30) & cv::Rect(0, 0, width, height), cv::Scalar(250, 250, 250),
                  -1);
    cv::putText(m, "AB123", {105, 175}, cv::FONT_HERSHEY_SIMPLEX, 0.8, cv::Scalar(10, 10, 10), 2);
    return m;
  }

  std::string write_image(const std::string& relative, int width = 640, int height = 480) {
    const fs::path p = root_ / relative;
    fs::create_directories(p.parent_path());
    EXPECT_TRUE(cv::imwrite(p.string(), picture(width, height))) << p;
    return p.string();
  }

  static std::string jpeg_bytes(int width, int height) {
    std::vector<uchar> buf;
    EXPECT_TRUE(cv::imencode(".jpg", picture(width, height), buf));
    return std::string(buf.begin(), buf.end());
  }

  // A PNG whose header claims width x height pixels, followed by junk instead of image data.
  std::string write_png_header(const std::string& relative, std::uint32_t width, std::uint32_t height) {
    const std::string ihdr = "IHDR" + be32(width) + be32(height) + std::string("\x08\x02\x00\x00\x00", 5);
    return write_file(relative, std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + ihdr + be32(crc32(ihdr)) +
                                    std::string(200, '\x5a'));
  }

  // Tiny annotated datasets, one per importer format, over generated images with one plate-like box each.
  struct Dataset {
    std::string spec;
    std::size_t images, plates;
  };
  std::vector<Dataset> write_datasets() {
    write_image("alpr/car1.jpg", 320, 240);
    write_file("alpr/car1.txt", "car1.jpg\t100\t150\t100\t30\tAB123\n");
    write_image("alpr/car2.jpg", 320, 240);
    write_file("alpr/car2.txt", "car2.jpg\t100\t150\t100\t30\tAB123\ncar2.jpg\t10\t10\t60\t20\tXY99\n");

    write_image("voc/JPEGImages/car.jpg", 320, 240);
    write_file("voc/Annotations/car.xml",
               "<annotation>\n  <filename>car.jpg</filename>\n  <size><width>320</width><height>240</height>"
               "<depth>3</depth></size>\n  <object>\n    <name>plate</name>\n    <bndbox><xmin>100</xmin>"
               "<ymin>150</ymin><xmax>200</xmax><ymax>180</ymax></bndbox>\n  </object>\n</annotation>\n");

    write_image("yolo/images/car.jpg", 320, 240);
    write_file("yolo/labels/car.txt", "0 0.46875 0.6875 0.3125 0.125\n");

    write_image("csv/images/car.png", 320, 240);
    const std::string csv = write_file("csv/labels.csv",
                                       "filename,width,height,class,xmin,ymin,xmax,ymax,text\ncar.png,320,"
                                       "240,plate,100,150,200,180,AB123\n");
    return {{path("alpr"), 2, 3}, {path("voc"), 1, 1}, {path("yolo"), 1, 1}, {csv, 1, 1}};
  }

  fs::path root_;
};

// ---- general usage ----

TEST_F(CliTest, VersionPrintsTheLibraryVersion) {
  const auto r = run_vigil({"--version"});
  EXPECT_EQ(r.status, 0) << r;
  EXPECT_EQ(r.out, std::string("vigil ") + vigil::version() + "\n") << r;
}

TEST_F(CliTest, HelpListsTheSubcommandsAndTheirFlags) {
  const auto r = run_vigil({"--help"});
  EXPECT_EQ(r.status, 0) << r;
  EXPECT_TRUE(contains(r.out, "read")) << r;
  EXPECT_TRUE(contains(r.out, "bench")) << r;
  const auto read = run_vigil({"read", "--help"});
  EXPECT_EQ(read.status, 0) << read;
  for (const char* flag : {"--json", "--annotate", "--min-confidence", "--country", "--models", "--reader",
                           "--skip", "--explain", "--profile"})
    EXPECT_TRUE(contains(read.out, flag)) << flag << "\n" << read;
}

TEST_F(CliTest, ReadWithoutInputsIsAUsageError) {
  const auto r = run_vigil({"read"});
  EXPECT_EQ(r.status, 2) << r;
  EXPECT_TRUE(contains(r.err, "inputs")) << r;
  EXPECT_EQ(r.out, "") << r;

  // A folder with no images in it is not an input either.
  write_file("empty/notes.txt", "no pictures here\n");
  const auto empty = run_vigil({"read", path("empty")});
  EXPECT_NE(empty.status, 0) << empty;
  EXPECT_TRUE(contains(empty.err, "no images")) << empty;
}

TEST_F(CliTest, UnknownSubcommandIsNamedInTheError) {
  const auto r = run_vigil({"raed", "car.jpg"});
  EXPECT_EQ(r.status, 2) << r;
  EXPECT_TRUE(contains(r.err, "raed")) << r;
  EXPECT_EQ(r.out, "") << r;

  const auto none = run_vigil({});
  EXPECT_EQ(none.status, 2) << none;
  EXPECT_TRUE(contains(none.err, "subcommand")) << none;

  const auto option = run_vigil({"read", "--frobnicate", path("x.jpg")});
  EXPECT_EQ(option.status, 2) << option;
  EXPECT_TRUE(contains(option.err, "--frobnicate")) << option;
}

// ---- read ----

TEST_F(CliTest, ReadJsonReportsEveryInputInOrderAndKeepsGoingAfterBadOnes) {
  const std::string good_jpg = write_image("good.jpg");
  const std::string sample = sample_photo();
  const std::string zero = write_file("zero.jpg", "");
  const std::string pdf =
      write_file("paper.jpg", "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\n");
  const std::string whole = jpeg_bytes(640, 480);
  const std::string truncated = write_file("truncated.jpg", whole.substr(0, whole.size() / 2));
  const std::string huge = write_png_header("huge.png", 100000, 100000);
  const std::string missing = path("missing.jpg");
  const std::string nested_b = write_image("folder/b.png", 320, 240);
  const std::string nested_a = write_image("folder/sub/deeper/a.jpeg", 200, 150);
  write_file("folder/notes.txt", "not an image, skipped\n");
  const std::string listed = write_image("listed.jpg", 300, 200);
  const std::string good_png = write_image("good.png", 400, 300);

  const auto r = run_vigil({"read", "--json", good_jpg, sample, zero, pdf, truncated, huge, missing,
                            path("folder"), "-", good_png},
                           listed + "\n");
  EXPECT_EQ(r.status, 1) << r;  // some inputs were bad
  EXPECT_FALSE(r.timed_out);

  struct Want {
    std::string image, error;  // error: "" for a good input, else words the message must contain
    int width = 0, height = 0;
  };
  const cv::Mat sample_mat = cv::imread(sample);
  const std::vector<Want> want = {
      {good_jpg, "", 640, 480},  {sample, "", sample_mat.cols, sample_mat.rows},
      {zero, "empty"},           {pdf, "not an image"},
      {truncated, "truncated"},  {huge, "too large"},
      {missing, "no such file"}, {nested_b, "", 320, 240},
      {nested_a, "", 200, 150},  {listed, "", 300, 200},
      {good_png, "", 400, 300},
  };
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), want.size()) << r;
  for (std::size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(want[i].image);
    const json& j = lines[i];
    expect_read_line(j, want[i].image);
    if (want[i].error.empty()) {
      EXPECT_TRUE(j["error"].is_null()) << j;
      EXPECT_EQ(j["width"], want[i].width);
      EXPECT_EQ(j["height"], want[i].height);
      EXPECT_GE(j["ms"]["total"].get<double>(), j["ms"]["detect"].get<double>());
      for (const auto& p : j["plates"]) expect_valid_plate(p, want[i].width, want[i].height, 5);
      EXPECT_FALSE(contains(r.err, want[i].image + ":")) << r;
    } else {
      ASSERT_TRUE(j["error"].is_string()) << j;
      EXPECT_TRUE(contains(j["error"].get<std::string>(), want[i].error)) << j;
      EXPECT_TRUE(j["plates"].empty()) << j;
      // stderr names the file and the problem.
      EXPECT_TRUE(contains(r.err, want[i].image + ": ")) << r;
    }
  }
  EXPECT_TRUE(contains(r.err, "11 images")) << r;
  EXPECT_TRUE(contains(r.err, "5 errors")) << r;
}

TEST_F(CliTest, ReadExitsZeroWhenEveryInputIsGood) {
  const std::string a = write_image("a.jpg");
  const std::string b = write_image("b.png", 320, 240);
  const auto r = run_vigil({"read", "--json", a, b});
  EXPECT_EQ(r.status, 0) << r;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r;
  for (const auto& j : lines) EXPECT_TRUE(j["error"].is_null()) << j;
  EXPECT_FALSE(contains(r.err, "vigil read: ")) << r;  // no complaints, only the summary
}

TEST_F(CliTest, ReadJsonPlateEntriesAreWellFormed) {
  const std::string sample = sample_photo();
  const cv::Mat m = cv::imread(sample);
  const auto r = run_vigil(std::vector<std::string>{"read", "--json", "--top", "3", sample} + kPermissive);
  ASSERT_EQ(r.status, 0) << r;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r;
  expect_read_line(lines[0], sample);
  const json& plates = lines[0]["plates"];
  ASSERT_FALSE(plates.empty()) << "no plates in " << sample << " even with permissive thresholds\n" << r;
  for (const auto& p : plates) expect_valid_plate(p, m.cols, m.rows, 3);
  for (std::size_t i = 1; i < plates.size(); ++i)  // most confident first
    EXPECT_GE(plates[i - 1]["confidence"].get<double>(), plates[i]["confidence"].get<double>());
}

TEST_F(CliTest, ReadPlainOutputHasALinePerPlateAndASummaryOnStderr) {
  const std::string sample = sample_photo();
  const std::string blank = write_image("blank.jpg", 320, 240);
  const std::vector<std::string> args = std::vector<std::string>{sample, blank} + kPermissive;
  const auto js = run_vigil(std::vector<std::string>{"read", "--json"} + args);
  ASSERT_EQ(js.status, 0) << js;
  const auto results = json_lines(js.out);
  ASSERT_EQ(results.size(), 2u) << js;

  const auto r = run_vigil(std::vector<std::string>{"read"} + args);
  ASSERT_EQ(r.status, 0) << r;
  const auto lines = lines_of(r.out);
  std::size_t expected_lines = 0, total_plates = 0;
  for (const auto& res : results) {
    const std::string image = res["image"];
    const std::size_t n = res["plates"].size();
    total_plates += n;
    expected_lines += std::max<std::size_t>(n, 1);
    const auto mine = std::count_if(lines.begin(), lines.end(),
                                    [&](const std::string& l) { return l.rfind(image + ": ", 0) == 0; });
    EXPECT_EQ(std::size_t(mine), std::max<std::size_t>(n, 1)) << image << "\n" << r;
    if (n == 0) {
      EXPECT_NE(std::find(lines.begin(), lines.end(), image + ": no plates"), lines.end()) << r;
    }
    for (const auto& p : res["plates"]) {
      const std::string start = image + ": " + p["text"].get<std::string>() + "  ";
      EXPECT_TRUE(std::any_of(lines.begin(), lines.end(),
                              [&](const std::string& l) { return l.rfind(start, 0) == 0; }))
          << start << "\n"
          << r;
    }
  }
  EXPECT_EQ(lines.size(), expected_lines) << r;
  EXPECT_TRUE(contains(r.err, "2 images, " + std::to_string(total_plates) + " plates, 0 errors")) << r;

  // One input: the result only, no summary.
  const auto one = run_vigil({"read", blank});
  EXPECT_EQ(one.status, 0) << one;
  EXPECT_EQ(one.err, "") << one;
  EXPECT_EQ(lines_of(one.out).size(), 1u) << one;
  EXPECT_EQ(one.out.rfind(blank + ": ", 0), 0u) << one;
}

TEST_F(CliTest, ReadAnnotateWritesAnImagePerGoodInputWithoutOverwriting) {
  const std::string first = write_image("day/car.jpg", 640, 480);
  const std::string second = write_image("night/car.jpg", 400, 300);
  const std::string bad = write_file("night/broken.jpg", "");
  const std::string out = path("annotated");  // created by vigil
  const auto r = run_vigil({"read", "--annotate", out, first, bad, second});
  EXPECT_EQ(r.status, 1) << r;  // the broken one
  std::vector<fs::path> written;
  for (const auto& e : fs::directory_iterator(out)) written.push_back(e.path());
  ASSERT_EQ(written.size(), 2u) << r;
  std::multiset<std::pair<int, int>> sizes;
  for (const auto& p : written) {
    const cv::Mat m = cv::imread(p.string());
    ASSERT_FALSE(m.empty()) << p;
    sizes.insert({m.cols, m.rows});
  }
  EXPECT_EQ(sizes, (std::multiset<std::pair<int, int>>{{640, 480}, {400, 300}}));
}

TEST_F(CliTest, ReadAnnotateIntoTheInputFolderLeavesThePhotosAlone) {
  const std::string photo = write_image("photos/car.jpg", 320, 240);
  const std::string other = write_image("elsewhere/car.jpg", 200, 100);
  auto bytes_of = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string before = bytes_of(photo);
  // The annotated copy of elsewhere/car.jpg must not take photos/car.jpg's name either.
  const auto r = run_vigil({"read", "--annotate", path("photos"), other, photo});
  EXPECT_EQ(r.status, 0) << r;
  EXPECT_EQ(bytes_of(photo), before);
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(path("photos"))) {
    ++files;
    EXPECT_FALSE(cv::imread(e.path().string()).empty()) << e.path();
  }
  EXPECT_EQ(files, 3u);  // the photo and two annotated copies
}

TEST_F(CliTest, ReadRegionAndCountriesAreCheckedAndSaySo) {
  const std::string image = write_image("car.jpg", 320, 240);
  for (const auto& [args, says] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--countries", "cz,xx"}, "unknown country 'xx'"},
           {{"--countries", "cz:0"}, "weight must be a number > 0"},
           {{"--region", "asia"}, "--region"},
           {{"--country", "us"}, "--region all"}}) {
    auto full = std::vector<std::string>{"read"};
    full.insert(full.end(), args.begin(), args.end());
    full.push_back(image);
    const auto bad = run_vigil(full);
    EXPECT_EQ(bad.status, 2) << bad;
    EXPECT_TRUE(contains(bad.err, says)) << says << "\n" << bad;
  }
  for (const std::vector<std::string> args : {std::vector<std::string>{"--region", "americas", "--country", "us"},
                                             std::vector<std::string>{"--countries", "cz:4,sk:2,UK"}}) {
    auto full = std::vector<std::string>{"read", "--json"};
    full.insert(full.end(), args.begin(), args.end());
    full.push_back(image);
    const auto ok = run_vigil(full);
    EXPECT_EQ(ok.status, 0) << ok;
  }
}

TEST_F(CliTest, ReadCountryMustBeKnown) {
  const std::string image = write_image("car.jpg", 320, 240);
  const auto bad = run_vigil({"read", "--country", "xx", image});
  EXPECT_EQ(bad.status, 2) << bad;
  EXPECT_TRUE(contains(bad.err, "unknown country 'xx'")) << bad;
  EXPECT_EQ(bad.out, "") << bad;
  for (const char* country : {"cz", "CZ"}) {
    const auto ok = run_vigil({"read", "--json", "--country", country, image});
    EXPECT_EQ(ok.status, 0) << country << "\n" << ok;
    const auto lines = json_lines(ok.out);
    ASSERT_EQ(lines.size(), 1u) << ok;
    EXPECT_TRUE(lines[0]["error"].is_null()) << ok;
  }
}

TEST_F(CliTest, ReadMissingModelsFolderSaysSo) {
  const std::string image = write_image("car.jpg", 320, 240);
  const std::string models = path("no-models-here");
  const auto r = run_vigil({"read", "--models", models, image});
  EXPECT_EQ(r.status, 2) << r;
  EXPECT_TRUE(contains(r.err, "model")) << r;
  EXPECT_TRUE(contains(r.err, models)) << r;
  EXPECT_EQ(r.out, "") << r;
}

TEST_F(CliTest, ReadMinConfidenceDropsPlates) {
  const std::string sample = sample_photo();
  const auto all = run_vigil(std::vector<std::string>{"read", "--json", sample} + kPermissive);
  ASSERT_EQ(all.status, 0) << all;
  auto lines = json_lines(all.out);
  ASSERT_EQ(lines.size(), 1u) << all;
  ASSERT_FALSE(lines[0]["plates"].empty()) << "nothing to drop\n" << all;

  const auto none =
      run_vigil({"read", "--json", "--detect-threshold", "0.05", "--min-confidence", "1.0", sample});
  ASSERT_EQ(none.status, 0) << none;
  lines = json_lines(none.out);
  ASSERT_EQ(lines.size(), 1u) << none;
  EXPECT_TRUE(lines[0]["error"].is_null()) << none;
  EXPECT_TRUE(lines[0]["plates"].empty()) << none;

  const auto out_of_range = run_vigil({"read", "--min-confidence", "1.5", sample});
  EXPECT_EQ(out_of_range.status, 2) << out_of_range;
}

TEST_F(CliTest, ReadTesseractReader) {
  const std::string sample = sample_photo();
  const auto r = run_vigil({"read", "--json", "--reader", "tesseract", "--detect-threshold", "0.05", sample});
#ifdef VIGIL_HAVE_TESSERACT
  ASSERT_EQ(r.status, 0) << r;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r;
  expect_read_line(lines[0], sample);
  EXPECT_TRUE(lines[0]["error"].is_null()) << r;
  const cv::Mat m = cv::imread(sample);
  for (const auto& p : lines[0]["plates"]) expect_valid_plate(p, m.cols, m.rows, 5);
#else
  EXPECT_EQ(r.status, 2) << r;
  EXPECT_TRUE(contains(r.err, "Tesseract")) << r;
#endif
  const auto bad = run_vigil({"read", "--reader", "ouija", sample});
  EXPECT_EQ(bad.status, 2) << bad;
}

TEST_F(CliTest, ReadFileNamesThatAreNotUtf8) {
  // Latin-1 "café.jpg", as old cameras and zip files write it.
  const std::string image = write_image("caf\xe9.jpg", 320, 240);
  const auto r = run_vigil({"read", "--json", image});
  EXPECT_EQ(r.status, 0) << r;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r;
  EXPECT_TRUE(lines[0]["error"].is_null()) << r;
  EXPECT_EQ(lines[0]["width"], 320);
}

TEST_F(CliTest, ReadJpegWithDataAfterItsEndIsNotTruncated) {
  // Phones append motion-photo videos and maker data after the JPEG's end-of-image marker.
  const std::string image = write_file("motion.jpg", jpeg_bytes(320, 240) + std::string(4096, '\x11'));
  const std::string whole = jpeg_bytes(320, 240);
  const std::string cut = write_file("cut.jpg", whole.substr(0, whole.size() - 200));
  const auto r = run_vigil({"read", "--json", image, cut});
  EXPECT_EQ(r.status, 1) << r;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r;
  EXPECT_TRUE(lines[0]["error"].is_null()) << r;
  EXPECT_EQ(lines[0]["width"], 320);
  ASSERT_TRUE(lines[1]["error"].is_string()) << r;
  EXPECT_TRUE(contains(lines[1]["error"].get<std::string>(), "truncated")) << r;
}

// ---- bench ----

TEST_F(CliTest, BenchJsonOverEveryImporterFormat) {
  const auto sets = write_datasets();
  std::vector<std::string> args = {"bench", "--json"};
  for (const auto& s : sets) args.push_back(s.spec);
  const auto r = run_vigil(args);
  ASSERT_EQ(r.status, 0) << r;
  const json all = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(all.is_discarded()) << r;
  ASSERT_TRUE(all.is_array()) << r;
  ASSERT_EQ(all.size(), sets.size()) << r;
  for (std::size_t i = 0; i < sets.size(); ++i) {
    const json& d = all[i];
    SCOPED_TRACE(d.dump());
    EXPECT_EQ(d["dataset"], sets[i].spec);
    EXPECT_EQ(d["images"], sets[i].images);
    EXPECT_EQ(d["plates"], sets[i].plates);
    EXPECT_EQ(d["bad_images"], 0);
    for (const char* key : {"detection_recall", "detection_precision", "exact", "top_n"})
      EXPECT_TRUE(in_unit_range(d[key])) << key;
    ASSERT_TRUE(d["ms"].is_object());
    for (const char* key :
         {"detect_median", "detect_p95", "read_median", "read_p95", "total_median", "total_p95"}) {
      ASSERT_TRUE(d["ms"].contains(key)) << key;
      EXPECT_GE(d["ms"][key].get<double>(), 0.0) << key;
    }
    EXPECT_GE(d["ms"]["detect_p95"].get<double>(), d["ms"]["detect_median"].get<double>());
    EXPECT_GT(d["images_per_s"].get<double>(), 0.0);
    ASSERT_TRUE(d["confidence_sweep"].is_array());
    for (const auto& s : d["confidence_sweep"]) {
      const double t = s["min_confidence"];
      EXPECT_EQ(t, std::round(t * 100) / 100) << s;  // printed as given, not as a float's expansion
    }
  }
}

TEST_F(CliTest, BenchTableHasARowPerDataset) {
  const auto sets = write_datasets();
  std::vector<std::string> args = {"bench"};
  for (const auto& s : sets) args.push_back(s.spec);
  const auto r = run_vigil(args);
  ASSERT_EQ(r.status, 0) << r;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), sets.size() + 1) << r;
  for (const char* column : {"dataset", "images", "plates", "det.rec", "det.prec", "exact", "top-N", "img/s"})
    EXPECT_TRUE(contains(lines[0], column)) << column << "\n" << r;
  for (std::size_t i = 0; i < sets.size(); ++i) {
    std::istringstream row(lines[i + 1]);
    std::string name;
    std::size_t images = 0, plates = 0;
    row >> name >> images >> plates;
    EXPECT_EQ(name, sets[i].spec) << r;
    EXPECT_EQ(images, sets[i].images) << r;
    EXPECT_EQ(plates, sets[i].plates) << r;
    EXPECT_TRUE(contains(lines[i + 1], "%")) << r;
  }
}

TEST_F(CliTest, BenchGroundTruthCropsFindEveryPlate) {
  const auto sets = write_datasets();
  std::vector<std::string> args = {"bench", "--json", "--gt-crops"};
  for (const auto& s : sets) args.push_back(s.spec);
  const auto r = run_vigil(args);
  ASSERT_EQ(r.status, 0) << r;
  const json all = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(all.is_array()) << r;
  ASSERT_EQ(all.size(), sets.size()) << r;
  for (const auto& d : all) {
    EXPECT_EQ(d["detection_recall"], 1.0) << d["dataset"];
    EXPECT_EQ(d["detection_precision"], 1.0) << d["dataset"];
  }
}

TEST_F(CliTest, BenchMissingDatasetIsAnError) {
  const auto sets = write_datasets();
  const std::string missing = path("no-such-dataset");
  const auto r = run_vigil({"bench", "--json", "--gt-crops", missing, sets[1].spec});
  EXPECT_NE(r.status, 0) << r;
  EXPECT_TRUE(contains(r.err, missing)) << r;
  // The dataset that exists is still measured.
  const json all = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(all.is_array()) << r;
  ASSERT_EQ(all.size(), 1u) << r;
  EXPECT_EQ(all[0]["dataset"], sets[1].spec);

  const auto usage = run_vigil({"bench"});
  EXPECT_EQ(usage.status, 2) << usage;
}

// The close-up sample copied to DIR/images/close.jpg, and what `vigil read` finds in it: for datasets
// whose labels are drawn around (or beside) the plate it reads.
struct CloseSample {
  int width = 0, height = 0;
  double x = 0, y = 0, w = 0, h = 0;  // the box of the first plate read
  std::string text;
};

CloseSample copy_close_sample(const fs::path& dir) {
  const std::string sample = std::string(VIGIL_SOURCE_DIR) + "/samples/ro-dashcam-close.jpg";
  const auto read = run_vigil({"read", "--json", sample});
  EXPECT_EQ(read.status, 0) << read;
  const auto lines = json_lines(read.out);
  CloseSample c;
  if (lines.size() != 1u || lines[0]["plates"].empty()) {
    ADD_FAILURE() << "the close-up sample is not read\n" << read;
    return c;
  }
  const auto& plate = lines[0]["plates"][0];
  c = {lines[0]["width"], lines[0]["height"], plate["box"][0], plate["box"][1], plate["box"][2], plate["box"][3],
       plate["text"]};
  fs::create_directories(dir / "images");
  fs::copy_file(sample, dir / "images" / "close.jpg");
  return c;
}

TEST_F(CliTest, BenchIouDecidesWhatCountsAsFound) {
  // A ground-truth box drawn loosely around the sample's plate: 1.8 times its width and height, so a
  // tight detection overlaps it by about 0.3.
  const CloseSample c = copy_close_sample(path("loose"));
  ASSERT_GT(c.w, 0);
  const double cx = c.x + c.w / 2, cy = c.y + c.h / 2;
  char row[256];
  std::snprintf(row, sizeof row, "close.jpg,%d,%d,plate,%.0f,%.0f,%.0f,%.0f\n", c.width, c.height, cx - 0.9 * c.w,
                cy - 0.9 * c.h, cx + 0.9 * c.w, cy + 0.9 * c.h);
  const std::string csv =
      write_file("loose/labels.csv", std::string("filename,width,height,class,xmin,ymin,xmax,ymax\n") + row);
  auto recall_at = [&](const std::string& iou) {
    const auto r = run_vigil({"bench", "--json", "--iou", iou, csv});
    EXPECT_EQ(r.status, 0) << r;
    const json all = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(all.is_array() && all.size() == 1u) << r;
    if (!all.is_array() || all.empty()) return -1.0;
    EXPECT_DOUBLE_EQ(all[0]["iou"].get<double>(), std::stod(iou));
    return all[0]["detection_recall"].get<double>();
  };
  EXPECT_EQ(recall_at("0.5"), 0.0);
  EXPECT_EQ(recall_at("0.2"), 1.0);
  EXPECT_EQ(run_vigil({"bench", "--iou", "0", csv}).status, 2);
}

TEST_F(CliTest, BenchPointsAtALabelBoxDrawnBesideThePlateItNames) {
  // The sample's plate labelled with its text, but the box drawn one plate-height below it: the plate
  // counts as missed, and the error says where it was read right.
  const CloseSample c = copy_close_sample(path("shifted"));
  ASSERT_EQ(c.text, "BR07AAC");
  // The label box: x0, y0, x1, y1.
  const std::array<double, 4> below{c.x, c.y + 1.2 * c.h, c.x + c.w, c.y + 2.2 * c.h};
  auto bench_with_text = [&](const std::string& text, const std::array<double, 4>& box) {
    char row[256];
    std::snprintf(row, sizeof row, "close.jpg,%d,%d,plate,%.0f,%.0f,%.0f,%.0f,%s\n", c.width, c.height, box[0],
                  box[1], box[2], box[3], text.c_str());
    const std::string csv = write_file("shifted/labels.csv",
                                       std::string("filename,width,height,class,xmin,ymin,xmax,ymax,text\n") + row);
    const auto r = run_vigil({"bench", "--json", csv});
    EXPECT_EQ(r.status, 0) << r;
    const json all = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(all.is_array() && all.size() == 1u) << r;
    return all.is_array() && !all.empty() ? all[0] : json();
  };
  const json named = bench_with_text("BR07AAC", below);
  EXPECT_EQ(named["detection_recall"], 0.0) << named;
  EXPECT_EQ(named["exact"], 0.0) << named;
  EXPECT_EQ(named["read_elsewhere"], 1) << named;
  ASSERT_EQ(named["errors"].size(), 1u) << named;
  EXPECT_TRUE(contains(named["errors"][0].get<std::string>(), "misplaced")) << named;
  const auto table = run_vigil({"bench", path("shifted/labels.csv")});
  EXPECT_TRUE(contains(table.out, "misplaced")) << table;
  // A label box tight inside the detection's (its middle half): the detection's box is the loose one.
  const json tight = bench_with_text(
      "BR07AAC", {c.x + c.w / 4, c.y + c.h / 4, c.x + 3 * c.w / 4, c.y + 3 * c.h / 4});
  EXPECT_EQ(tight["read_elsewhere"], 1) << tight;
  ASSERT_EQ(tight["errors"].size(), 1u) << tight;
  EXPECT_TRUE(contains(tight["errors"][0].get<std::string>(), "loose")) << tight;
  // A label naming another plate is just a miss.
  const json other = bench_with_text("CJ12XYZ", below);
  EXPECT_EQ(other["read_elsewhere"], 0) << other;
  ASSERT_EQ(other["errors"].size(), 1u) << other;
  EXPECT_FALSE(contains(other["errors"][0].get<std::string>(), "misplaced")) << other;
}

TEST_F(CliTest, BenchMinPlateWidthLeavesSmallerPlatesOut) {
  // The sample's plate labelled where it is read, plus a 20 px "plate" labelled in the sky where nothing
  // is found.
  const CloseSample c = copy_close_sample(path("sizes"));
  ASSERT_GT(c.w, 40);
  char rows[512];
  std::snprintf(rows, sizeof rows, "close.jpg,%d,%d,plate,%.0f,%.0f,%.0f,%.0f\nclose.jpg,%d,%d,plate,20,20,40,25\n",
                c.width, c.height, c.x, c.y, c.x + c.w, c.y + c.h, c.width, c.height);
  const std::string csv =
      write_file("sizes/labels.csv", std::string("filename,width,height,class,xmin,ymin,xmax,ymax\n") + rows);
  auto bench = [&](const std::vector<std::string>& extra) {
    const auto r = run_vigil(std::vector<std::string>{"bench", "--json", csv} + extra);
    EXPECT_EQ(r.status, 0) << r;
    const json all = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(all.is_array() && all.size() == 1u) << r;
    return all.is_array() && !all.empty() ? all[0] : json();
  };
  const json every = bench({});
  EXPECT_EQ(every["plates"], 2) << every;
  EXPECT_EQ(every["detection_recall"], 0.5) << every;
  EXPECT_EQ(every["ignored_plates"], 0) << every;
  const json sized = bench({"--min-plate-width", "30"});
  EXPECT_EQ(sized["plates"], 1) << sized;
  EXPECT_EQ(sized["detection_recall"], 1.0) << sized;
  EXPECT_EQ(sized["ignored_plates"], 1) << sized;
  // Past the real plate's width nothing is left to count.
  const json none = bench({"--min-plate-width", std::to_string(int(c.w) + 10)});
  EXPECT_EQ(none["plates"], 0) << none;
  EXPECT_EQ(none["detections"], 0) << none;
  EXPECT_EQ(run_vigil({"bench", "--min-plate-width", "-5", csv}).status, 2);
}

TEST_F(CliTest, BenchSplitSuffixPicksThePart) {
  // Enough small images that the seeded split puts some in each part.
  std::size_t n_test = 0, n_train = 0;
  for (int i = 0; n_test < 1 || n_train < 2; ++i) {
    ASSERT_LT(i, 100);
    const std::string name = "car" + std::to_string(i) + ".jpg";
    write_image("set/" + name, 240, 200);
    write_file("set/car" + std::to_string(i) + ".txt", name + "\t100\t150\t100\t30\tAB123\n");
    (vigil::in_test_split(name, 0.2, 0) ? n_test : n_train) += 1;
  }
  const std::string set = path("set");
  const auto r = run_vigil({"bench", "--json", "--gt-crops", set + ":test", set + ":train", set});
  ASSERT_EQ(r.status, 0) << r;
  const json all = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(all.is_array()) << r;
  ASSERT_EQ(all.size(), 3u) << r;
  EXPECT_EQ(all[0]["dataset"], set + ":test");
  EXPECT_EQ(all[0]["images"], n_test);
  EXPECT_EQ(all[1]["dataset"], set + ":train");
  EXPECT_EQ(all[1]["images"], n_train);
  EXPECT_EQ(all[2]["images"], n_test + n_train);

  // --split does the same for a path without a suffix.
  const auto flag = run_vigil({"bench", "--json", "--gt-crops", "--split", "test", set});
  ASSERT_EQ(flag.status, 0) << flag;
  const json split = json::parse(flag.out, nullptr, false);
  ASSERT_TRUE(split.is_array() && split.size() == 1u) << flag;
  EXPECT_EQ(split[0]["dataset"], set + ":test");
  EXPECT_EQ(split[0]["images"], n_test);
}

}  // namespace

// --skip takes pass names and refuses others, naming them all; --explain shows, per plate, the passes that
// produced or changed it and, per image, what each pass cost.
TEST_F(CliTest, ReadSkipsPassesByNameAndExplainsThem) {
  const auto bad = run_vigil({"read", "--skip", "tiles,zoom", write_image("car.jpg", 320, 240)});
  EXPECT_EQ(bad.status, 2) << bad;
  EXPECT_TRUE(contains(bad.err, "unknown pass 'zoom'")) << bad;
  EXPECT_TRUE(contains(bad.err, "close-up-corners")) << bad;
  const std::string sample = std::string(VIGIL_SOURCE_DIR) + "/samples/ro-dashcam-close.jpg";
  const auto plain = run_vigil({"read", "--json", sample});
  ASSERT_EQ(plain.status, 0) << plain;
  EXPECT_FALSE(contains(plain.out, "\"passes\"")) << plain;
  const auto explained = run_vigil({"read", "--json", "--explain", sample});
  ASSERT_EQ(explained.status, 0) << explained;
  const auto j = nlohmann::json::parse(explained.out);
  ASSERT_FALSE(j["plates"].empty()) << explained;
  EXPECT_EQ(j["plates"][0]["passes"][0], "full") << explained;
  std::vector<std::string> timed;
  for (const auto& t : j["passes"]) {
    EXPECT_GE(t["ms"].get<double>(), 0.0);
    EXPECT_GE(t["runs"].get<int>(), 1);
    timed.push_back(t["pass"]);
  }
  for (const char* pass : {"full", "read", "country"})
    EXPECT_NE(std::find(timed.begin(), timed.end(), pass), timed.end()) << pass << "\n" << explained;
  // Skipped, a pass neither runs nor marks a plate.
  const auto skipped = run_vigil({"read", "--json", "--explain", "--skip", "level,refine,close-up", sample});
  ASSERT_EQ(skipped.status, 0) << skipped;
  for (const char* pass : {"\"level\"", "\"refine\"", "\"close-up\""})
    EXPECT_FALSE(contains(skipped.out, pass)) << pass << "\n" << skipped;
}

// What is not a plain image file is refused before it is read or decoded, each with its JSON line, and the
// run goes on: a FIFO named .jpg (reading it would block forever), a device, a folder named .jpg, an empty
// folder, and small files whose headers declare 16000x16000 (TIFF) and 16383x16383 (WebP) pixels.
TEST_F(CliTest, ReadChecksFilesBeforeReadingAndHeadersBeforeDecoding) {
  const std::string fifo = path("camera.jpg");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string folder_jpg = path("album.jpg");
  fs::create_directories(folder_jpg);
  const std::string empty = path("empty");
  fs::create_directories(empty);
  // TIFF, little-endian: one IFD with ImageWidth and ImageLength (LONG) 16000.
  std::string tiff("II*\0\x08\0\0\0", 8);
  tiff += std::string("\x02\0", 2);
  tiff += std::string("\x00\x01\x04\0\x01\0\0\0\x80\x3e\0\0", 12);
  tiff += std::string("\x01\x01\x04\0\x01\0\0\0\x80\x3e\0\0", 12);
  tiff += std::string(4, '\0') + std::string(1000, '\0');
  const std::string big_tiff = write_file("big.tif", tiff);
  // WebP VP8X: canvas 16383 x 16383 (stored minus one, 24 bits each).
  std::string webp = std::string("RIFF\x40\0\0\0WEBPVP8X\x0a\0\0\0\x10\0\0\0", 24) + std::string("\xfe\x3f\0\xfe\x3f\0", 6);
  webp += std::string(100, '\0');
  const std::string big_webp = write_file("big.webp", webp);
  const std::string good = write_image("good.jpg");
  const auto r = run_vigil({"read", "--json", fifo, "/dev/zero", folder_jpg, empty, big_tiff, big_webp, good});
  EXPECT_FALSE(r.timed_out) << r;
  EXPECT_EQ(r.status, 1) << r;
  const auto lines = json_lines(r.out);
  const std::vector<std::pair<std::string, std::string>> want = {
      {fifo, "pipe"},          {"/dev/zero", "device"},   {folder_jpg, "folder with no images"},
      {empty, "folder with no images"}, {big_tiff, "16000x16000"}, {big_webp, "16383x16383"}, {good, ""}};
  ASSERT_EQ(lines.size(), want.size()) << r;
  for (std::size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(want[i].first);
    EXPECT_EQ(lines[i]["image"], want[i].first);
    if (want[i].second.empty()) {
      EXPECT_TRUE(lines[i]["error"].is_null()) << lines[i];
    } else {
      ASSERT_TRUE(lines[i]["error"].is_string()) << lines[i];
      EXPECT_TRUE(contains(lines[i]["error"].get<std::string>(), want[i].second)) << lines[i];
    }
  }
}
