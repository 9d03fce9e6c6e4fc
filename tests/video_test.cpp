// Frame sources, the bounded queue, motion gating, event output and the per-camera pipeline, on files
// generated here (image folders, cv::VideoWriter videos, cut and fake files) and a loopback MJPEG server.
#include "vigil/video.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <opencv2/videoio/registry.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "video/frame_queue.hpp"
#include "video/motion.hpp"
#include "video/source_internal.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("vigil_video_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

// A frame whose number 0..255 is written as 8 black/white vertical stripes (survives JPEG and MPEG-4).
cv::Mat numbered_frame(int n, cv::Size size = {160, 120}) {
  cv::Mat img(size, CV_8UC3, cv::Scalar(0, 0, 0));
  const int w = size.width / 8;
  for (int bit = 0; bit < 8; ++bit)
    if (n & (1 << bit)) img(cv::Rect(bit * w, 0, w, size.height)).setTo(cv::Scalar(255, 255, 255));
  return img;
}

int frame_number(const cv::Mat& img) {
  const int w = img.cols / 8;
  int n = 0;
  for (int bit = 0; bit < 8; ++bit) {
    const cv::Scalar m = cv::mean(img(cv::Rect(bit * w + w / 4, img.rows / 4, w / 2, img.rows / 2)));
    if (m[1] > 128) n |= 1 << bit;
  }
  return n;
}

// Writes `n` numbered frames; false when this OpenCV cannot write the container.
bool write_numbered_video(const std::string& path, int n, double fps, const char* fourcc = "mp4v") {
  cv::VideoWriter w(path, cv::VideoWriter::fourcc(fourcc[0], fourcc[1], fourcc[2], fourcc[3]), fps,
                    cv::Size(160, 120));
  if (!w.isOpened()) return false;
  for (int i = 0; i < n; ++i) w.write(numbered_frame(i));
  return true;
}

// A grey scene with sensor noise; with `moving`, a dark block crosses it.
bool write_scene_video(const std::string& path, int n, bool moving, std::uint32_t seed = 1) {
  cv::VideoWriter w(path, cv::VideoWriter::fourcc('m', 'p', '4', 'v'), 10, cv::Size(320, 240));
  if (!w.isOpened()) return false;
  cv::Mat base(240, 320, CV_8UC3);
  cv::randu(base, cv::Scalar::all(90), cv::Scalar::all(160));
  cv::GaussianBlur(base, base, cv::Size(0, 0), 4);
  cv::RNG rng(seed);
  for (int i = 0; i < n; ++i) {
    cv::Mat img = base.clone();
    if (moving) cv::rectangle(img, cv::Rect(10 + i * 12, 100, 60, 40), cv::Scalar(20, 20, 20), cv::FILLED);
    cv::Mat noise(img.size(), CV_16SC3);
    rng.fill(noise, cv::RNG::NORMAL, 0, 2);
    cv::Mat out;
    img.convertTo(out, CV_16SC3);
    out += noise;
    out.convertTo(img, CV_8UC3);
    w.write(img);
  }
  return true;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

struct Drained {
  std::vector<vigil::Frame> frames;
  vigil::ReadStatus end = vigil::ReadStatus::kFrame;
};

Drained drain(vigil::FrameSource& src, int max_frames = 10000) {
  Drained d;
  for (int i = 0; i < max_frames; ++i) {
    vigil::Frame f;
    const auto s = src.read(f);
    if (s != vigil::ReadStatus::kFrame) {
      d.end = s;
      break;
    }
    d.frames.push_back(std::move(f));
  }
  return d;
}

// ---------------------------------------------------------------------------------------------------------

TEST(VideoSpec, NaturalOrderRedactionAndClassification) {
  using vigil::detail::natural_less;
  EXPECT_TRUE(natural_less("f2.jpg", "f10.jpg"));
  EXPECT_FALSE(natural_less("f10.jpg", "f2.jpg"));
  EXPECT_TRUE(natural_less("a.jpg", "b.jpg"));
  EXPECT_TRUE(natural_less("f1.jpg", "f01.jpg"));
  EXPECT_TRUE(natural_less("img", "img1"));
  EXPECT_EQ(vigil::detail::redact_url("rtsp://admin:secret@10.0.0.5:554/s1"),
            "rtsp://admin:***@10.0.0.5:554/s1");
  EXPECT_EQ(vigil::detail::redact_url("http://10.0.0.5/mjpg"), "http://10.0.0.5/mjpg");
  EXPECT_EQ(vigil::detail::classify("rtsp://host/x"), vigil::SourceKind::kNetwork);
  EXPECT_EQ(vigil::detail::classify("http://127.0.0.1:8080/video.mjpg"), vigil::SourceKind::kNetwork);
  EXPECT_EQ(vigil::detail::classify("0"), vigil::SourceKind::kDevice);
  EXPECT_EQ(vigil::detail::classify("/dev/video0"), vigil::SourceKind::kDevice);
  EXPECT_EQ(vigil::detail::classify("videotestsrc ! videoconvert ! appsink"), vigil::SourceKind::kPipeline);
  EXPECT_EQ(vigil::detail::classify("/no/such/frames_*.jpg"), vigil::SourceKind::kImages);
  EXPECT_EQ(vigil::detail::classify("car.jpg"), vigil::SourceKind::kImages);
  EXPECT_EQ(vigil::detail::classify("road.mp4"), vigil::SourceKind::kFile);
}

TEST(VideoSource, ImageFolderInNaturalOrderWithStrideAndClock) {
  TempDir dir;
  const std::string folder = dir / "frames";
  fs::create_directories(folder);
  for (int i = 1; i <= 12; ++i)
    ASSERT_TRUE(cv::imwrite(folder + "/f" + std::to_string(i) + ".png", numbered_frame(i)));
  write_bytes(folder + "/notes.txt", "not an image");  // ignored: no image extension

  vigil::SourceOptions o;
  o.images_fps = 4.0;
  auto src = vigil::open_source(folder, o);
  ASSERT_TRUE(src) << src.error();
  EXPECT_EQ((*src)->kind(), vigil::SourceKind::kImages);
  EXPECT_FALSE((*src)->live());
  Drained d = drain(**src);
  EXPECT_EQ(d.end, vigil::ReadStatus::kEnd);
  ASSERT_EQ(d.frames.size(), 12u);
  for (size_t i = 0; i < d.frames.size(); ++i) {
    EXPECT_EQ(frame_number(d.frames[i].image), int(i) + 1);  // f2 before f10
    EXPECT_DOUBLE_EQ(d.frames[i].t, i / 4.0);
  }

  o.stride = 5;
  auto strided = vigil::open_source(folder + "/f*.png", o);  // a glob this time
  ASSERT_TRUE(strided) << strided.error();
  d = drain(**strided);
  ASSERT_EQ(d.frames.size(), 3u);
  EXPECT_EQ(frame_number(d.frames[1].image), 6);
  EXPECT_EQ(d.frames[1].index, 5);
  EXPECT_DOUBLE_EQ(d.frames[2].t, 10 / 4.0);
  EXPECT_EQ((*strided)->stats().frames_read, 12);

  auto none = vigil::open_source(dir / "empty_*.png");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().find("no files match"), std::string::npos) << none.error();
}

