// Timestamps, days and time zones. libstdc++ 12 has the C++20 calendar but not the tz database
// (std::chrono::locate_zone arrived in GCC 14), so the TZif files are read here; the process-wide TZ
// variable is never touched because the server decides on many threads at once.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "vigil/registry.hpp"

namespace vigil {

using namespace std::chrono;

const Timestamp kForever = time_point_cast<milliseconds>(sys_days{year{9999} / 12 / 31});

namespace {

// Reads exactly n digits at pos; -1 when they are not there.
int digits(std::string_view s, std::size_t pos, int n) {
  if (pos + n > s.size()) return -1;
  int v = 0;
  for (int i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

// 'text' for messages, cut at 40 characters. (Built by appending: GCC 12 warns falsely on "'" + s.)
std::string quote(std::string_view text) {
  std::string q(1, '\'');
  q.append(text.substr(0, 40));
  q += '\'';
  return q;
}

std::string two(int v) {
  char b[8];
  std::snprintf(b, sizeof b, "%02d", v);
  return b;
}

std::string clock_text(sys_time<milliseconds> local_as_sys) {
  const auto day = floor<days>(local_as_sys);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> hms{local_as_sys - day};
  std::string s = format_day(ymd) + "T" + two(static_cast<int>(hms.hours().count())) + ":" +
                  two(static_cast<int>(hms.minutes().count())) + ":" +
                  two(static_cast<int>(hms.seconds().count()));
  if (const auto ms = hms.subseconds().count(); ms != 0) {
    char b[8];
    std::snprintf(b, sizeof b, ".%03d", static_cast<int>(ms));
    s += b;
  }
  return s;
}

}  // namespace

Result<Day> parse_day(std::string_view text) {
  const std::string quoted = quote(text);
  const int y = digits(text, 0, 4), m = digits(text, 5, 2), d = digits(text, 8, 2);
  if (text.size() != 10 || y < 0 || m < 0 || d < 0 || text[4] != '-' || text[7] != '-')
    return Error{"day " + quoted + ": expected YYYY-MM-DD"};
  const Day day{year{y}, month{static_cast<unsigned>(m)}, std::chrono::day{static_cast<unsigned>(d)}};
  if (!day.ok()) return Error{"day " + quoted + ": no such date"};
  return day;
}

std::string format_day(Day day) {
  char b[16];
  std::snprintf(b, sizeof b, "%04d-%02u-%02u", static_cast<int>(day.year()),
                static_cast<unsigned>(day.month()), static_cast<unsigned>(day.day()));
  return b;
}

Result<Timestamp> parse_timestamp(std::string_view text) {
  const std::string quoted = quote(text);
  auto fail = [&](const std::string& why) { return Error{"time " + quoted + ": " + why}; };
  if (text.size() < 20) return fail("expected a time like 2024-05-01T12:34:56Z");
  auto day = parse_day(text.substr(0, 10));
  if (!day) return fail("expected a time like 2024-05-01T12:34:56Z");
  if (text[10] != 'T' && text[10] != 't' && text[10] != ' ') return fail("expected 'T' after the date");
  const int hh = digits(text, 11, 2), mm = digits(text, 14, 2), ss = digits(text, 17, 2);
  if (hh < 0 || mm < 0 || ss < 0 || text[13] != ':' || text[16] != ':')
    return fail("expected hh:mm:ss after the date");
  if (hh > 23 || mm > 59 || ss > 60) return fail("hour, minute or second out of range");
  std::size_t pos = 19;
  long long ms = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int n = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      if (n < 3) ms = ms * 10 + (text[pos] - '0');
      ++n;
      ++pos;
    }
    if (n == 0) return fail("expected digits after '.'");
    for (int i = n; i < 3; ++i) ms *= 10;
  }
  long long offset_s = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int oh = digits(text, pos + 1, 2), om = digits(text, pos + 4, 2);
    if (oh < 0 || om < 0 || text[pos + 3] != ':' || oh > 23 || om > 59)
      return fail("expected an offset like +02:00");
    offset_s = (text[pos] == '-' ? -1 : 1) * (oh * 3600LL + om * 60LL);
    pos += 6;
  } else {
    return fail("expected 'Z' or an offset like +02:00 after the time");
  }
  if (pos != text.size()) return fail("unexpected text after the time");
  // A leap second (:60) is read as the first instant after it, as POSIX time has no room for it.
  const auto t =
      sys_days{*day} + hours{hh} + minutes{mm} + seconds{ss} + milliseconds{ms} - seconds{offset_s};
  return time_point_cast<milliseconds>(t);
}

