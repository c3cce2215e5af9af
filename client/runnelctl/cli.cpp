#include "client/runnelctl/cli.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace runnelctl {

namespace {

const std::vector<std::string> value_options{"--group", "--bootstrap", "--partitions",  "--replicas",    "--config",
                                             "--key-separator", "--acks",   "--partition",   "--offset",
                                             "--max-messages", "--format",  "--topic",       "--to-offset",
                                             "--to-datetime",  "--shift-by"};
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