TEST(VideoSource, ImageSequenceSkipsUnreadableImages) {
  TempDir dir;
  ASSERT_TRUE(cv::imwrite(dir / "a1.png", numbered_frame(1)));
  write_bytes(dir / "a2.png", "garbage, not a PNG");
  ASSERT_TRUE(cv::imwrite(dir / "a3.png", numbered_frame(3)));
  auto src = vigil::open_source(dir.path.string());
  ASSERT_TRUE(src) << src.error();
  Drained d = drain(**src);
  EXPECT_EQ(d.end, vigil::ReadStatus::kEnd);
  ASSERT_EQ(d.frames.size(), 2u);
  EXPECT_EQ(frame_number(d.frames[1].image), 3);
  EXPECT_EQ((*src)->stats().frames_unreadable, 1);
}

TEST(VideoSource, Mp4FramesTimestampsAndStride) {
  TempDir dir;
  const std::string path = dir / "clip.mp4";
  ASSERT_TRUE(write_numbered_video(path, 30, 10.0));
  auto src = vigil::open_source(path);
  ASSERT_TRUE(src) << src.error();
  EXPECT_EQ((*src)->kind(), vigil::SourceKind::kFile);
  EXPECT_FALSE((*src)->live());
  EXPECT_EQ((*src)->stats().frames_expected, 30);
  EXPECT_NEAR((*src)->stats().fps, 10.0, 0.01);
  Drained d = drain(**src);
  EXPECT_EQ(d.end, vigil::ReadStatus::kEnd) << (*src)->error();
  ASSERT_EQ(d.frames.size(), 30u);
  for (size_t i = 0; i < d.frames.size(); ++i) {
    EXPECT_EQ(frame_number(d.frames[i].image), int(i));
    EXPECT_NEAR(d.frames[i].t, i * 0.1, 0.011);
    if (i > 0) {
      EXPECT_GT(d.frames[i].t, d.frames[i - 1].t);
    }
  }

  vigil::SourceOptions o;
  o.stride = 4;
  auto strided = vigil::open_source(path, o);
  ASSERT_TRUE(strided) << strided.error();
  d = drain(**strided);
  ASSERT_EQ(d.frames.size(), 8u);  // 0, 4, ..., 28
  for (size_t i = 0; i < d.frames.size(); ++i) {
    EXPECT_EQ(d.frames[i].index, std::int64_t(i) * 4);
    EXPECT_EQ(frame_number(d.frames[i].image), int(i) * 4);
    EXPECT_NEAR(d.frames[i].t, i * 0.4, 0.011);
  }
  EXPECT_EQ((*strided)->stats().frames_read, 30);
  EXPECT_EQ((*strided)->stats().frames_returned, 8);
}