std::string format_timestamp(Timestamp t) { return clock_text(t) + "Z"; }

// ---------------------------------------------------------------------------------------------------------
// Time zones

namespace {

// A POSIX TZ rule: "CET-1CEST,M3.5.0,M10.5.0/3".
struct PosixRule {
  long long std_offset = 0;  // seconds east of UTC
  bool has_dst = false;
  long long dst_offset = 0;
  struct When {
    char kind = 'M';  // 'M' month.week.weekday, 'J' Julian day 1..365 without Feb 29, 'D' zero-based day
    int month = 0, week = 0, weekday = 0, day = 0;
    long long time = 7200;  // seconds after local midnight (may be negative or > 24 h)
  } start, end;
};

class RuleParser {
 public:
  explicit RuleParser(std::string_view s) : s_(s) {}

  bool parse(PosixRule& r) {
    if (!name() || !offset(r.std_offset)) return false;
    r.std_offset = -r.std_offset;  // POSIX offsets are west-positive
    if (at_end()) return true;
    if (!name()) return false;
    r.has_dst = true;
    r.dst_offset = r.std_offset + 3600;
    if (!at_end() && s_[pos_] != ',') {
      if (!offset(r.dst_offset)) return false;
      r.dst_offset = -r.dst_offset;
    }
    // Without a rule POSIX leaves the dates to the implementation; the US rule is the usual default.
    if (at_end()) {
      r.start = {'M', 3, 2, 0, 0, 7200};
      r.end = {'M', 11, 1, 0, 0, 7200};
      return true;
    }
    if (s_[pos_++] != ',' || !when(r.start) || at_end() || s_[pos_++] != ',' || !when(r.end)) return false;
    return at_end();
  }

 private:
  bool at_end() const { return pos_ >= s_.size(); }

