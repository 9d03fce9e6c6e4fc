// The HTTP API over the registry (cpp-httplib). Every request is checked completely (token, role, size,
// content type, JSON shape, field types, unknown fields) before anything is stored, so a bad request
// changes nothing.
#include "vigil/server.hpp"

#include <httplib.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/base64.hpp"
#include "server/metrics.hpp"

namespace vigil {

using nlohmann::json;

namespace {

using Roles = std::vector<Role>;

const Roles kPublic = {};
const Roles kReaders = {Role::kOperator, Role::kAdmin};
const Roles kSellers = {Role::kShop, Role::kAdmin};
const Roles kAdmins = {Role::kAdmin};
const Roles kCameras = {Role::kCamera};
const Roles kLookups = {Role::kShop, Role::kOperator, Role::kAdmin};
const Roles kAnyToken = {Role::kCamera, Role::kShop, Role::kOperator, Role::kAdmin};

int http_status(Failure f) {
  switch (f) {
    case Failure::kInvalid:
      return 400;
    case Failure::kNotFound:
      return 404;
    case Failure::kConflict:
      return 409;
    case Failure::kBusy:
      return 503;
    case Failure::kStorage:
      return 500;
  }
  return 500;
}

const char* status_text(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not found";
    case 405:
      return "method not allowed";
    case 408:
      return "request timeout";
    case 413:
      return "request body too large";
    case 414:
      return "request URI too long";
    case 415:
      return "unsupported media type";
    case 416:
      return "range not satisfiable";
    default:
      return status >= 500 ? "internal server error" : "request failed";
  }
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json nullable(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string roles_text(const Roles& roles) {
  std::string s;
  for (std::size_t i = 0; i < roles.size(); ++i)
    s += (i == 0 ? "" : i + 1 == roles.size() ? " or " : ", ") + std::string(to_string(roles[i]));
  return s;
}

std::string type_name(const json& j) {
  if (j.is_null()) return "null";
  if (j.is_boolean()) return "a boolean";
  if (j.is_number()) return "a number";
  if (j.is_string()) return "a string";
  if (j.is_array()) return "an array";
  return "an object";
}

// Reads one JSON object strictly: unknown keys and wrong types are errors naming the field.
class Fields {
 public:
  Fields(const json& j, std::string at) : j_(j), at_(std::move(at)) {
    if (!j_.is_object()) fail(at_.empty() ? "body" : at_, "expected an object, got " + type_name(j_));
  }

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  Fields& only(std::initializer_list<std::string_view> known) {
    if (!ok()) return *this;
    for (const auto& [key, value] : j_.items()) {
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      std::string list;
      for (const auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      fail(path(key), "unknown field (known: " + list + ")");
      break;
    }
    return *this;
  }

  bool has(const std::string& key) const { return ok() && j_.contains(key) && !j_[key].is_null(); }

  // A string field; "" when absent (or null when nullable) and not required.
  std::string text(const std::string& key, bool required, std::size_t max_len = 256, bool nullable = false) {
    if (!ok()) return "";
    if (!j_.contains(key) || (nullable && j_[key].is_null())) {
      if (required) fail(path(key), "required");
      return "";
    }
    const auto& v = j_[key];
    if (!v.is_string()) {
      fail(path(key), "expected a string, got " + type_name(v));
      return "";
    }
    const auto& s = v.get_ref<const std::string&>();
    if (s.size() > max_len) fail(path(key), "longer than " + std::to_string(max_len) + " characters");
    return s;
  }

  double number(const std::string& key, bool required, double fallback = 0.0) {
    if (!ok()) return fallback;
    if (!j_.contains(key)) {
      if (required) fail(path(key), "required");
      return fallback;
    }
    const auto& v = j_[key];
    if (!v.is_number()) {
      fail(path(key), "expected a number, got " + type_name(v));
      return fallback;
    }
    return v.get<double>();
  }

  std::optional<bool> boolean(const std::string& key) {
    if (!ok() || !j_.contains(key) || j_[key].is_null()) return std::nullopt;
    if (!j_[key].is_boolean()) {
      fail(path(key), "expected true or false, got " + type_name(j_[key]));
      return std::nullopt;
    }
    return j_[key].get<bool>();
  }

  const json& raw(const std::string& key) const { return j_[key]; }
  std::string path(const std::string& key) const { return at_.empty() ? key : at_ + "." + key; }
  void fail(const std::string& where, const std::string& why) {
    if (error_.empty()) error_ = where + ": " + why;
  }
  // Takes the error of a nested object's reader.
  void adopt(const std::string& error) {
    if (error_.empty()) error_ = error;
  }

 private:
  const json& j_;
  std::string at_;
  std::string error_;
};

json record_json(const Record& r, const TimeZone& zone) {
  json j = {{"id", r.id},
            {"kind", to_string(r.kind)},
            {"plate", r.plate},
            {"country", r.country},
            {"vehicle_category", r.vehicle_category},
            {"order_id", nullable(r.order_id)},
            {"note", r.note},
            {"valid_from", zone.format(r.valid_from)},
            {"valid_to", r.valid_to == kForever ? json(nullptr) : json(zone.format(r.valid_to))},
            {"created", format_timestamp(r.created)},
            {"refunded", r.refunded ? json(format_timestamp(*r.refunded)) : json(nullptr)}};
  if (r.kind == RecordKind::kVignette) {
    j["product"] = r.product;
  } else {
    j["reason"] = r.reason;
  }
  // The last day of validity (inclusive), as printed on a vignette.
  if (r.valid_to != kForever)
    j["last_day"] = format_day(zone.local_day(r.valid_to - std::chrono::milliseconds{1}));
  return j;
}

json sighting_json(const StoredSighting& s) {
  json j = {{"sighting_id", s.id},
            {"id", s.sighting.event_id},
            {"camera_id", s.sighting.camera_id},
            {"time", format_timestamp(s.sighting.time)},
            {"text", s.sighting.read.text},
            {"confidence", s.sighting.read.confidence},
            {"country", nullable(s.sighting.read.country)},
            {"decision", to_string(s.decision.verdict)},
            {"reason", s.decision.reason},
            {"record_id", s.decision.record_id ? json(s.decision.record_id) : json(nullptr)},
            {"matched_plate", nullable(s.decision.matched_plate)},
            {"outcome", to_string(s.outcome)},
            {"received", format_timestamp(s.received)},
            {"resolution", nullptr},
            {"images", {{"plate", s.plate_image}, {"frame", s.frame_image}}}};
  if (s.resolved)
    j["resolution"] = {{"action", s.resolution},
                       {"plate", nullable(s.resolved_plate)},
                       {"note", s.resolution_note},
                       {"by", s.resolved_by ? json(s.resolved_by) : json(nullptr)},
                       {"at", format_timestamp(*s.resolved)}};
  return j;
}

json token_json(const TokenInfo& t) {
  return {{"id", t.id},
          {"role", to_string(t.role)},
          {"camera", nullable(t.camera_id)},
          {"note", t.note},
          {"created", format_timestamp(t.created)},
          {"revoked", t.revoked ? json(format_timestamp(*t.revoked)) : json(nullptr)}};
}

std::optional<std::int64_t> parse_int(const std::string& s) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Request bodies nested deeper than this are refused before they are parsed: the deepest body of the API
// (a sighting's candidates) is 4 levels deep, and parsing, storing or printing JSON nested 100 000 deep
// overflows the stack.
constexpr std::size_t kJsonMaxDepth = 32;

// How deeply arrays and objects nest in `text` (JSON or not), strings skipped; stops counting once past
// kJsonMaxDepth.
std::size_t json_depth(std::string_view text) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > kJsonMaxDepth) return deepest;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

// One request being answered.
struct Call {
  const httplib::Request& req;
  httplib::Response& res;
  std::string route;
  TokenInfo token;

  void reply(int status, const json& body) {
    res.status = status;
    res.set_content(dump(body), "application/json");
  }
  void error(int status, const std::string& message) { reply(status, json{{"error", message}}); }
  void failed(const RegistryError& e) {
    if (e.failure == Failure::kBusy) res.set_header("Retry-After", "1");
    error(http_status(e.failure), e.message);
  }
  template <typename T>
  bool check(const RegistryResult<T>& r) {
    if (!r) failed(r.error_detail());
    return r.ok();
  }

  // Refuses query parameters other than `known`.
  bool params_only(std::initializer_list<std::string_view> known) {
    for (const auto& [key, value] : req.params) {
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      std::string list;
      for (const auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      error(400, "unknown query parameter '" + key + "'" + (list.empty() ? "" : " (known: " + list + ")"));
      return false;
    }
    return true;
  }

  std::optional<json> body(std::size_t max_bytes) {
    if (req.body.size() > max_bytes) {
      error(413, "request body of " + std::to_string(req.body.size()) + " bytes is over the limit of " +
                     std::to_string(max_bytes));
      return std::nullopt;
    }
    const std::string type = lower(req.get_header_value("Content-Type"));
    std::string media = type.substr(0, type.find(';'));
    while (!media.empty() && media.back() == ' ') media.pop_back();
    if (media != "application/json") {
      error(415, "Content-Type must be application/json" +
                     (type.empty() ? std::string() : ", not " + type.substr(0, 80)));
      return std::nullopt;
    }
    if (const std::size_t depth = json_depth(req.body); depth > kJsonMaxDepth) {
      error(400, "malformed JSON: nested deeper than " + std::to_string(kJsonMaxDepth) + " levels");
      return std::nullopt;
    }
    try {
      return json::parse(req.body);
    } catch (const json::exception& e) {  // parse errors, and numbers no double holds (1e400)
      std::string what = e.what();
      if (const auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
      error(400, "malformed JSON: " + what.substr(0, 200));
      return std::nullopt;
    }
  }

  std::optional<std::int64_t> path_id(std::size_t match = 1) {
    auto id = parse_int(req.matches[static_cast<int>(match)].str());
    if (!id) error(404, "no such id '" + req.matches[static_cast<int>(match)].str() + "'");
    return id;
  }
};

// Filters shared by the sighting lists. Without order=, a list is oldest first unless `newest` is set and
// no after_id is given (after_id pages forward, before_id back).
bool read_query(Call& c, SightingQuery& q, bool newest = false) {
  if (!c.params_only({"camera", "from", "to", "after_id", "before_id", "order", "limit"})) return false;
  q.newest_first = newest && !c.req.has_param("after_id");
  if (c.req.has_param("order")) {
    const std::string order = c.req.get_param_value("order");
    if (order != "newest" && order != "oldest") {
      c.error(400, "order: '" + order.substr(0, 40) + "' unknown (newest or oldest)");
      return false;
    }
    q.newest_first = order == "newest";
  }
  q.camera_id = c.req.get_param_value("camera");
  for (const auto& [name, slot] : {std::pair{"from", &q.from}, std::pair{"to", &q.to}}) {
    if (!c.req.has_param(name)) continue;
    auto t = parse_timestamp(c.req.get_param_value(name));
    if (!t) {
      c.error(400, std::string(name) + ": " + t.error());
      return false;
    }
    *slot = *t;
  }
  if (c.req.has_param("after_id")) {
    auto v = parse_int(c.req.get_param_value("after_id"));
    if (!v || *v < 0) {
      c.error(400, "after_id: expected a whole number >= 0");
      return false;
    }
    q.after_id = *v;
  }
  if (c.req.has_param("before_id")) {
    auto v = parse_int(c.req.get_param_value("before_id"));
    if (!v || *v < 1) {
      c.error(400, "before_id: expected a whole number >= 1");
      return false;
    }
    q.before_id = *v;
  }
  if (c.req.has_param("limit")) {
    auto v = parse_int(c.req.get_param_value("limit"));
    if (!v || *v < 1 || *v > 1000) {
      c.error(400, "limit: expected a whole number from 1 to 1000");
      return false;
    }
    q.limit = static_cast<int>(*v);
  }
  return true;
}

// A sighting's candidate reads: `vigil watch` sends 5 (--top); more are refused, not cut.
constexpr std::size_t kCandidatesMax = 50;

// One sighting of a POST /api/sightings batch; the fields of a `vigil watch` event are accepted as they are.
// `image_max`: the largest evidence JPEG (bytes).
std::optional<Sighting> parse_sighting(const json& j, const std::string& at, std::size_t image_max,
                                       std::string& error) {
  Fields f(j, at);
  f.only({"id", "camera_id", "time", "text", "confidence", "country", "country_confidence", "fits_format",
          "candidates", "first_seen", "last_seen", "first_seen_s", "last_seen_s", "frames", "direction",
          "box", "evidence", "images"});
  Sighting s;
  s.event_id = f.text("id", true, 128);
  s.camera_id = f.text("camera_id", true, 64);
  s.read.text = f.text("text", true, 64);
  s.read.confidence = static_cast<float>(f.number("confidence", true));
  s.read.country = f.text("country", false, 8, true);
  s.read.fits_format = f.boolean("fits_format");
  if (f.ok() && f.has("country_confidence")) f.number("country_confidence", true);  // checked, not stored
  // The rest of a `vigil watch` event is stored as it came (the audit copy): each field has its type and
  // a bound, so a sighting is never a vehicle for an arbitrary document.
  if (f.ok() && f.has("box")) {
    const json& b = f.raw("box");
    if (!b.is_array() || b.size() != 4 || !std::all_of(b.begin(), b.end(), [](const json& v) {
          return v.is_number() && std::isfinite(v.get<double>());
        }))
      f.fail(f.path("box"), "expected [x, y, width, height] in pixels");
  }
  if (f.ok() && f.has("frames") && !f.raw("frames").is_number_integer())
    f.fail(f.path("frames"), "expected a whole number, got " + type_name(f.raw("frames")));
  f.text("direction", false, 16, true);
  for (const char* key : {"first_seen_s", "last_seen_s"})
    if (f.ok() && f.has(key)) f.number(key, true);
  for (const char* key : {"first_seen", "last_seen"})
    if (f.ok() && f.has(key) && !f.raw(key).is_number()) f.text(key, true, 64);
  if (f.ok() && f.has("evidence")) {
    Fields ev(f.raw("evidence"), f.path("evidence"));
    ev.only({"plate", "frame"});
    ev.text("plate", false, 512, true);
    ev.text("frame", false, 512, true);
    if (!ev.ok()) f.adopt(ev.error());
  }
  if (f.ok() && f.has("candidates") && f.raw("candidates").is_array() &&
      f.raw("candidates").size() > kCandidatesMax)
    f.fail(f.path("candidates"), std::to_string(f.raw("candidates").size()) + " candidates; at most " +
                                     std::to_string(kCandidatesMax));
  std::string time_text;
  if (f.ok() && f.has("time")) {
    time_text = f.text("time", true, 64);
  } else if (f.ok() && f.has("last_seen")) {
    if (!f.raw("last_seen").is_string())
      f.fail(f.path("time"), "required: last_seen is on the stream clock (a number); send time as RFC 3339");
    else
      time_text = f.text("last_seen", true, 64);
  } else {
    f.fail(f.path("time"), "required (RFC 3339, e.g. 2024-05-01T12:34:56.789Z)");
  }
  if (f.ok()) {
    auto t = parse_timestamp(time_text);
    if (!t)
      f.fail(f.path(f.has("time") ? "time" : "last_seen"), t.error());
    else
      s.time = *t;
  }
  if (f.ok() && f.has("candidates")) {
    const auto& cands = f.raw("candidates");
    if (!cands.is_array()) {
      f.fail(f.path("candidates"), "expected an array, got " + type_name(cands));
    } else {
      for (std::size_t i = 0; i < cands.size() && f.ok(); ++i) {
        const std::string where = f.path("candidates") + "[" + std::to_string(i) + "]";
        if (cands[i].is_string()) {
          s.read.alternatives.push_back(cands[i].get<std::string>());
          continue;
        }
        Fields cf(cands[i], where);
        cf.only({"text", "confidence", "country"});
        const std::string text = cf.text("text", true, 64);
        cf.number("confidence", false);
        cf.text("country", false, 8, true);
        if (!cf.ok())
          f.adopt(cf.error());
        else
          s.read.alternatives.push_back(text);
      }
    }
  }
  // Evidence: {"plate": base64 JPEG, "frame": base64 JPEG}, each optional or null.
  if (f.ok() && f.has("images")) {
    Fields im(f.raw("images"), f.path("images"));
    im.only({"plate", "frame"});
    for (const auto& [key, out] : {std::pair{"plate", &s.plate_jpeg}, std::pair{"frame", &s.frame_jpeg}}) {
      if (!im.has(key)) continue;
      const json& v = im.raw(key);
      if (!v.is_string()) {
        im.fail(im.path(key), "expected a base64 JPEG string, got " + type_name(v));
        break;
      }
      const auto& text = v.get_ref<const std::string&>();
      if (text.size() / 4 * 3 > image_max + 3) {
        im.fail(im.path(key), "about " + std::to_string(text.size() / 4 * 3) + " bytes, over the limit of " +
                                  std::to_string(image_max) + " per image");
        break;
      }
      auto bytes = base64_decode(text);
      if (!bytes) {
        im.fail(im.path(key), "not base64 (standard alphabet, = padding, no line breaks)");
        break;
      }
      if (bytes->size() > image_max) {
        im.fail(im.path(key), std::to_string(bytes->size()) + " bytes, over the limit of " +
                                  std::to_string(image_max) + " per image");
        break;
      }
      if (bytes->size() < 4 || bytes->compare(0, 3, "\xFF\xD8\xFF") != 0) {
        im.fail(im.path(key), "not a JPEG image");
        break;
      }
      *out = std::move(*bytes);
    }
    if (!im.ok()) f.adopt(im.error());
  }
  if (!f.ok()) {
    error = f.error();
    return std::nullopt;
  }
  if (j.contains("images")) {
    json kept = j;  // the images are stored apart; the audit copy stays small
    kept.erase("images");
    s.event_json = dump(kept);
  } else {
    s.event_json = dump(j);
  }
  return s;
}

// The batch index a registry message starts with ("sightings[3].text: ..."), if any.
std::optional<std::size_t> item_of(const std::string& message) {
  static const std::string kPrefix = "sightings[";
  if (message.rfind(kPrefix, 0) != 0) return std::nullopt;
  std::size_t v = 0;
  const char* begin = message.data() + kPrefix.size();
  const auto [end, ec] = std::from_chars(begin, message.data() + message.size(), v);
  if (ec != std::errc{} || end == begin || *end != ']') return std::nullopt;
  return v;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------

struct Server::Impl {
  std::shared_ptr<Registry> reg;
  ServerOptions opt;
  httplib::Server http;
  server::Metrics metrics;
  std::thread thread;
  std::mutex mutex;
  int port = 0;
  bool started = false;

  using Handler = std::function<void(Call&)>;

  const TimeZone& zone() const { return reg->options().catalog.zone; }

  void add(const std::string& method, const std::string& pattern, const std::string& route, Roles roles,
           Handler handler) {
    auto wrapped = [this, route, roles = std::move(roles), handler = std::move(handler)](
                       const httplib::Request& req, httplib::Response& res) {
      const auto t0 = std::chrono::steady_clock::now();
      Call c{req, res, route, {}};
      if (authorize(c, roles)) handler(c);
      metrics.request(route, res.status,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    };
    if (method == "GET")
      http.Get(pattern, wrapped);
    else if (method == "POST")
      http.Post(pattern, wrapped);
    else if (method == "DELETE")
      http.Delete(pattern, wrapped);
  }

  bool authorize(Call& c, const Roles& roles) {
    if (roles.empty()) return true;
    if (!authenticate(c)) return false;
    if (std::find(roles.begin(), roles.end(), c.token.role) == roles.end()) {
      c.error(403,
              std::string(c.token.role == Role::kOperator || c.token.role == Role::kAdmin ? "an " : "a ") +
                  to_string(c.token.role) + " token may not call " + c.route + " (needs " +
                  roles_text(roles) + ")");
      return false;
    }
    return true;
  }

  // The largest body a request to `path` may carry (bytes).
  std::size_t body_limit(const std::string& path) const {
    if (path == "/api/sightings") return opt.sightings_max_bytes;
    if (path == "/api/vignettes/import") return opt.import_max_bytes;
    return opt.body_max_bytes;
  }

  // Runs when a request's headers are in and before its body is read: a body is read only from a client
  // with a valid token, of a size the route takes, sent with Content-Length (a chunked body has no size
  // to check first). Every route that takes a body needs a token. A refused request's connection is
  // closed: its body is never read.
  httplib::Server::HandlerResponse before_body(const httplib::Request& req, httplib::Response& res) {
    const bool chunked =
        lower(req.get_header_value("Transfer-Encoding")).find("chunked") != std::string::npos;
    const std::string length_text = req.get_header_value("Content-Length");
    const auto length = parse_int(length_text);
    if (!chunked && (length_text.empty() || (length && *length == 0)))
      return httplib::Server::HandlerResponse::Unhandled;
    Call c{req, res, req.method + " " + req.path, {}};
    const auto t0 = std::chrono::steady_clock::now();
    bool refused = true;
    if (chunked) {
      c.error(411, "chunked request bodies are not accepted: send the body with a Content-Length header");
    } else if (!length || *length < 0) {
      c.error(400, "Content-Length '" + length_text.substr(0, 40) + "' is not a number of bytes");
    } else if (std::size_t(*length) > body_limit(req.path)) {
      c.error(413, "request body of " + std::to_string(*length) + " bytes is over the limit of " +
                       std::to_string(body_limit(req.path)));
    } else {
      refused = !authenticate(c);
    }
    if (!refused) return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("Connection", "close");
    metrics.request("before the body", res.status,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return httplib::Server::HandlerResponse::Handled;
  }

  // Sets c.token from the request's bearer token, or answers 401.
  bool authenticate(Call& c) {
    const std::string header = c.req.get_header_value("Authorization");
    if (header.empty()) {
      c.res.set_header("WWW-Authenticate", "Bearer realm=\"vigil\"");
      c.error(401, "missing token: send the header 'Authorization: Bearer <token>'");
      return false;
    }
    if (header.size() < 7 || lower(header.substr(0, 7)) != "bearer ") {
      c.res.set_header("WWW-Authenticate", "Bearer realm=\"vigil\"");
      c.error(401, "the Authorization header must be 'Bearer <token>'");
      return false;
    }
    auto token = reg->authenticate(header.substr(7));
    if (!c.check(token)) return false;
    if (!*token) {
      c.res.set_header("WWW-Authenticate", "Bearer realm=\"vigil\", error=\"invalid_token\"");
      c.error(401, "unknown or revoked token");
      return false;
    }
    c.token = **token;
    return true;
  }

  void routes() {
    add("GET", "/", "GET /", kPublic, [this](Call& c) { dashboard_file(c, "index.html"); });
    add("GET", R"(/ui/([^/]+))", "GET /ui/{file}", kPublic,
        [this](Call& c) { dashboard_file(c, c.req.matches[1].str()); });
    add("GET", "/api/me", "GET /api/me", kAnyToken, [](Call& c) {
      if (c.params_only({})) c.reply(200, token_json(c.token));
    });
    add("GET", "/health", "GET /health", kPublic, [this](Call& c) {
      auto v = reg->schema_version();
      if (!v) {
        c.reply(503, {{"status", "unavailable"}, {"error", v.error()}});
        return;
      }
      c.reply(200, {{"status", "ok"}, {"schema_version", *v}, {"version", version()}});
    });
    add("GET", "/metrics", "GET /metrics", kReaders, [this](Call& c) {
      c.res.status = 200;
      c.res.set_content(metrics.render(), "text/plain; version=0.0.4");
    });

    add("POST", "/api/sightings", "POST /api/sightings", kCameras, [this](Call& c) { post_sightings(c); });
    add("GET", "/api/sightings", "GET /api/sightings", kReaders,
        [this](Call& c) { list(c, std::nullopt, "sightings", true); });
    add("GET", R"(/api/sightings/([^/]+))", "GET /api/sightings/{id}", kReaders, [this](Call& c) {
      if (!c.params_only({})) return;
      auto id = c.path_id();
      if (!id) return;
      auto s = reg->sighting(*id);
      if (c.check(s)) c.reply(200, sighting_json(*s));
    });
    // Evidence images: personal data, for operators and admins only, like the sightings themselves.
    for (const std::string kind : {"plate", "frame"})
      add("GET", R"(/api/sightings/([^/]+)/)" + kind + R"(\.jpg)", "GET /api/sightings/{id}/" + kind + ".jpg",
          kReaders, [this, kind](Call& c) {
            if (!c.params_only({})) return;
            auto id = c.path_id();
            if (!id) return;
            auto jpeg = reg->sighting_image(*id, kind);
            if (!c.check(jpeg)) return;
            c.res.status = 200;
            c.res.set_header("Cache-Control", "private, max-age=86400");
            c.res.set_content(*jpeg, "image/jpeg");
          });

    add("GET", R"(/api/plates/([^/]+)/status)", "GET /api/plates/{plate}/status", kReaders, [this](Call& c) {
      if (!c.params_only({"at"})) return;
      auto plate = clean_plate(c.req.matches[1].str());
      if (!plate) return c.error(400, plate.error());
      Timestamp at = reg->now();
      if (c.req.has_param("at")) {
        auto t = parse_timestamp(c.req.get_param_value("at"));
        if (!t) return c.error(400, "at: " + t.error());
        at = *t;
      }
      auto d = reg->decide({*plate, 1.0f, "", std::nullopt, {}}, at);
      if (!c.check(d)) return;
      json j = {{"plate", *plate},
                {"at", format_timestamp(at)},
                {"decision", to_string(d->verdict)},
                {"reason", d->reason},
                {"record", nullptr}};
      if (d->record_id) {
        auto r = reg->record(d->record_id);
        if (!c.check(r)) return;
        j["record"] = record_json(*r, zone());
      }
      c.reply(200, j);
    });
    add("GET", R"(/api/plates/([^/]+)/history)", "GET /api/plates/{plate}/history", kReaders,
        [this](Call& c) {
          SightingQuery q;
          if (!read_query(c, q)) return;
          auto plate = clean_plate(c.req.matches[1].str());
          if (!plate) return c.error(400, plate.error());
          q.plate = *plate;
          auto records = reg->records_for_plate(*plate);
          if (!c.check(records)) return;
          auto seen = reg->sightings(q);
          if (!c.check(seen)) return;
          json j = {{"plate", *plate}, {"records", json::array()}, {"sightings", json::array()}};
          for (const auto& r : *records) j["records"].push_back(record_json(r, zone()));
          for (const auto& s : *seen) j["sightings"].push_back(sighting_json(s));
          c.reply(200, j);
        });

    add("POST", "/api/vignettes", "POST /api/vignettes", kSellers, [this](Call& c) { post_vignette(c); });
    add("GET", "/api/vignettes", "GET /api/vignettes", kLookups, [this](Call& c) {
      if (!c.params_only({"plate"})) return;
      if (!c.req.has_param("plate")) return c.error(400, "plate: required (/api/vignettes?plate=1AB2345)");
      auto plate = clean_plate(c.req.get_param_value("plate"));
      if (!plate) return c.error(400, plate.error());
      auto records = reg->records_for_plate(*plate);
      if (!c.check(records)) return;
      json j = {{"plate", *plate}, {"vignettes", json::array()}};
      for (const auto& r : *records)
        if (r.kind == RecordKind::kVignette) j["vignettes"].push_back(record_json(r, zone()));
      c.reply(200, j);
    });
    add("GET", "/api/products", "GET /api/products", kLookups, [this](Call& c) {
      if (!c.params_only({})) return;
      json j = {{"time_zone", zone().name()},
                {"today", format_day(zone().local_day(reg->now()))},
                {"products", json::array()}};
      for (const auto& p : reg->options().catalog.products)
        j["products"].push_back({{"id", p.id}, {"name", p.name}, {"days", p.days}});
      c.reply(200, j);
    });
    add("GET", R"(/api/vignettes/([^/]+))", "GET /api/vignettes/{id}",
        {Role::kShop, Role::kOperator, Role::kAdmin}, [this](Call& c) {
          if (!c.params_only({})) return;
          auto id = c.path_id();
          if (!id) return;
          auto r = reg->record(*id);
          if (r && r->kind != RecordKind::kVignette)
            return c.error(404, "no vignette #" + std::to_string(*id));
          if (c.check(r)) c.reply(200, record_json(*r, zone()));
        });
    add("DELETE", R"(/api/vignettes/([^/]+))", "DELETE /api/vignettes/{id}", kSellers,
        [this](Call& c) { refund(c, RecordKind::kVignette); });
    add("POST", "/api/vignettes/import", "POST /api/vignettes/import", kSellers,
        [this](Call& c) { import(c); });
    add("POST", "/api/exemptions", "POST /api/exemptions", kAdmins, [this](Call& c) { post_exemption(c); });
    add("DELETE", R"(/api/exemptions/([^/]+))", "DELETE /api/exemptions/{id}", kAdmins,
        [this](Call& c) { refund(c, RecordKind::kExemption); });

    add("GET", "/api/violations", "GET /api/violations", kReaders,
        [this](Call& c) { list(c, Outcome::kUnpaid, "violations"); });
    add("GET", "/api/review", "GET /api/review", kReaders,
        [this](Call& c) { list(c, Outcome::kReview, "review"); });
    add("POST", R"(/api/review/([^/]+)/resolve)", "POST /api/review/{id}/resolve", kReaders,
        [this](Call& c) { resolve(c); });

    add("GET", "/api/tokens", "GET /api/tokens", kAdmins, [this](Call& c) {
      if (!c.params_only({})) return;
      auto t = reg->tokens();
      if (!c.check(t)) return;
      json j = {{"tokens", json::array()}};
      for (const auto& x : *t) j["tokens"].push_back(token_json(x));
      c.reply(200, j);
    });
    add("POST", "/api/tokens", "POST /api/tokens", kAdmins, [this](Call& c) {
      auto body = c.body(opt.body_max_bytes);
      if (!body) return;
      Fields f(*body, "");
      f.only({"role", "camera", "note"});
      const std::string role_text = f.text("role", true, 16);
      const std::string camera = f.text("camera", false, 64, true);
      const std::string note = f.text("note", false, 200);
      if (!f.ok()) return c.error(400, f.error());
      const auto role = parse_role(role_text);
      if (!role) return c.error(400, "role: '" + role_text + "' unknown (camera, shop, operator, admin)");
      auto t = reg->create_token(*role, camera, note);
      if (!c.check(t)) return;
      json j = token_json(t->info);
      j["token"] = t->token;
      c.reply(201, j);
    });
    add("DELETE", R"(/api/tokens/([^/]+))", "DELETE /api/tokens/{id}", kAdmins, [this](Call& c) {
      auto id = c.path_id();
      if (!id) return;
      auto t = reg->revoke_token(*id);
      if (c.check(t)) c.reply(200, token_json(*t));
    });
    add("GET", "/api/cameras", "GET /api/cameras", kReaders, [this](Call& c) {
      if (!c.params_only({})) return;
      auto cams = reg->cameras();
      if (!c.check(cams)) return;
      json j = {{"cameras", json::array()}};
      for (const auto& x : *cams)
        j["cameras"].push_back({{"id", x.id}, {"name", x.name}, {"created", format_timestamp(x.created)}});
      c.reply(200, j);
    });
    add("POST", "/api/cameras", "POST /api/cameras", kAdmins, [this](Call& c) {
      auto body = c.body(opt.body_max_bytes);
      if (!body) return;
      Fields f(*body, "");
      f.only({"id", "name"});
      const std::string id = f.text("id", true, 64);
      const std::string name = f.text("name", false, 200);
      if (!f.ok()) return c.error(400, f.error());
      auto cam = reg->add_camera(id, name);
      if (c.check(cam))
        c.reply(200, {{"id", cam->id}, {"name", cam->name}, {"created", format_timestamp(cam->created)}});
    });
  }

  // The dashboard: files straight from web_dir (no sub-folders), only of the types below. The name is
  // checked and the file's real path must lie in web_dir, so no request reaches a file outside it.
  void dashboard_file(Call& c, const std::string& name) {
    namespace fs = std::filesystem;
    if (opt.web_dir.empty())
      return c.error(404,
                     "this server has no dashboard (its web files were not found; start it with "
                     "vigil serve --web-dir DIR)");
    static const std::vector<std::pair<std::string, std::string>> kTypes = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"}};
    const auto named_ok =
        !name.empty() && name.size() <= 64 && std::isalnum(static_cast<unsigned char>(name[0])) &&
        std::all_of(name.begin(), name.end(), [](char ch) {
          return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' || ch == '_';
        });
    const std::string ext = fs::path(name).extension().string();
    const auto type =
        std::find_if(kTypes.begin(), kTypes.end(), [&](const auto& t) { return t.first == ext; });
    std::error_code ec;
    const fs::path root = fs::canonical(opt.web_dir, ec);
    fs::path file;
    if (named_ok && type != kTypes.end() && !ec) file = fs::canonical(root / name, ec);
    if (file.empty() || ec || file.parent_path() != root || !fs::is_regular_file(file, ec))
      return c.error(404, "no dashboard file '" + name.substr(0, 64) + "'");
    std::ifstream in(file, std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) return c.error(500, "cannot read dashboard file " + name);
    c.res.status = 200;
    c.res.set_header("Content-Security-Policy",
                     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
                     "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    c.res.set_header("Referrer-Policy", "no-referrer");
    c.res.set_header("X-Frame-Options", "DENY");
    c.res.set_header("Cache-Control", "no-cache");
    c.res.set_content(content, type->second);
  }

  // A batch is stored whole or not at all. A refusal caused by one item names it ({"error", "index", "id"}),
  // so that a client can set that item aside and send the rest again.
  void post_sightings(Call& c) {
    auto body = c.body(opt.sightings_max_bytes);
    if (!body) return metrics.batch_rejected();
    Fields f(*body, "");
    f.only({"sightings"});
    if (f.ok() && !f.has("sightings")) f.fail("sightings", "required (an array of events)");
    if (f.ok() && !f.raw("sightings").is_array())
      f.fail("sightings", "expected an array, got " + type_name(f.raw("sightings")));
    if (!f.ok()) {
      metrics.batch_rejected();
      return c.error(400, f.error());
    }
    const auto& items = f.raw("sightings");
    if (items.size() > opt.batch_max) {
      metrics.batch_rejected();
      return c.error(413, "batch of " + std::to_string(items.size()) + " sightings; at most " +
                              std::to_string(opt.batch_max) + " per request");
    }
    auto item_error = [&](int status, const std::string& message, std::size_t i) {
      metrics.batch_rejected();
      json j = {{"error", message}, {"index", i}, {"id", nullptr}};
      if (items[i].is_object() && items[i].contains("id") && items[i]["id"].is_string())
        j["id"] = items[i]["id"];
      c.reply(status, j);
    };
    std::vector<Sighting> batch;
    for (std::size_t i = 0; i < items.size(); ++i) {
      std::string error;
      auto s = parse_sighting(items[i], "sightings[" + std::to_string(i) + "]", opt.image_max_bytes, error);
      if (!s) return item_error(400, error, i);
      if (s->camera_id != c.token.camera_id)
        return item_error(403,
                          "sightings[" + std::to_string(i) + "].camera_id: '" + s->camera_id +
                              "' is not this token's camera (" + c.token.camera_id + ")",
                          i);
      batch.push_back(std::move(*s));
    }
    auto results = reg->ingest(batch);
    if (!results) {
      const auto& e = results.error_detail();
      const auto i = item_of(e.message);
      if ((e.failure == Failure::kInvalid || e.failure == Failure::kConflict) && i && *i < items.size())
        return item_error(http_status(e.failure), e.message, *i);
      metrics.batch_rejected();
      return c.failed(e);
    }
    json out = {{"results", json::array()}, {"stored", 0}, {"duplicates", 0}};
    int stored = 0, duplicates = 0;
    for (const auto& r : *results) {
      metrics.sighting(r.duplicate, r.stored.decision.verdict);
      (r.duplicate ? duplicates : stored) += 1;
      out["results"].push_back({{"id", r.stored.sighting.event_id},
                                {"sighting_id", r.stored.id},
                                {"decision", to_string(r.stored.decision.verdict)},
                                {"outcome", to_string(r.stored.outcome)},
                                {"reason", r.stored.decision.reason},
                                {"duplicate", r.duplicate}});
    }
    out["stored"] = stored;
    out["duplicates"] = duplicates;
    c.reply(200, out);
  }

  void post_vignette(Call& c) {
    if (!c.params_only({})) return;
    auto body = c.body(opt.body_max_bytes);
    if (!body) return;
    Fields f(*body, "");
    f.only({"plate", "country", "product", "start", "vehicle_category", "order_id", "note"});
    VignetteOrder o;
    o.plate = f.text("plate", true, 64);
    o.country = f.text("country", true, 8);
    o.product = f.text("product", true, 64);
    const std::string start = f.text("start", true, 32);
    o.vehicle_category = f.text("vehicle_category", false, 32, true);
    o.order_id = f.text("order_id", false, 128, true);
    o.note = f.text("note", false, 1000, true);
    if (!f.ok()) return c.error(400, f.error());
    auto day = parse_day(start);
    if (!day) return c.error(400, "start: " + day.error());
    o.start = *day;
    auto added = reg->add_vignette(o);
    if (c.check(added)) c.reply(added->created ? 201 : 200, record_json(added->record, zone()));
  }

  void post_exemption(Call& c) {
    if (!c.params_only({})) return;
    auto body = c.body(opt.body_max_bytes);
    if (!body) return;
    Fields f(*body, "");
    f.only({"plate", "country", "reason", "from", "until", "order_id", "note"});
    ExemptionRequest q;
    q.plate = f.text("plate", true, 64);
    q.country = f.text("country", true, 8);
    q.reason = f.text("reason", true, 64);
    const std::string from = f.text("from", false, 32, true), until = f.text("until", false, 32, true);
    q.order_id = f.text("order_id", false, 128, true);
    q.note = f.text("note", false, 1000, true);
    if (!f.ok()) return c.error(400, f.error());
    q.from = zone().local_day(reg->now());
    if (!from.empty()) {
      auto d = parse_day(from);
      if (!d) return c.error(400, "from: " + d.error());
      q.from = *d;
    }
    if (!until.empty()) {
      auto d = parse_day(until);
      if (!d) return c.error(400, "until: " + d.error());
      q.until = *d;
    }
    auto added = reg->add_exemption(q);
    if (c.check(added)) c.reply(added->created ? 201 : 200, record_json(added->record, zone()));
  }

  void refund(Call& c, RecordKind kind) {
    if (!c.params_only({})) return;
    auto id = c.path_id();
    if (!id) return;
    auto r = reg->refund(*id, kind);
    if (c.check(r)) c.reply(200, record_json(*r, zone()));
  }

  void import(Call& c) {
    if (!c.params_only({"mode"})) return;
    const std::string mode = c.req.has_param("mode") ? c.req.get_param_value("mode") : "all";
    if (mode != "all" && mode != "valid")
      return c.error(
          400, "mode: '" + mode + "' unknown (all: nothing unless every row is good; valid: the good rows)");
    if (c.req.body.size() > opt.import_max_bytes)
      return c.error(413, "CSV of " + std::to_string(c.req.body.size()) + " bytes is over the limit of " +
                              std::to_string(opt.import_max_bytes));
    const std::string type = lower(c.req.get_header_value("Content-Type"));
    if (type.rfind("text/csv", 0) != 0 && type.rfind("text/plain", 0) != 0)
      return c.error(415, "Content-Type must be text/csv" + (type.empty() ? std::string() : ", not " + type));
    auto report =
        reg->import_csv(c.req.body, mode == "all" ? ImportMode::kAllOrNothing : ImportMode::kValidRows);
    if (!c.check(report)) return;
    json j = {{"imported", report->imported},
              {"existing", report->existing},
              {"committed", report->committed},
              {"errors", json::array()}};
    for (const auto& e : report->errors) j["errors"].push_back({{"line", e.line}, {"message", e.message}});
    c.reply(report->committed ? 200 : 422, j);
  }

  // A page of sightings; a full page names the cursor of the next one in its order.
  void list(Call& c, std::optional<Outcome> outcome, const char* key, bool newest = false) {
    SightingQuery q;
    if (!read_query(c, q, newest)) return;
    q.outcome = outcome;
    auto rows = reg->sightings(q);
    if (!c.check(rows)) return;
    json j = {{key, json::array()}, {"next_after_id", nullptr}, {"next_before_id", nullptr}};
    for (const auto& s : *rows) j[key].push_back(sighting_json(s));
    if (static_cast<int>(rows->size()) == q.limit)
      j[q.newest_first ? "next_before_id" : "next_after_id"] = rows->back().id;
    c.reply(200, j);
  }

  void resolve(Call& c) {
    if (!c.params_only({})) return;
    auto id = c.path_id();
    if (!id) return;
    auto body = c.body(opt.body_max_bytes);
    if (!body) return;
    Fields f(*body, "");
    f.only({"action", "plate", "note"});
    Resolution r;
    r.action = f.text("action", true, 32);
    r.plate = f.text("plate", false, 64, true);
    r.note = f.text("note", false, 1000, true);
    if (!f.ok()) return c.error(400, f.error());
    r.by = c.token.id;
    auto s = reg->resolve(*id, r);
    if (c.check(s)) c.reply(200, sighting_json(*s));
  }
};

Server::Server(std::shared_ptr<Registry> registry, ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->reg = std::move(registry);
  impl_->opt = std::move(options);
}

Server::Server(Server&&) noexcept = default;
Server& Server::operator=(Server&& other) noexcept {
  if (this != &other) {
    if (impl_) stop();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
Server::~Server() {
  if (impl_) stop();
}

Result<int> Server::start() {
  auto& m = *impl_;
  std::lock_guard lock(m.mutex);
  if (m.started) return m.port;
  const int threads = std::max(1, m.opt.threads);
  m.http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  m.http.set_payload_max_length(
      std::max({m.opt.body_max_bytes, m.opt.import_max_bytes, m.opt.sightings_max_bytes}));
  m.http.set_read_timeout(m.opt.read_timeout_s, 0);
  m.http.set_write_timeout(m.opt.read_timeout_s, 0);
  // An idle keep-alive connection holds a worker thread: keep it short so many cameras, each posting
  // now and then, share the pool; and let a busy client reuse its connection for many requests.
  m.http.set_keep_alive_timeout(1);
  m.http.set_keep_alive_max_count(1000);
  // Headers and body go out in separate writes; with Nagle's algorithm the second waits for the
  // client's delayed ACK (40 ms on Linux) on every response.
  m.http.set_tcp_nodelay(true);
  m.http.set_pre_routing_handler(
      [&m](const httplib::Request& req, httplib::Response& res) { return m.before_body(req, res); });
  // Browsers must take every answer as the type it names (the dashboard's scripts, JSON never as HTML).
  m.http.set_default_headers({{"X-Content-Type-Options", "nosniff"}});
  // cpp-httplib's default also sets SO_REUSEPORT, which lets a second server bind the same port and
  // silently take half of the requests; a port in use must be an error instead.
  m.http.set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  m.http.set_error_handler(
      httplib::Server::HandlerWithResponse([&m](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string message = status_text(res.status);
        if (res.status == 404 || (res.status == 400 && !req.method.empty() && req.method != "GET" &&
                                  req.method != "POST" && req.method != "DELETE"))
          message = "no endpoint " + req.method + " " + req.path;
        if (res.status == 413)
          message = "request body over the limit of " +
                    std::to_string(
                        std::max({m.opt.body_max_bytes, m.opt.import_max_bytes, m.opt.sightings_max_bytes})) +
                    " bytes";
        res.set_content(dump(json{{"error", message}}), "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }));
  m.http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    vigil::log(LogLevel::kError, "request failed: " + what);
    res.status = 500;
    res.set_content(dump(json{{"error", "internal error: " + what}}), "application/json");
  });
  m.routes();
  const int port = m.opt.port == 0 ? m.http.bind_to_any_port(m.opt.bind)
                                   : (m.http.bind_to_port(m.opt.bind, m.opt.port) ? m.opt.port : -1);
  if (port <= 0)
    return Error{"cannot listen on " + m.opt.bind + ":" + std::to_string(m.opt.port) +
                 ": address in use or not available (try --port 0 for any free port)"};
  m.port = port;
  m.thread = std::thread([&m] { m.http.listen_after_bind(); });
  // stop() before the loop runs would be lost; wait until it does.
  for (int i = 0; i < 2000 && !m.http.is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  m.started = true;
  vigil::log(LogLevel::kDebug, "serving " + url() + " (" + m.reg->describe() + ")");
  return port;
}

void Server::stop() {
  auto& m = *impl_;
  std::lock_guard lock(m.mutex);
  if (!m.started) return;
  m.http.stop();
  if (m.thread.joinable()) m.thread.join();
  m.started = false;
}

int Server::port() const { return impl_->port; }

std::string Server::url() const {
  const std::string host = impl_->opt.bind == "0.0.0.0" ? "127.0.0.1" : impl_->opt.bind;
  return "http://" + host + ":" + std::to_string(impl_->port);
}

}  // namespace vigil
