#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <opencv2/imgcodecs.hpp>

#include "vigil/image.hpp"

namespace vigil {
namespace {

// Enough of a file to find its type and size: a JPEG's frame header may follow a 64 KB EXIF segment.
constexpr std::size_t kProbeBytes = 128 * 1024;

struct Header {
  std::string kind;                   // "jpeg", "png", "bmp", "webp", "tiff" or ""
  long long width = -1, height = -1;  // -1: not found in the bytes probed
};

std::uint32_t be32(const unsigned char* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}
std::uint16_t be16(const unsigned char* p) { return std::uint16_t((p[0] << 8) | p[1]); }
std::uint32_t le32(const unsigned char* p) {
  return (std::uint32_t(p[3]) << 24) | (std::uint32_t(p[2]) << 16) | (std::uint32_t(p[1]) << 8) | p[0];
}
std::uint16_t le16(const unsigned char* p) { return std::uint16_t((p[1] << 8) | p[0]); }

// A TIFF's first image: ImageWidth (256) and ImageLength (257) in its first IFD.
void tiff_size(const unsigned char* p, std::size_t n, Header& h) {
  const bool le = p[0] == 'I';
  auto u16 = [&](std::size_t at) { return le ? le16(p + at) : be16(p + at); };
  auto u32 = [&](std::size_t at) { return le ? le32(p + at) : be32(p + at); };
  if (n < 8) return;
  const std::size_t ifd = u32(4);
  if (ifd + 2 > n) return;
  const std::size_t entries = u16(ifd);
  for (std::size_t k = 0; k < entries; ++k) {
    const std::size_t e = ifd + 2 + 12 * k;
    if (e + 12 > n) return;
    const unsigned tag = u16(e), type = u16(e + 2);
    const long long value = type == 3 ? u16(e + 8) : u32(e + 8);  // SHORT or LONG
    if (tag == 256) h.width = value;
    if (tag == 257) h.height = value;
  }
}

// A WebP's canvas: VP8 (lossy), VP8L (lossless) or VP8X (extended) chunk.
void webp_size(const unsigned char* p, std::size_t n, Header& h) {
  if (n < 30) return;
  if (std::memcmp(p + 12, "VP8 ", 4) == 0) {
    h.width = le16(p + 26) & 0x3FFF;
    h.height = le16(p + 28) & 0x3FFF;
  } else if (std::memcmp(p + 12, "VP8L", 4) == 0) {
    const std::uint32_t bits = le32(p + 21);
    h.width = (bits & 0x3FFF) + 1;
    h.height = ((bits >> 14) & 0x3FFF) + 1;
  } else if (std::memcmp(p + 12, "VP8X", 4) == 0) {
    h.width = (p[24] | (p[25] << 8) | (p[26] << 16)) + 1;
    h.height = (p[27] | (p[28] << 8) | (p[29] << 16)) + 1;
  }
}

Header probe(const std::string& bytes) {
  Header h;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) {
    h.kind = "jpeg";
    std::size_t i = 2;
    while (i + 9 < n) {  // walk the marker segments up to the frame header
      if (p[i] != 0xFF) break;
      const unsigned char m = p[i + 1];
      if (m == 0xFF) {
        ++i;
        continue;
      }
      if ((m >= 0xC0 && m <= 0xCF) && m != 0xC4 && m != 0xC8 && m != 0xCC) {
        h.height = be16(p + i + 5);
        h.width = be16(p + i + 7);
        break;
      }
      i += 2 + be16(p + i + 2);
    }
  } else if (n >= 24 && std::memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) {
    h.kind = "png";
    h.width = be32(p + 16);
    h.height = be32(p + 20);
  } else if (n >= 26 && p[0] == 'B' && p[1] == 'M') {
    h.kind = "bmp";
    std::int32_t w, hh;
    std::memcpy(&w, p + 18, 4);
    std::memcpy(&hh, p + 22, 4);
    h.width = w;
    h.height = std::llabs(static_cast<long long>(hh));
  } else if (n >= 12 && std::memcmp(p, "RIFF", 4) == 0 && std::memcmp(p + 8, "WEBP", 4) == 0) {
    h.kind = "webp";
    webp_size(p, n, h);
  } else if (n >= 4 && (std::memcmp(p, "II*\0", 4) == 0 || std::memcmp(p, "MM\0*", 4) == 0)) {
    h.kind = "tiff";
    tiff_size(p, n, h);
  }
  return h;
}

// Offset of the first start-of-scan marker; the size when the headers end before one (cut short), 0 when
// the segments cannot be walked.
std::size_t jpeg_scan_start(const std::string& bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t i = 2;
  while (i + 4 <= n) {
    if (p[i] != 0xFF) return 0;
    const unsigned char m = p[i + 1];
    if (m == 0xFF) {
      ++i;
    } else if (m == 0xDA) {
      return i;
    } else if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {
      i += 2;
    } else {
      i += 2 + be16(p + i + 2);
    }
  }
  return n;
}

std::string describe_start(const std::string& bytes) {
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < std::min<std::size_t>(bytes.size(), 8); ++i) {
    const unsigned char c = bytes[i];
    if (c >= 32 && c < 127)
      s += char(c);
    else
      s += std::string("\\x") + hex[c >> 4] + hex[c & 15];
  }
  return s;
}

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder with no images (JPEG, PNG, BMP, WebP, TIFF files)";
  if (S_ISFIFO(mode)) return "a pipe (FIFO), not a file: save the image to a file first";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device, not a file";
  if (S_ISSOCK(mode)) return "a socket, not a file";
  return "not a regular file";
}

}  // namespace