TEST(VideoSource, Mp4CutShortIsAClearError) {
  TempDir dir;
  const std::string path = dir / "clip.mp4";
  ASSERT_TRUE(write_numbered_video(path, 30, 10.0));
  const std::string bytes = read_bytes(path);
  write_bytes(dir / "cut.mp4", bytes.substr(0, bytes.size() / 2));
  auto src = vigil::open_source(dir / "cut.mp4");
  ASSERT_FALSE(src);
  EXPECT_NE(src.error().find("truncated"), std::string::npos) << src.error();
  EXPECT_NE(src.error().find("cut.mp4"), std::string::npos) << src.error();
}

TEST(VideoSource, AviCutShortKeepsTheFramesBeforeTheCut) {
  TempDir dir;
  const std::string path = dir / "clip.avi";
  ASSERT_TRUE(write_numbered_video(path, 40, 10.0, "MJPG"));
  const std::string bytes = read_bytes(path);
  write_bytes(dir / "cut.avi", bytes.substr(0, bytes.size() / 2));
  auto src = vigil::open_source(dir / "cut.avi");
  ASSERT_TRUE(src) << src.error();
  Drained d = drain(**src);
  EXPECT_EQ(d.end, vigil::ReadStatus::kError);
  EXPECT_GE(d.frames.size(), 10u);
  EXPECT_LT(d.frames.size(), 30u);
  // The frame the cut went through may decode as garbage; the ones before it are intact.
  for (size_t i = 0; i + 1 < d.frames.size(); ++i) EXPECT_EQ(frame_number(d.frames[i].image), int(i));
  const std::string err = (*src)->error();
  EXPECT_NE(err.find("truncated or corrupt"), std::string::npos) << err;
  EXPECT_NE(err.find("of 40 frames"), std::string::npos) << err;
}

TEST(VideoSource, NotAVideoEmptyAndMissingFilesAreClearErrors) {
  TempDir dir;
  write_bytes(dir / "report.mp4", "%PDF-1.4 this is a document, not a video\n");
  auto pdf = vigil::open_source(dir / "report.mp4");
  ASSERT_FALSE(pdf);
  EXPECT_NE(pdf.error().find("not a video"), std::string::npos) << pdf.error();
  EXPECT_NE(pdf.error().find("%PDF-1.4"), std::string::npos) << pdf.error();

  write_bytes(dir / "empty.mkv", "");
  auto empty = vigil::open_source(dir / "empty.mkv");
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().find("empty file"), std::string::npos) << empty.error();

  auto missing = vigil::open_source(dir / "missing.mp4");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("no such file"), std::string::npos) << missing.error();

  vigil::SourceOptions bad;
  bad.stride = 0;
  EXPECT_FALSE(vigil::open_source(dir / "missing.mp4", bad));
}

TEST(VideoSource, LiveFileIsReopenedWithWallClockTimestamps) {
  TempDir dir;
  const std::string path = dir / "loop.mp4";
  ASSERT_TRUE(write_numbered_video(path, 5, 10.0));
  vigil::SourceOptions o;
  o.live = vigil::SourceOptions::Live::kYes;
  o.reconnect_delay_s = 0.02;
  o.reconnect_delay_max_s = 0.05;
  auto src = vigil::open_source(path, o);
  ASSERT_TRUE(src) << src.error();
  EXPECT_TRUE((*src)->live());
  const double before = vigil::detail::unix_now();
  Drained d = drain(**src, 13);
  ASSERT_EQ(d.frames.size(), 13u);
  for (size_t i = 0; i < d.frames.size(); ++i) {
    EXPECT_EQ(frame_number(d.frames[i].image), int(i % 5));
    EXPECT_GE(d.frames[i].t, before - 1e-3);
    if (i > 0) {
      EXPECT_GE(d.frames[i].t, d.frames[i - 1].t);
    }
  }
  const auto st = (*src)->stats();
  EXPECT_EQ(st.outages, 2);  // the end of the file, twice
  EXPECT_EQ(st.reconnects, 2);
  EXPECT_EQ(st.frames_returned, 13);
}

TEST(VideoSource, LiveSourceGivesUpAfterTheConfiguredAttempts) {
  vigil::SourceOptions o;
  o.reconnect_delay_s = 0.01;
  o.reconnect_attempts_max = 3;
  o.open_timeout_ms = 500;
  // A loopback port with nothing listening: every connection is refused at once.
  auto src = vigil::open_source("http://127.0.0.1:9/none.mjpg", o);
  ASSERT_TRUE(src) << src.error();
  vigil::Frame f;
  EXPECT_EQ((*src)->read(f), vigil::ReadStatus::kError);
  EXPECT_NE((*src)->error().find("gave up after 3"), std::string::npos) << (*src)->error();
  EXPECT_EQ((*src)->stats().outages, 1);
}