  bool name() {
    if (!at_end() && s_[pos_] == '<') {
      const auto close = s_.find('>', pos_);
      if (close == std::string_view::npos) return false;
      pos_ = close + 1;
      return true;
    }
    const auto start = pos_;
    while (!at_end() && std::isalpha(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    return pos_ - start >= 3;
  }

  bool number(int& v) {
    const auto start = pos_;
    v = 0;
    while (!at_end() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) v = v * 10 + (s_[pos_++] - '0');
    return pos_ > start;
  }

  // [+-]hh[:mm[:ss]] in seconds (sign as written).
  bool offset(long long& out) {
    int sign = 1;
    if (!at_end() && (s_[pos_] == '+' || s_[pos_] == '-')) sign = s_[pos_++] == '-' ? -1 : 1;
    int h = 0, m = 0, sec = 0;
    if (!number(h)) return false;
    if (!at_end() && s_[pos_] == ':') {
      ++pos_;
      if (!number(m)) return false;
      if (!at_end() && s_[pos_] == ':') {
        ++pos_;
        if (!number(sec)) return false;
      }
    }
    out = sign * (h * 3600LL + m * 60LL + sec);
    return true;
  }

  bool when(PosixRule::When& w) {
    if (at_end()) return false;
    if (s_[pos_] == 'M') {
      ++pos_;
      w.kind = 'M';
      if (!number(w.month) || at_end() || s_[pos_++] != '.' || !number(w.week) || at_end() ||
          s_[pos_++] != '.' || !number(w.weekday))
        return false;
      if (w.month < 1 || w.month > 12 || w.week < 1 || w.week > 5 || w.weekday > 6) return false;
    } else if (s_[pos_] == 'J') {
      ++pos_;
      w.kind = 'J';
      if (!number(w.day) || w.day < 1 || w.day > 365) return false;
    } else {
      w.kind = 'D';
      if (!number(w.day) || w.day > 365) return false;
    }
    w.time = 7200;
    if (!at_end() && s_[pos_] == '/') {
      ++pos_;
      if (!offset(w.time)) return false;
    }
    return true;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

// Local midnight (as seconds since the epoch, "local epoch") of the rule's day in year y.
long long rule_day(const PosixRule::When& w, int y) {
  const year yy{y};
  sys_days d;
  if (w.kind == 'M') {
    const month m{static_cast<unsigned>(w.month)};
    const weekday wd{static_cast<unsigned>(w.weekday)};
    if (w.week == 5) {
      d = sys_days{yy / m / weekday_last{wd}};
    } else {
      d = sys_days{yy / m / wd[static_cast<unsigned>(w.week)]};
    }
  } else if (w.kind == 'J') {
    d = sys_days{yy / January / 1} + days{w.day - 1};
    if (yy.is_leap() && w.day >= 60) d += days{1};
  } else {
    d = sys_days{yy / January / 1} + days{w.day};
  }
  return d.time_since_epoch().count() * 86400LL;
}

}  // namespace

struct TimeZone::Data {
  std::string name;
  std::vector<long long> transitions;  // UTC seconds, ascending
  std::vector<int> transition_types;   // index into offsets, per transition
  std::vector<long long> offsets;      // seconds east of UTC, per local time type
  long long initial_offset = 0;        // before the first transition
  std::optional<PosixRule> rule;       // after the last transition (or always, when no table)

  long long offset_at(long long t) const {
    if (!transitions.empty() && t < transitions.front()) return initial_offset;
    if (!transitions.empty() && (t < transitions.back() || !rule)) {
      const auto it = std::upper_bound(transitions.begin(), transitions.end(), t);
      return offsets[transition_types[static_cast<std::size_t>(it - transitions.begin()) - 1]];
    }
    if (!rule) return initial_offset;
    if (!rule->has_dst) return rule->std_offset;
    const int y =
        static_cast<int>(year_month_day{floor<days>(sys_seconds{seconds{t + rule->std_offset}})}.year());
    // The transitions of year y in UTC; DST is on between them (or outside them, south of the equator).
    const long long start = rule_day(rule->start, y) + rule->start.time - rule->std_offset;
    const long long end = rule_day(rule->end, y) + rule->end.time - rule->dst_offset;
    const bool dst = start < end ? (start <= t && t < end) : !(end <= t && t < start);
    return dst ? rule->dst_offset : rule->std_offset;
  }
};

namespace {

Result<std::shared_ptr<TimeZone::Data>> posix_zone(const std::string& name, const std::string& text) {
  PosixRule rule;
  if (!RuleParser(text).parse(rule)) return Error{"time zone rule '" + text + "' is not a POSIX TZ rule"};
  auto d = std::make_shared<TimeZone::Data>();
  d->name = name;
  d->rule = rule;
  d->initial_offset = rule.std_offset;
  return d;
}

long long be(const unsigned char* p, int n) {
  unsigned long long v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  if (n == 4) return static_cast<int32_t>(static_cast<uint32_t>(v));
  return static_cast<long long>(v);
}

// TZif versions 1-4 (RFC 8536); the 64-bit block and footer when present.
Result<std::shared_ptr<TimeZone::Data>> parse_tzif(const std::string& name, const std::string& path,
                                                   const std::string& bytes) {
  auto bad = [&](const std::string& why) { return Error{"time zone file " + path + ": " + why}; };
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  if (n < 44 || bytes.compare(0, 4, "TZif") != 0) return bad("not a TZif file");
  struct Counts {
    long long isut, isstd, leap, time, type, chars;
  };
  auto counts_at = [&](std::size_t at) {
    return Counts{be(p + at + 20, 4), be(p + at + 24, 4), be(p + at + 28, 4),
                  be(p + at + 32, 4), be(p + at + 36, 4), be(p + at + 40, 4)};
  };
  Counts c = counts_at(0);
  const char version = bytes[4];
  std::size_t at = 44;
  int tsize = 4;
  auto block_size = [](const Counts& c, int ts) {
    return c.time * ts + c.time + c.type * 6 + c.chars + c.leap * (ts + 4) + c.isstd + c.isut;
  };
  if (version >= '2') {
    const auto skip = static_cast<std::size_t>(block_size(c, 4));
    if (at + skip + 44 > n || bytes.compare(at + skip, 4, "TZif") != 0) return bad("truncated");
    at += skip;
    c = counts_at(at);
    at += 44;
    tsize = 8;
  }
  if (c.type < 1 || c.time < 0 || at + static_cast<std::size_t>(block_size(c, tsize)) > n)
    return bad("truncated");
  auto d = std::make_shared<TimeZone::Data>();
  d->name = name;
  for (long long i = 0; i < c.time; ++i) d->transitions.push_back(be(p + at + i * tsize, tsize));
  at += static_cast<std::size_t>(c.time * tsize);
  for (long long i = 0; i < c.time; ++i) {
    const int type = p[at + i];
    if (type >= c.type) return bad("transition type out of range");
    d->transition_types.push_back(type);
  }
  at += static_cast<std::size_t>(c.time);
  std::vector<bool> is_dst;
  for (long long i = 0; i < c.type; ++i) {
    d->offsets.push_back(be(p + at + i * 6, 4));
    is_dst.push_back(p[at + i * 6 + 4] != 0);
  }
  at += static_cast<std::size_t>(c.type * 6);
  // RFC 8536: before the first transition, type 0 applies.
  d->initial_offset = d->offsets[0];
  at += static_cast<std::size_t>(c.chars + c.leap * (tsize + 4) + c.isstd + c.isut);
  if (version >= '2' && at < n && bytes[at] == '\n') {
    const auto end = bytes.find('\n', at + 1);
    if (end != std::string::npos && end > at + 1) {
      PosixRule rule;
      const std::string text = bytes.substr(at + 1, end - at - 1);
      if (!RuleParser(text).parse(rule)) return bad("footer '" + text + "' is not a POSIX TZ rule");
      d->rule = rule;
    }
  }
  if (!std::is_sorted(d->transitions.begin(), d->transitions.end())) return bad("transitions out of order");
  return d;
}

}  // namespace

TimeZone::TimeZone() : data_(posix_zone("UTC", "UTC0").value()) {}

TimeZone::TimeZone(std::shared_ptr<const Data> data) : data_(std::move(data)) {}

Result<TimeZone> TimeZone::from_posix(const std::string& name, const std::string& rule) {
  auto d = posix_zone(name, rule);
  if (!d) return Error{d.error()};
  return TimeZone(std::shared_ptr<const Data>(std::move(*d)));
}

Result<TimeZone> TimeZone::load(const std::string& name, const std::string& zoneinfo_dir) {
  // Names are paths below the tz directory; refuse anything that could leave it.
  if (name.empty() || name.front() == '/' || name.find("..") != std::string::npos ||
      name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") !=
          std::string::npos)
    return Error{"time zone '" + name + "' is not a tz database name like Europe/Prague"};
  std::string dir = zoneinfo_dir;
  if (dir.empty()) {
    const char* env = std::getenv("TZDIR");
    dir = env && *env ? env : "/usr/share/zoneinfo";
  }
  const std::string path = dir + "/" + name;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (name == "Europe/Prague") return from_posix(name, "CET-1CEST,M3.5.0,M10.5.0/3");
    if (name == "UTC" || name == "Etc/UTC") return from_posix(name, "UTC0");
    return Error{"time zone '" + name + "' not found in " + dir + " (install tzdata)"};
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  auto d = parse_tzif(name, path, ss.str());
  if (!d) return Error{d.error()};
  return TimeZone(std::shared_ptr<const Data>(std::move(*d)));
}

const std::string& TimeZone::name() const { return data_->name; }

std::chrono::seconds TimeZone::utc_offset(Timestamp t) const {
  return seconds{data_->offset_at(floor<seconds>(t).time_since_epoch().count())};
}

Day TimeZone::local_day(Timestamp t) const { return year_month_day{floor<days>(t + utc_offset(t))}; }

Timestamp TimeZone::start_of_day(Day day) const {
  const long long local = sys_days{day}.time_since_epoch().count() * 86400LL;
  const auto& d = *data_;
  // Candidate offsets: those in effect a day either side cover every zone change around midnight.
  const long long before = d.offset_at(local - 86400 - 14 * 3600),
                  after = d.offset_at(local + 86400 + 14 * 3600);
  long long best = 0;
  bool found = false;
  for (const long long off : {before, after, d.offset_at(local - before), d.offset_at(local - after)}) {
    const long long u = local - off;
    if (d.offset_at(u) == off && (!found || u < best)) {
      best = u;
      found = true;
    }
  }
  if (!found) {
    // Midnight falls into a gap (the clock jumps over it): the day starts at the jump. Local time
    // u + offset(u) is below midnight before it and past midnight after it.
    long long lo = local - std::max(before, after), hi = local - std::min(before, after);
    while (lo < hi) {
      const long long mid = lo + (hi - lo) / 2;
      if (mid + d.offset_at(mid) >= local) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    best = lo;
  }
  return Timestamp{milliseconds{best * 1000}};
}

std::string TimeZone::format(Timestamp t) const {
  const auto off = utc_offset(t).count();
  const long long a = off < 0 ? -off : off;
  return clock_text(t + seconds{off}) + (off < 0 ? "-" : "+") + two(static_cast<int>(a / 3600)) + ":" +
         two(static_cast<int>(a / 60 % 60));
}

}  // namespace vigil