Result<cv::Mat> load_image_file(const std::string& path, const ImageLimits& limits) {
  // OpenCV's own decoders check their pixel count too (it reads this once, before its first decode).
  static std::once_flag opencv_limit;
  std::call_once(opencv_limit, [&] {
    if (!std::getenv("OPENCV_IO_MAX_IMAGE_PIXELS"))
      ::setenv("OPENCV_IO_MAX_IMAGE_PIXELS", std::to_string(limits.max_pixels).c_str(), 0);
  });
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Error{errno == ENOENT ? "no such file" : std::strerror(errno)};
  if (!S_ISREG(st.st_mode)) return Error{file_kind(st.st_mode)};
  if (st.st_size == 0) return Error{"empty file (0 bytes)"};
  if (std::size_t(st.st_size) > limits.max_bytes)
    return Error{"file of " + std::to_string(st.st_size >> 20) + " MB is over the limit of " +
                 std::to_string(limits.max_bytes >> 20) + " MB for an image"};
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{std::string("cannot open: ") + std::strerror(errno)};
  std::string bytes(std::min<std::size_t>(std::size_t(st.st_size), kProbeBytes), '\0');
  in.read(bytes.data(), std::streamsize(bytes.size()));
  bytes.resize(std::size_t(in.gcount()));
  const Header h = probe(bytes);
  if (h.kind.empty())
    return Error{"not an image (starts with \"" + describe_start(bytes) +
                 "\"); supported: JPEG, PNG, BMP, WebP, TIFF"};
  if (h.width == 0 || h.height == 0)
    return Error{"image header says " + std::to_string(h.width) + "x" + std::to_string(h.height) + " pixels"};
  if (h.width > 0 && h.height > 0 && std::size_t(h.width) * std::size_t(h.height) > limits.max_pixels)
    return Error{"image too large (" + std::to_string(h.width) + "x" + std::to_string(h.height) +
                 " pixels; the limit is " + std::to_string(limits.max_pixels / 1000000) +
                 " megapixels): downscale it first"};
  if (std::size_t(st.st_size) > bytes.size()) {
    const std::size_t head = bytes.size();
    bytes.resize(std::size_t(st.st_size));
    in.read(bytes.data() + head, std::streamsize(bytes.size() - head));
    bytes.resize(head + std::size_t(in.gcount()));
  }
  if (h.kind == "jpeg") {
    // A JPEG cut short decodes with grey blocks and only a libjpeg warning: refuse it instead. The end marker
    // is looked for anywhere after the first scan, not just at the end: cameras append data after it
    // (motion-photo videos, maker trailers), and an EXIF thumbnail before the scan has its own.
    if (bytes.find("\xFF\xD9", jpeg_scan_start(bytes)) == std::string::npos)
      return Error{"truncated JPEG (no end-of-image marker): the file was cut short"};
  }
  if (h.kind == "png" && bytes.find("IEND") == std::string::npos)
    return Error{"truncated PNG (no IEND chunk): the file was cut short"};
  cv::Mat image;
  try {
    cv::Mat buf(1, int(bytes.size()), CV_8U, bytes.data());
    image = cv::imdecode(buf, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    return Error{"cannot decode " + h.kind + " data (" + e.msg + ")"};
  }
  if (image.empty()) return Error{"cannot decode the " + h.kind + " data: corrupt or unsupported"};
  if (image.total() > limits.max_pixels)
    return Error{"image too large (" + std::to_string(image.cols) + "x" + std::to_string(image.rows) +
                 " pixels)"};
  return image;
}

}  // namespace vigil
