#include "client/runnelctl/cli.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace runnelctl {

namespace {

const std::vector<std::string> value_options{"--group", "--bootstrap", "--partitions",  "--replicas",    "--config",
                                             "--key-separator", "--acks",   "--partition",   "--offset",
                                             "--max-messages", "--format",  "--topic",       "--to-offset",
                                             "--to-datetime",  "--shift-by",   "--to",          "--from",        "--until",
                                             "--dlq",          "--lock-ms",    "--max-attempts", "--ack",        "--wait-ms"};
const std::vector<std::string> flag_options{"--json",        "--from-beginning", "--exit-at-end", "--help",
                                            "--to-earliest", "--to-latest",      "--execute", "--msg-id-from-key"};

}  // namespace

[[noreturn]] void fail(const runnel::error& e) {
  std::fprintf(stderr, "runnelctl: %s\n", e.what().c_str());
  std::fflush(stdout);
  // _Exit, not exit: the clients' I/O threads still run, and static
  // destructors (error categories) must not race them.
  std::_Exit(1);
}

args parse(int argc, char** argv) {
  args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s.starts_with("--")) {
      if (std::find(flag_options.begin(), flag_options.end(), s) != flag_options.end()) {
        a.flags[s] = true;
      } else if (std::find(value_options.begin(), value_options.end(), s) != value_options.end()) {
        if (i + 1 >= argc) throw usage_error{s + " needs a value"};
        a.options[s].push_back(argv[++i]);
      } else {
        throw usage_error{"unknown option " + s};
      }
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

std::int64_t to_int(const std::string& what, const std::string& s) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0) throw usage_error{what + " must be an integer, got '" + s + "'"};
  return v;
}

std::map<std::string, std::string> configs_of(const args& a) {
  std::map<std::string, std::string> out;
  auto it = a.options.find("--config");
  if (it == a.options.end()) return out;
  for (const auto& kv : it->second) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw usage_error{"--config expects key=value, got '" + kv + "'"};
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}



// ISO 8601 date-time to ms since the epoch: YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|(+|-)HH[:]MM].
// Without a zone the time is UTC.
std::optional<std::int64_t> parse_datetime_ms(std::string_view s) {
  std::size_t i = 0;
  auto digits = [&](int n, int& out) {
    if (i + n > s.size()) return false;
    out = 0;
    for (int k = 0; k < n; ++k) {
      const char c = s[i + k];
      if (c < '0' || c > '9') return false;
      out = out * 10 + (c - '0');
    }
    i += n;
    return true;
  };
  auto lit = [&](char c) {
    if (i >= s.size() || s[i] != c) return false;
    ++i;
    return true;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, ms = 0, zone_minutes = 0;
  if (!digits(4, y) || !lit('-') || !digits(2, mo) || !lit('-') || !digits(2, d)) return std::nullopt;
  if (i < s.size() && (lit('T') || lit(' '))) {
    if (!digits(2, h) || !lit(':') || !digits(2, mi)) return std::nullopt;
    if (lit(':')) {
      if (!digits(2, sec)) return std::nullopt;
      if (lit('.')) {
        int n = 0;
        for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++n) {
          if (n < 3) ms = ms * 10 + (s[i] - '0');
        }
        if (n == 0) return std::nullopt;
        for (; n < 3; ++n) ms *= 10;
      }
    }
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
      const int sign = s[i++] == '-' ? -1 : 1;
      int oh = 0, om = 0;
      if (!digits(2, oh)) return std::nullopt;
      lit(':');
      if (!digits(2, om) || oh > 23 || om > 59) return std::nullopt;
      zone_minutes = sign * (oh * 60 + om);
    } else {
      lit('Z');
    }
  }
  if (i != s.size()) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{static_cast<unsigned>(mo)},
                                        std::chrono::day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 59) return std::nullopt;
  const std::int64_t days = std::chrono::sys_days(ymd).time_since_epoch().count();
  const std::int64_t local_s = days * 86400 + std::int64_t{h} * 3600 + std::int64_t{mi} * 60 + sec;
  return (local_s - std::int64_t{zone_minutes} * 60) * 1000 + ms;  // local time minus its zone is UTC
}

std::string format_ms(std::int64_t ms) {
  if (ms < 0) return "-";
  const std::chrono::sys_time<std::chrono::milliseconds> t{std::chrono::milliseconds(ms)};
  const auto day = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::year_month_day ymd{day};
  const std::chrono::hh_mm_ss hms{t - day};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<long long>(hms.hours().count()), static_cast<long long>(hms.minutes().count()),
                static_cast<long long>(hms.seconds().count()), static_cast<long long>(hms.subseconds().count()));
  return buf;
}

std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string bootstrap_of(const args& a) {
  if (auto b = a.opt("--bootstrap")) return *b;
  if (const char* env = std::getenv("RUNNEL_BOOTSTRAP")) return env;
  return "127.0.0.1:9292";
}

std::unique_ptr<runnel::admin> connect_admin(const args& a) {
  runnel::admin_config cfg;
  cfg.bootstrap = bootstrap_of(a);
  cfg.client_id = "runnelctl";
  return check(runnel::admin::connect(cfg));
}

std::string join(const std::vector<std::int32_t>& v) {
  std::string s;
  for (auto x : v) {
    if (!s.empty()) s += ',';
    s += std::to_string(x);
  }
  return s;
}

}  // namespace runnelctl