TEST(VideoSpec, PipelineElementNames) {
  using vigil::detail::pipeline_elements;
  EXPECT_EQ(
      pipeline_elements("libcamerasrc ! video/x-raw,width=1280,height=720,framerate=15/1 ! videoconvert "
                        "! appsink drop=true max-buffers=1"),
      (std::vector<std::string>{"libcamerasrc", "videoconvert", "appsink"}));
  EXPECT_EQ(
      pipeline_elements("v4l2src device=/dev/video0 ! image/jpeg ! jpegdec ! tee name=t ! queue ! appsink "
                        "t. ! queue ! fakesink"),
      (std::vector<std::string>{"v4l2src", "jpegdec", "tee", "queue", "appsink", "queue", "fakesink"}));
  // A '!' inside a quoted property value does not split.
  EXPECT_EQ(pipeline_elements("filesrc location=\"a ! b.mp4\" ! decodebin ! appsink"),
            (std::vector<std::string>{"filesrc", "decodebin", "appsink"}));
}

// A pipeline that cannot work fails when it is opened, saying why, instead of being retried for ever as a
// live source; where GStreamer's registry cannot be consulted, it fails on its first attempt instead.
TEST(VideoSource, AnUnusablePipelineFailsWithWhatToInstall) {
  auto error_of = [](const std::string& spec) -> std::string {
    vigil::SourceOptions o;
    o.reconnect_delay_s = 0.01;
    o.reconnect_attempts_max = 1;
    auto src = vigil::open_source(spec, o);
    if (!src) return src.error();
    vigil::Frame f;
    if ((*src)->read(f) != vigil::ReadStatus::kError) return "";
    return (*src)->error();
  };
  if (!cv::videoio_registry::hasBackend(cv::CAP_GSTREAMER)) {
    const std::string e = error_of("fakesrc ! appsink");
    EXPECT_NE(e.find("this OpenCV was built without GStreamer"), std::string::npos) << e;
    GTEST_SKIP() << "OpenCV has no GStreamer backend here";
  }
  std::string e = error_of("fakesrc ! fakesink");
  EXPECT_NE(e.find("fakesrc ! fakesink: a GStreamer pipeline must end in appsink"), std::string::npos) << e;

  e = error_of("vigilnosuchsrc ! videoconvert ! appsink");
  const bool checked = e.find("not installed") != std::string::npos;
  if (checked) {
    EXPECT_NE(e.find("vigilnosuchsrc"), std::string::npos) << e;
    EXPECT_NE(e.find("check the name vigilnosuchsrc with gst-inspect-1.0"), std::string::npos) << e;
  } else {
    EXPECT_NE(e.find("GStreamer cannot start the pipeline"), std::string::npos) << e;
  }
  // The Raspberry Pi camera's element names its package when it is missing.
  e = error_of("libcamerasrc ! video/x-raw,width=640,height=480 ! videoconvert ! appsink");
  const std::size_t missing = e.find("GStreamer element");
  if (missing != std::string::npos && e.find("libcamerasrc", missing) != std::string::npos)
    EXPECT_NE(e.find("apt-get install gstreamer1.0-libcamera"), std::string::npos) << e;
}

