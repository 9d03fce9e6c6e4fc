// Camera configuration files of `vigil watch`.
//
// Two layouts, both JSON with // and /* */ comments and trailing commas allowed:
//   one camera per file (a camera box: /etc/vigil/cameras/cam1.json, run by vigil-watch@cam1):
//     {"source": "/dev/video0", "name": "Gate", "roi": [[0, 300], [1280, 300], [1280, 720], [0, 720]],
//      "server": "https://registry.example.org", "token": "...", "outbox": "/var/lib/vigil/cam1.outbox"}
//     its id defaults to the file name without .json ("cam1");
//   several cameras in one file:
//     {"min_plate_width": 40, "cameras": [{"id": "lane1", "source": "rtsp://..."}, {...}]}
//     keys beside "cameras" (all camera keys but id, name and source) are defaults for every camera.
// Every error names the file, the line and the key ("cam1.json:7: roi: must be a list of at least 3 [x, y]
// points (got 2)"); unknown keys are errors with a did-you-mean.
#pragma once

#include <opencv2/core/types.hpp>
#include <string>
#include <vector>

#include "vigil/common.hpp"

namespace vigil::cli {

// One camera: from the command line or a config file entry.
struct Camera {
  std::string id;                // camera id in events and messages
  std::string name;              // human name ("Gate, north lane"); "" when not given
  std::string source;            // a file, image folder, device (/dev/video0, 0), URL or GStreamer pipeline
  std::vector<cv::Point2f> roi;  // region of interest polygon (>= 3 points, frame pixels); empty: all
  bool roi_crop = true;          // recognise only the ROI's bounding rectangle
  int min_plate_width = 0;       // plates narrower than this are ignored (pixels)
  int stride = 1;                // files and image folders: every Nth frame
  int queue = 0;                 // frames queued between decoding and recognition (0: library default)
  int reconnect_max = 0;         // live sources: give up after this many failed attempts in a row (0: never)
  int min_frames = 2;            // tracks read in fewer frames are noise, not events
  bool motion = true;            // motion gating
  int motion_threshold = 0;      // grey-level change of a changed pixel, 1..255 (0: library default)
  double motion_area = -1;       // changed fraction of the frame, 0..1 (< 0: library default)
  double max_gap_s = 1.0;        // a track unseen this long ends (seconds)
  double images_fps = 10.0;      // image folders: frames per second for timestamps
  std::string country;           // preferred plate country ("" : the recognizer's)
  // Where the cameras are (see --region, --countries); "" : the command line's. Cameras of one `vigil watch`
  // share its recognizer, so they must agree.
  std::string region, countries;
  std::string live = "auto";     // "auto", "yes", "no"
  // Upload of events to a vignette registry (`vigil serve`); "" when not given.
  std::string server;  // base URL, http:// or https://
  std::string token;   // API token sent to the server
  std::string outbox;  // file that keeps events until the server has taken them
  // Where the camera was configured, for messages: "cam1.json:3", or "" for the command line.
  std::string origin;
};

// Reads and validates a config file of either layout. `defaults` gives what the file leaves out. The
// error message starts with "PATH:LINE: " (LINE of the bad key or value) and says what is expected.
Result<std::vector<Camera>> parse_camera_config(const std::string& path, const Camera& defaults);

// As above on text in memory; `path` names it in messages and gives a single camera's default id.
Result<std::vector<Camera>> parse_camera_config_text(const std::string& text, const std::string& path,
                                                     const Camera& defaults);

// A source for messages: the password of a URL replaced ("rtsp://admin:***@10.0.0.5/s1").
std::string source_for_display(const std::string& source);

// The keys a camera entry may have, for help texts.
const std::vector<std::string>& camera_config_keys();

}  // namespace vigil::cli