TEST(VideoSource, InterruptEndsAReconnectWait) {
  vigil::SourceOptions o;
  o.reconnect_delay_s = 30;  // would block the test if the interrupt did not cut the wait short
  o.open_timeout_ms = 500;
  auto src = vigil::open_source("http://127.0.0.1:9/none.mjpg", o);
  ASSERT_TRUE(src) << src.error();
  std::thread stopper([&] {
    std::this_thread::sleep_for(200ms);
    (*src)->interrupt();
  });
  const auto t0 = std::chrono::steady_clock::now();
  vigil::Frame f;
  EXPECT_EQ((*src)->read(f), vigil::ReadStatus::kStopped);
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

// Serves numbered frames as multipart MJPEG over HTTP on 127.0.0.1; each connection gets
// `per_connection` frames and is then dropped, like a camera that resets.
class MjpegServer {
 public:
  explicit MjpegServer(int per_connection) : per_connection_(per_connection) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;  // a free port
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 4) != 0) return;
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~MjpegServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int connections() const { return connections_; }

 private:
  void serve() {
    int next = 0;
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ++connections_;
      char req[4096];
      std::string request;
      while (request.find("\r\n\r\n") == std::string::npos) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 2000) <= 0) break;
        const ssize_t n = ::recv(c, req, sizeof req, 0);
        if (n <= 0) break;
        request.append(req, size_t(n));
      }
      const std::string head =
          "HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\nCache-Control: "
          "no-cache\r\n\r\n";
      bool ok = send_all(c, head);
      for (int k = 0; ok && k < per_connection_ && !stop_; ++k) {
        std::vector<uchar> jpg;
        cv::imencode(".jpg", numbered_frame(next++ % 256), jpg);
        const std::string part =
            "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + std::to_string(jpg.size()) +
            "\r\n\r\n";
        ok = send_all(c, part) && send_all(c, std::string(jpg.begin(), jpg.end())) && send_all(c, "\r\n");
        std::this_thread::sleep_for(20ms);
      }
      ::shutdown(c, SHUT_RDWR);
      ::close(c);
    }
  }
  static bool send_all(int fd, const std::string& s) {
    size_t sent = 0;
    while (sent < s.size()) {
      const ssize_t n = ::send(fd, s.data() + sent, s.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += size_t(n);
    }
    return true;
  }

  int per_connection_;
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

TEST(VideoSource, HttpMjpegStreamReconnectsAfterTheServerDropsIt) {
  MjpegServer server(12);
  ASSERT_GT(server.port(), 0);
  vigil::SourceOptions o;
  o.reconnect_delay_s = 0.05;
  o.reconnect_delay_max_s = 0.2;
  o.open_timeout_ms = 3000;
  o.read_timeout_ms = 3000;
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/video.mjpg";
  auto src = vigil::open_source(url, o);
  ASSERT_TRUE(src) << src.error();
  EXPECT_EQ((*src)->kind(), vigil::SourceKind::kNetwork);
  EXPECT_TRUE((*src)->live());
  std::vector<int> numbers;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (numbers.size() < 20 && std::chrono::steady_clock::now() < deadline) {
    vigil::Frame f;
    const auto s = (*src)->read(f);
    ASSERT_EQ(s, vigil::ReadStatus::kFrame) << (*src)->error();
    numbers.push_back(frame_number(f.image));
  }
  (*src)->interrupt();
  ASSERT_EQ(numbers.size(), 20u);
  // Frames of the second connection arrived, in order, none twice (a stale frame is never returned again).
  for (size_t i = 1; i < numbers.size(); ++i) EXPECT_GT(numbers[i], numbers[i - 1]) << "at " << i;
  EXPECT_GE(numbers.back(), 12);
  const auto st = (*src)->stats();
  EXPECT_GE(st.outages, 1);
  EXPECT_GE(st.reconnects, 1);
  EXPECT_GE(server.connections(), 2);
}

// ---------------------------------------------------------------------------------------------------------

TEST(VideoQueue, DropOldestKeepsTheNewestAndCounts) {
  vigil::BoundedQueue<int> q(3, vigil::QueueFull::kDropOldest);
  for (int i = 1; i <= 5; ++i) EXPECT_TRUE(q.push(i));
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.dropped(), 2);
  EXPECT_EQ(q.pop().value(), 3);
  EXPECT_EQ(q.pop().value(), 4);
  q.close();
  EXPECT_FALSE(q.push(6));
  EXPECT_EQ(q.pop().value(), 5);  // closing keeps what was queued
  EXPECT_FALSE(q.pop().has_value());
}

TEST(VideoQueue, BlockingQueueWaitsForRoomAndDropsNothing) {
  vigil::BoundedQueue<int> q(2, vigil::QueueFull::kBlock);
  std::atomic<int> pushed{0};
  std::thread producer([&] {
    for (int i = 0; i < 50; ++i) {
      q.push(i);
      ++pushed;
    }
    q.close();
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_LE(pushed.load(), 3);  // blocked on the full queue
  std::vector<int> got;
  while (auto v = q.pop()) got.push_back(*v);
  producer.join();
  ASSERT_EQ(got.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(got[i], i);
  EXPECT_EQ(q.dropped(), 0);
}

TEST(VideoQueue, CloseAndClearWakesABlockedProducer) {
  vigil::BoundedQueue<int> q(1, vigil::QueueFull::kBlock);
  q.push(1);
  std::atomic<bool> returned{false}, result{true};
  std::thread producer([&] {
    result = q.push(2);
    returned = true;
  });
  std::this_thread::sleep_for(30ms);
  EXPECT_FALSE(returned.load());
  q.close_and_clear();
  producer.join();
  EXPECT_FALSE(result.load());
  EXPECT_FALSE(q.pop().has_value());
}

// ---------------------------------------------------------------------------------------------------------

cv::Mat noisy(const cv::Mat& base, cv::RNG& rng, double sigma = 3) {
  cv::Mat noise(base.size(), CV_16SC3), out;
  rng.fill(noise, cv::RNG::NORMAL, 0, sigma);
  base.convertTo(out, CV_16SC3);
  out += noise;
  out.convertTo(out, CV_8UC3);
  return out;
}

TEST(VideoMotion, NoiseIsStillAMovingCarIsMotionAndTheRoiMasksTheRest) {
  cv::Mat base(480, 640, CV_8UC3, cv::Scalar(120, 120, 120));
  cv::RNG rng(7);
  vigil::MotionOptions o;
  vigil::MotionGate gate(o, {});
  EXPECT_DOUBLE_EQ(gate.changed_fraction(noisy(base, rng)), 1.0);  // no reference yet
  gate.accept();
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(gate.moving(gate.changed_fraction(noisy(base, rng))));

  cv::Mat car = base.clone();
  cv::rectangle(car, cv::Rect(300, 300, 120, 60), cv::Scalar(30, 30, 30), cv::FILLED);
  EXPECT_TRUE(gate.moving(gate.changed_fraction(noisy(car, rng))));
  gate.accept();
  EXPECT_FALSE(gate.moving(gate.changed_fraction(noisy(car, rng))));  // it stopped

  // With an ROI over the top half, the same car (bottom half) is not motion.
  vigil::MotionGate roi_gate(o, {{0, 0}, {640, 0}, {640, 200}, {0, 200}});
  roi_gate.changed_fraction(noisy(base, rng));
  roi_gate.accept();
  EXPECT_FALSE(roi_gate.moving(roi_gate.changed_fraction(noisy(car, rng))));
  cv::Mat top = base.clone();
  cv::rectangle(top, cv::Rect(300, 60, 120, 60), cv::Scalar(30, 30, 30), cv::FILLED);
  EXPECT_TRUE(roi_gate.moving(roi_gate.changed_fraction(noisy(top, rng))));

  // A new frame size starts over.
  cv::Mat small(240, 320, CV_8UC3, cv::Scalar(120, 120, 120));
  EXPECT_DOUBLE_EQ(gate.changed_fraction(small), 1.0);
}

TEST(VideoMotion, ChangedAreaCoversTheMovingCarAndOnlyIt) {
  cv::Mat base(480, 640, CV_8UC3, cv::Scalar(120, 120, 120));
  cv::RNG rng(11);
  vigil::MotionGate gate(vigil::MotionOptions{}, {});
  gate.changed_fraction(noisy(base, rng));
  EXPECT_EQ(gate.changed_area(), cv::Rect(0, 0, 640, 480));  // no reference: everything may have changed
  gate.accept();
  gate.changed_fraction(noisy(base, rng));
  EXPECT_TRUE(gate.changed_area().empty()) << gate.changed_area();  // noise only

  const cv::Rect car(300, 300, 120, 60);
  cv::Mat moved = base.clone();
  cv::rectangle(moved, car, cv::Scalar(30, 30, 30), cv::FILLED);
  gate.changed_fraction(noisy(moved, rng));
  const cv::Rect area = gate.changed_area();
  EXPECT_EQ(area & car, car) << area;  // all of the car
  // and not much more: a few compared pixels (4 frame pixels each) around it.
  EXPECT_LE(area.width, car.width + 40) << area;
  EXPECT_LE(area.height, car.height + 40) << area;
}

// ---------------------------------------------------------------------------------------------------------

vigil::PlateEvent sample_event() {
  vigil::PlateEvent e;
  e.id = "0b7e2a3c-1d2e-4f50-8a6b-7c8d9e0f1a2b";
  e.camera_id = "gate-1";
  e.text = "1AB2345";
  e.confidence = 0.91234f;
  e.country = "cz";
  e.fits_format = true;
  e.candidates = {{"1AB2345", 0.91234f, "cz", "standard"}, {"1A82345", 0.05f, "", ""}};
  e.first_seen = 1714566896.25;
  e.last_seen = 1714566898.5;
  e.frames = 12;
  e.direction = "";
  e.box = cv::Rect(10, 20, 200, 44);
  e.best_crop = cv::Mat(44, 200, CV_8UC3, cv::Scalar(255, 255, 255));
  e.thumbnail = cv::Mat(360, 640, CV_8UC3, cv::Scalar(90, 90, 90));
  return e;
}

TEST(VideoEvents, JsonOnTheStreamAndTheWallClock) {
  EXPECT_EQ(vigil::iso8601_utc(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(vigil::iso8601_utc(1714566896.25), "2024-05-01T12:34:56.250Z");
  EXPECT_EQ(vigil::iso8601_utc(59.9996), "1970-01-01T00:01:00.000Z");

  vigil::PlateEvent e = sample_event();
  auto wall = nlohmann::json::parse(vigil::event_to_json(e, vigil::EventClock::kWall));
  EXPECT_EQ(wall["id"], e.id);
  EXPECT_EQ(wall["camera_id"], "gate-1");
  EXPECT_EQ(wall["text"], "1AB2345");
  EXPECT_NEAR(wall["confidence"].get<double>(), 0.9123, 1e-9);
  EXPECT_EQ(wall["country"], "cz");
  EXPECT_EQ(wall["fits_format"], true);
  ASSERT_EQ(wall["candidates"].size(), 2u);
  EXPECT_TRUE(wall["candidates"][1]["country"].is_null());
  EXPECT_EQ(wall["first_seen"], "2024-05-01T12:34:56.250Z");
  EXPECT_EQ(wall["last_seen"], "2024-05-01T12:34:58.500Z");
  EXPECT_DOUBLE_EQ(wall["first_seen_s"].get<double>(), 1714566896.25);
  EXPECT_EQ(wall["frames"], 12);
  EXPECT_TRUE(wall["direction"].is_null());
  EXPECT_EQ(wall["box"], nlohmann::json::array({10, 20, 200, 44}));
  EXPECT_TRUE(wall["evidence"].is_null());

  e.first_seen = 1.2346;
  e.last_seen = 3.5;
  e.direction = "right";
  vigil::EvidencePaths paths{"/ev/x-plate.jpg", "/ev/x-frame.jpg"};
  const std::string line = vigil::event_to_json(e, vigil::EventClock::kStream, &paths);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto stream = nlohmann::json::parse(line);
  EXPECT_DOUBLE_EQ(stream["first_seen"].get<double>(), 1.235);  // milliseconds
  EXPECT_DOUBLE_EQ(stream["last_seen_s"].get<double>(), 3.5);
  EXPECT_EQ(stream["direction"], "right");
  EXPECT_EQ(stream["evidence"]["plate"], "/ev/x-plate.jpg");
}

TEST(VideoEvents, JsonLinesSinkWritesFlushedLinesAndEvidence) {
  TempDir dir;
  auto out = vigil::LineOutput::open(dir / "events.jsonl");
  ASSERT_TRUE(out) << out.error();
  vigil::JsonLinesOptions o;
  o.evidence_dir = dir / "evidence";
  vigil::JsonLinesSink sink(*out, o);
  vigil::PlateEvent e = sample_event();
  sink.on_event(e);
  // Flushed: readable before the sink or the output is closed.
  std::ifstream in(dir / "events.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  auto j = nlohmann::json::parse(line);
  const std::string plate = j["evidence"]["plate"], frame = j["evidence"]["frame"];
  EXPECT_EQ(fs::path(plate).filename().string(), e.id + "-plate.jpg");
  EXPECT_EQ(fs::path(frame).filename().string(), e.id + "-frame.jpg");
  EXPECT_EQ(cv::imread(plate).size(), cv::Size(200, 44));
  EXPECT_EQ(cv::imread(frame).size(), cv::Size(640, 360));

  // An event without images still gets its line, with "evidence": null.
  e.best_crop.release();
  e.thumbnail.release();
  e.id = "no-images";
  sink.on_event(e);
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_TRUE(nlohmann::json::parse(line)["evidence"].is_null());

  auto bad = vigil::LineOutput::open(dir / "no/such/folder/events.jsonl");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("does not exist"), std::string::npos) << bad.error();
}

// ---------------------------------------------------------------------------------------------------------
// The pipeline, with the bundled models.

class VideoStreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto r = vigil::Recognizer::load();
    if (r)
      recognizer_ = std::make_unique<vigil::Recognizer>(std::move(*r));
    else
      load_error_ = r.error();
  }
  static void TearDownTestSuite() { recognizer_.reset(); }
  void SetUp() override { ASSERT_TRUE(recognizer_) << load_error_; }
  static std::unique_ptr<vigil::Recognizer> recognizer_;
  static std::string load_error_;
};
std::unique_ptr<vigil::Recognizer> VideoStreamTest::recognizer_;
std::string VideoStreamTest::load_error_;

// A source that makes numbered frames as fast as asked, live or not.
class ScriptedSource : public vigil::FrameSource {
 public:
  ScriptedSource(int frames, bool live, std::chrono::microseconds interval)
      : frames_(frames), live_(live), interval_(interval) {}
  vigil::ReadStatus read(vigil::Frame& f) override {
    if (stop_) return vigil::ReadStatus::kStopped;
    if (frames_ >= 0 && next_ >= frames_) return vigil::ReadStatus::kEnd;
    std::this_thread::sleep_for(interval_);
    f.image = numbered_frame(next_ % 256, {128, 96});
    f.index = next_;
    f.t = next_ * 0.04;
    f.decoded_at = std::chrono::steady_clock::now();
    ++next_;
    return vigil::ReadStatus::kFrame;
  }
  void interrupt() override { stop_ = true; }
  bool live() const override { return live_; }
  vigil::SourceKind kind() const override {
    return live_ ? vigil::SourceKind::kDevice : vigil::SourceKind::kFile;
  }
  const std::string& description() const override { return name_; }
  std::string error() const override { return ""; }
  vigil::SourceStats stats() const override {
    vigil::SourceStats s;
    s.frames_read = s.frames_returned = next_;
    return s;
  }

 private:
  int frames_;
  bool live_;
  std::chrono::microseconds interval_;
  std::atomic<int> next_{0};
  std::atomic<bool> stop_{false};
  std::string name_ = "scripted";
};

struct Seen {
  std::mutex mutex;
  std::vector<std::int64_t> indices;
  int recognized = 0;
};

TEST_F(VideoStreamTest, LiveSourceDropsTheOldestFramesWhenRecognitionFallsBehind) {
  vigil::StreamOptions o;
  o.camera_id = "live";
  o.motion.enabled = false;
  o.queue_size = 2;
  auto seen = std::make_shared<Seen>();
  o.on_frame = [seen](const vigil::StreamFrame& f) {
    std::lock_guard lock(seen->mutex);
    seen->indices.push_back(f.frame.index);
    std::this_thread::sleep_for(10ms);  // recognition is slower than the camera
  };
  auto stream = vigil::Stream::open(*recognizer_, std::make_unique<ScriptedSource>(80, true, 500us), o, {});
  ASSERT_TRUE(stream) << stream.error();
  EXPECT_TRUE(stream->live());
  stream->start();
  stream->wait();
  EXPECT_TRUE(stream->finished());
  const auto st = stream->stats();
  EXPECT_EQ(st.frames_decoded, 80);
  EXPECT_GT(st.frames_dropped, 0);
  EXPECT_EQ(st.frames_processed + st.frames_dropped, 80);
  EXPECT_EQ(st.frames_recognized, st.frames_processed);
  ASSERT_EQ(seen->indices.size(), size_t(st.frames_processed));
  for (size_t i = 1; i < seen->indices.size(); ++i) EXPECT_GT(seen->indices[i], seen->indices[i - 1]);
  EXPECT_EQ(seen->indices.back(), 79);  // the newest frame is never the one dropped
}

TEST_F(VideoStreamTest, FileSourceWaitsInsteadOfDropping) {
  vigil::StreamOptions o;
  o.motion.enabled = false;
  o.queue_size = 2;
  auto seen = std::make_shared<Seen>();
  o.on_frame = [seen](const vigil::StreamFrame& f) {
    std::lock_guard lock(seen->mutex);
    seen->indices.push_back(f.frame.index);
    std::this_thread::sleep_for(2ms);
  };
  auto stream = vigil::Stream::open(*recognizer_, std::make_unique<ScriptedSource>(30, false, 0us), o, {});
  ASSERT_TRUE(stream) << stream.error();
  stream->start();
  stream->wait();
  const auto st = stream->stats();
  EXPECT_EQ(st.frames_processed, 30);
  EXPECT_EQ(st.frames_dropped, 0);
  ASSERT_EQ(seen->indices.size(), 30u);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(seen->indices[i], i);
}

TEST_F(VideoStreamTest, MotionGatingSkipsAStaticVideo) {
  TempDir dir;
  ASSERT_TRUE(write_scene_video(dir / "static.mp4", 20, false));
  ASSERT_TRUE(write_scene_video(dir / "moving.mp4", 20, true));
  auto run = [&](const std::string& path, bool motion) {
    vigil::StreamOptions o;
    o.source = path;
    o.motion.enabled = motion;
    auto stream = vigil::Stream::open(*recognizer_, o, {});
    EXPECT_TRUE(stream) << stream.error();
    if (!stream) return vigil::StreamStats{};
    stream->start();
    stream->wait();
    EXPECT_EQ(stream->error(), "");
    return stream->stats();
  };
  const auto gated = run(dir / "static.mp4", true);
  EXPECT_EQ(gated.frames_processed, 20);
  EXPECT_EQ(gated.frames_recognized, 1);  // the first frame only
  EXPECT_EQ(gated.frames_skipped_motion, 19);
  const auto all = run(dir / "static.mp4", false);
  EXPECT_EQ(all.frames_recognized, 20);
  EXPECT_EQ(all.frames_skipped_motion, 0);
  const auto moving = run(dir / "moving.mp4", true);
  EXPECT_EQ(moving.frames_recognized, 20);  // the block moves every frame
}

TEST_F(VideoStreamTest, StopEndsAnEndlessLiveStreamPromptly) {
  vigil::StreamOptions o;
  o.motion.enabled = false;
  auto stream = vigil::Stream::open(*recognizer_, std::make_unique<ScriptedSource>(-1, true, 2ms), o, {});
  ASSERT_TRUE(stream) << stream.error();
  stream->start();
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(stream->finished());
  const auto t0 = std::chrono::steady_clock::now();
  stream->stop();
  stream->wait();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_TRUE(stream->finished());
  EXPECT_GT(stream->stats().frames_processed, 0);
  EXPECT_EQ(stream->error(), "");
}

TEST_F(VideoStreamTest, OpenFailsClearlyOnABadSourceOrRoi) {
  vigil::StreamOptions o;
  o.source = "/no/such/video.mp4";
  auto missing = vigil::Stream::open(*recognizer_, o, {});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("no such file"), std::string::npos) << missing.error();
  o.roi = {{0, 0}, {10, 10}};
  auto roi = vigil::Stream::open(*recognizer_, std::make_unique<ScriptedSource>(1, false, 0us), o, {});
  ASSERT_FALSE(roi);
  EXPECT_NE(roi.error().find("at least 3 points"), std::string::npos) << roi.error();
}

}  // namespace
