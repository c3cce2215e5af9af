// runnelctl: the Runnel admin CLI and kcat-like producer/consumer.
// Tables for people, --json for scripts; errors are one line on stderr and
// a non-zero exit (2: bad usage, 1: the operation failed).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/producer.h"

namespace {

constexpr const char* usage = R"(usage: runnelctl [--bootstrap HOST:PORT[,HOST:PORT...] | zk://HOST:PORT/CHROOT] [--json] COMMAND
  topic create NAME --partitions N [--replicas R] [--config k=v]...
  topic list
  topic describe NAME
  topic alter NAME --config k=v...        (k= with no value removes the override)
  topic delete NAME
  produce TOPIC [--key-separator SEP] [--acks 0|1|all] [--partition P]   (one record per stdin line)
  consume TOPIC [--from-beginning] [--partition P [--offset O] | --group G] [--max-messages N]
                [--format FMT] [--exit-at-end]      (FMT: %k %v %p %o %T %t, \n \t; default "%v\n")
  cluster                                  (brokers, controller, under-replicated and offline partitions)
  group list
  group describe GROUP                     (state, epochs, assignor, members, then the lag table)
  group lag GROUP                          (per partition: committed, log end, lag in records and seconds, owner)
  group reset-offsets GROUP --topic T [--topic T2...]
        (--to-earliest | --to-latest | --to-offset N | --to-datetime ISO8601 | --shift-by N) [--execute]
                                           (prints the plan; --execute commits it, only while the group has no members)
  group delete GROUP
bootstrap defaults to $RUNNEL_BOOTSTRAP or 127.0.0.1:9292; the first broker of the list that answers is used
)";

struct usage_error {
  std::string what;
};

struct args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> options;  // --name -> values
  std::map<std::string, bool> flags;

  [[nodiscard]] std::optional<std::string> opt(const std::string& name) const {
    auto it = options.find(name);
    if (it == options.end() || it->second.empty()) return std::nullopt;
    return it->second.back();
  }
  [[nodiscard]] bool flag(const std::string& name) const { return flags.contains(name); }
};

const std::vector<std::string> value_options{"--group", "--bootstrap", "--partitions",  "--replicas",    "--config",
                                             "--key-separator", "--acks",   "--partition",   "--offset",
                                             "--max-messages", "--format",  "--topic",       "--to-offset",
                                             "--to-datetime",  "--shift-by"};
const std::vector<std::string> flag_options{"--json",        "--from-beginning", "--exit-at-end", "--help",
                                            "--to-earliest", "--to-latest",      "--execute"};

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

[[noreturn]] void fail(const runnel::error& e) {
  std::fprintf(stderr, "runnelctl: %s\n", e.what().c_str());
  std::fflush(stdout);
  // _Exit, not exit: the clients' I/O threads still run, and static
  // destructors (error categories) must not race them.
  std::_Exit(1);
}

template <class T>
T check(runnel::result<T> r) {
  if (!r) fail(r.error());
  if constexpr (!std::is_void_v<T>) return std::move(*r);
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

int topic_command(const args& a) {
  const auto& p = a.positional;
  if (p.size() < 2) throw usage_error{"topic needs a subcommand: create, list, describe, alter, delete"};
  const std::string& sub = p[1];
  const bool json = a.flag("--json");
  if (sub == "list") {
    if (p.size() != 2) throw usage_error{"topic list takes no arguments"};
    auto topics = check(connect_admin(a)->list_topics());
    if (json) {
      std::printf("[");
      for (std::size_t i = 0; i < topics.size(); ++i) {
        std::printf("%s{\"name\":\"%s\",\"partitions\":%zu}", i ? "," : "", json_escape(topics[i].name).c_str(),
                    topics[i].partitions.size());
      }
      std::printf("]\n");
    } else {
      std::printf("%-40s %s\n", "TOPIC", "PARTITIONS");
      for (const auto& t : topics) std::printf("%-40s %zu\n", t.name.c_str(), t.partitions.size());
    }
    return 0;
  }
  if (p.size() != 3) throw usage_error{"topic " + sub + " needs exactly one topic name"};
  const std::string& name = p[2];
  if (sub == "create") {
    auto n = a.opt("--partitions");
    if (!n) throw usage_error{"topic create needs --partitions N"};
    const auto partitions = to_int("--partitions", *n);
    const auto replicas = a.opt("--replicas") ? to_int("--replicas", *a.opt("--replicas")) : 1;
    check(connect_admin(a)->create_topic(name, static_cast<std::int32_t>(partitions), static_cast<std::int16_t>(replicas),
                                         configs_of(a)));
    if (json) {
      std::printf("{\"created\":\"%s\",\"partitions\":%lld}\n", json_escape(name).c_str(), static_cast<long long>(partitions));
    } else {
      std::printf("created topic %s with %lld partitions\n", name.c_str(), static_cast<long long>(partitions));
    }
    return 0;
  }
  if (sub == "delete") {
    check(connect_admin(a)->delete_topic(name));
    std::printf(json ? "{\"deleted\":\"%s\"}\n" : "deleted topic %s\n", json ? json_escape(name).c_str() : name.c_str());
    return 0;
  }
  if (sub == "alter") {
    auto cfgs = configs_of(a);
    if (cfgs.empty()) throw usage_error{"topic alter needs at least one --config k=v"};
    check(connect_admin(a)->alter_configs(name, cfgs));
    std::printf(json ? "{\"altered\":\"%s\"}\n" : "altered topic %s\n", json ? json_escape(name).c_str() : name.c_str());
    return 0;
  }
  if (sub == "describe") {
    auto admin = connect_admin(a);
    auto t = check(admin->describe_topic(name));
    auto configs = check(admin->describe_configs(name));
    struct row {
      runnel::partition_info p;
      std::int64_t earliest, latest, size;
    };
    std::vector<row> rows;
    for (const auto& part : t.partitions) {
      if (part.leader < 0) {  // offline: no broker answers for its offsets
        rows.push_back({part, -1, -1, -1});
        continue;
      }
      // Offsets and size come from each partition's leader.
      rows.push_back({part, check(admin->list_offset(name, part.partition, runnel::earliest_offset)),
                      check(admin->list_offset(name, part.partition, runnel::latest_offset)),
                      check(admin->partition_size(name, part.partition))});
    }
    if (json) {
      std::printf("{\"name\":\"%s\",\"partitions\":[", json_escape(name).c_str());
      for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        std::printf("%s{\"partition\":%d,\"leader\":%d,\"leader_epoch\":%d,\"replicas\":[%s],\"isr\":[%s],"
                    "\"earliest_offset\":%lld,\"latest_offset\":%lld,\"size_bytes\":%lld}",
                    i ? "," : "", r.p.partition, r.p.leader, r.p.leader_epoch, join(r.p.replicas).c_str(),
                    join(r.p.isr).c_str(), static_cast<long long>(r.earliest), static_cast<long long>(r.latest),
                    static_cast<long long>(r.size));
      }
      std::printf("],\"configs\":{");
      bool first = true;
      for (const auto& [k, v] : configs) {
        std::printf("%s\"%s\":\"%s\"", first ? "" : ",", json_escape(k).c_str(), json_escape(v.value).c_str());
        first = false;
      }
      std::printf("}}\n");
    } else {
      std::printf("topic %s, %zu partitions\n", name.c_str(), rows.size());
      std::printf("%-10s %-7s %-6s %-12s %-12s %-16s %-16s %-14s\n", "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR",
                  "EARLIEST", "LATEST", "SIZE");
      for (const auto& r : rows) {
        std::printf("%-10d %-7d %-6d %-12s %-12s %-16lld %-16lld %-14lld\n", r.p.partition, r.p.leader,
                    r.p.leader_epoch, join(r.p.replicas).c_str(), join(r.p.isr).c_str(),
                    static_cast<long long>(r.earliest), static_cast<long long>(r.latest), static_cast<long long>(r.size));
      }
      std::printf("configs:\n");
      for (const auto& [k, v] : configs) std::printf("  %s=%s%s\n", k.c_str(), v.value.c_str(), v.is_default ? "" : " (override)");
    }
    return 0;
  }
  throw usage_error{"unknown topic subcommand '" + sub + "'"};
}

int produce_command(const args& a) {
  if (a.positional.size() != 2) throw usage_error{"produce needs exactly one topic"};
  const std::string& topic = a.positional[1];
  runnel::producer_config cfg;
  cfg.bootstrap = bootstrap_of(a);
  cfg.client_id = "runnelctl";
  if (auto acks = a.opt("--acks")) {
    if (*acks == "all" || *acks == "-1") {
      cfg.acks = -1;
    } else if (*acks == "0" || *acks == "1") {
      cfg.acks = std::stoi(*acks);
    } else {
      throw usage_error{"--acks must be 0, 1 or all, got '" + *acks + "'"};
    }
  }
  std::optional<std::int32_t> partition;
  if (auto p = a.opt("--partition")) partition = static_cast<std::int32_t>(to_int("--partition", *p));
  const auto sep = a.opt("--key-separator");
  if (sep && sep->empty()) throw usage_error{"--key-separator must not be empty"};
  auto producer = check(runnel::producer::connect(cfg));
  std::atomic<std::uint64_t> ok{0}, failed{0};
  std::mutex err_mu;
  std::optional<runnel::error> first_error;
  auto cb = [&](const runnel::result<runnel::delivery>& r) {
    if (r) {
      ++ok;
    } else {
      ++failed;
      std::lock_guard lock(err_mu);
      if (!first_error) first_error = r.error();
    }
  };
  std::string line;
  while (std::getline(std::cin, line)) {
    std::optional<std::string_view> key;
    std::string_view value = line;
    if (sep) {
      auto at = line.find(*sep);
      if (at != std::string::npos) {
        key = std::string_view(line).substr(0, at);
        value = std::string_view(line).substr(at + sep->size());
      }
    }
    if (partition) {
      producer->send_to(topic, *partition, key, value, {}, cb);
    } else {
      producer->send(topic, key, value, {}, cb);
    }
  }
  auto flushed = producer->flush();
  producer->close();
  // Exactly one line either way: the summary on success, the error otherwise.
  if (first_error) {
    first_error->message += " (" + std::to_string(failed.load()) + " of " + std::to_string(ok.load() + failed.load()) +
                            " records failed)";
    fail(*first_error);
  }
  if (!flushed) fail(flushed.error());
  if (a.flag("--json")) {
    std::printf("{\"topic\":\"%s\",\"produced\":%llu,\"failed\":0}\n", json_escape(topic).c_str(),
                static_cast<unsigned long long>(ok.load()));
  } else {
    std::fprintf(stderr, "produced %llu records to %s\n", static_cast<unsigned long long>(ok.load()), topic.c_str());
  }
  return 0;
}

void print_formatted(const std::string& fmt, const runnel::record_view& r) {
  std::string out;
  for (std::size_t i = 0; i < fmt.size(); ++i) {
    const char c = fmt[i];
    if ((c == '%' || c == '\\') && i + 1 < fmt.size()) {
      const char n = fmt[++i];
      if (c == '\\') {
        out += n == 'n' ? '\n' : n == 't' ? '\t' : n;
        continue;
      }
      switch (n) {
        case 'k': out += r.key.value_or(""); break;
        case 'v': out += r.value.value_or(""); break;
        case 'p': out += std::to_string(r.partition); break;
        case 'o': out += std::to_string(r.offset); break;
        case 'T': out += std::to_string(r.timestamp_ms); break;
        case 't': out += r.topic; break;
        case '%': out += '%'; break;
        default: out += '%'; out += n;
      }
      continue;
    }
    out += c;
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
}

int consume_command(const args& a) {
  if (a.positional.size() != 2) throw usage_error{"consume needs exactly one topic"};
  const std::string& topic = a.positional[1];
  const auto max_messages = a.opt("--max-messages") ? to_int("--max-messages", *a.opt("--max-messages")) : -1;
  const std::string format = a.opt("--format").value_or("%v\n");
  const bool json = a.flag("--json");
  std::optional<std::int32_t> only_partition;
  std::optional<std::int64_t> start_offset;
  const auto group = a.opt("--group");
  if (group && group->empty()) throw usage_error{"--group needs a group id"};
  if (auto p = a.opt("--partition")) only_partition = static_cast<std::int32_t>(to_int("--partition", *p));
  if (group && only_partition) throw usage_error{"--group and --partition exclude each other (the group assigns partitions)"};
  if (auto o = a.opt("--offset")) {
    if (!only_partition) throw usage_error{"--offset needs --partition"};
    start_offset = to_int("--offset", *o);
  }
  runnel::admin_config acfg;
  acfg.bootstrap = bootstrap_of(a);
  acfg.client_id = "runnelctl";
  auto admin = check(runnel::admin::connect(acfg));
  auto info = check(admin->describe_topic(topic));
  runnel::consumer_config cfg;
  cfg.bootstrap = acfg.bootstrap;
  cfg.client_id = "runnelctl";
  // With a group: where a partition without a committed offset starts.
  cfg.start_at_earliest = a.flag("--from-beginning");
  if (group) {
    // Commits what it printed, every second and when it stops (not
    // auto-commit: --max-messages may stop inside a poll's records).
    cfg.group_id = *group;
    cfg.enable_auto_commit = false;
  }
  auto consumer = check(runnel::consumer::connect(cfg));
  std::vector<runnel::topic_partition_ref> parts;
  if (only_partition) {
    parts.push_back({topic, *only_partition});
  } else {
    for (const auto& pi : info.partitions) parts.push_back({topic, pi.partition});
  }
  // Printed but not yet committed, per partition: the next offset.
  std::map<runnel::topic_partition_ref, runnel::offset_and_metadata> printed;
  // Before partitions go to another member, what was printed of them is committed.
  struct commit_on_revoke final : runnel::rebalance_listener {
    explicit commit_on_revoke(std::map<runnel::topic_partition_ref, runnel::offset_and_metadata>& p) : printed(p) {}
    void on_partitions_revoked(runnel::consumer& c, const std::vector<runnel::topic_partition_ref>& parts) override {
      std::map<runnel::topic_partition_ref, runnel::offset_and_metadata> mine;
      for (const auto& tp : parts) {
        if (auto it = printed.find(tp); it != printed.end()) mine.insert(printed.extract(it));
      }
      if (!mine.empty()) (void)c.commit_sync(mine);
    }
    void on_partitions_lost(runnel::consumer& /*c*/, const std::vector<runnel::topic_partition_ref>& parts) override {
      for (const auto& tp : parts) printed.erase(tp);  // a commit would be refused
    }
    std::map<runnel::topic_partition_ref, runnel::offset_and_metadata>& printed;
  };
  commit_on_revoke listener(printed);
  if (group) {
    check(consumer->subscribe({topic}, &listener));
  } else {
    check(consumer->assign(parts));
  }
  if (start_offset) check(consumer->seek(parts[0], *start_offset));
  std::int64_t seen = 0;
  const bool exit_at_end = a.flag("--exit-at-end");
  // Where "the end" is, fixed at start so a busy topic still lets us exit.
  std::map<std::int32_t, std::int64_t> end;
  if (exit_at_end) {
    for (const auto& tp : parts) end[tp.partition] = check(admin->list_offset(topic, tp.partition, runnel::latest_offset));
  }
  auto at_end = [&] {
    const auto held = group ? consumer->assignment() : parts;
    if (held.empty()) return false;
    for (const auto& tp : held) {
      if (consumer->position(tp) < end[tp.partition]) return false;
    }
    return true;
  };
  auto next_commit = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  auto commit_printed = [&] {
    if (!group || printed.empty()) return;
    check(consumer->commit_sync(printed));
    printed.clear();
  };
  while (max_messages < 0 || seen < max_messages) {
    if (exit_at_end && at_end()) break;
    if (std::chrono::steady_clock::now() >= next_commit) {
      commit_printed();
      next_commit = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    }
    auto records = check(consumer->poll(std::chrono::milliseconds(500)));
    for (const auto& r : records) {
      if (group) printed[{topic, r.partition}] = runnel::offset_and_metadata{r.offset + 1, {}, -1, -1};
      if (json) {
        std::printf("{\"topic\":\"%s\",\"partition\":%d,\"offset\":%lld,\"timestamp\":%lld,\"key\":%s,\"value\":\"%s\"}\n",
                    json_escape(r.topic).c_str(), r.partition, static_cast<long long>(r.offset),
                    static_cast<long long>(r.timestamp_ms),
                    r.key ? ("\"" + json_escape(*r.key) + "\"").c_str() : "null", json_escape(r.value.value_or("")).c_str());
      } else {
        print_formatted(format, r);
      }
      if (max_messages >= 0 && ++seen >= max_messages) break;
    }
    std::fflush(stdout);
  }
  commit_printed();
  check(consumer->close());
  return 0;
}

// Partitions whose ISR is short of their replicas (under-replicated) or
// that have no leader (offline); standalone partitions are never either.
struct partition_health {
  std::string topic;
  runnel::partition_info p;
};

int cluster_command(const args& a) {
  auto admin = connect_admin(a);
  auto c = check(admin->describe_cluster());
  auto topics = check(admin->list_topics());
  std::vector<partition_health> under, offline;
  for (const auto& t : topics) {
    for (const auto& p : t.partitions) {
      if (p.leader < 0) {
        offline.push_back({t.name, p});
      } else if (p.isr.size() < p.replicas.size()) {
        under.push_back({t.name, p});
      }
    }
  }
  if (a.flag("--json")) {
    auto list = [](const std::vector<partition_health>& v) {
      std::string s = "[";
      for (std::size_t i = 0; i < v.size(); ++i) {
        s += (i ? "," : "") + std::string("{\"topic\":\"") + json_escape(v[i].topic) + "\",\"partition\":" +
             std::to_string(v[i].p.partition) + ",\"leader\":" + std::to_string(v[i].p.leader) + ",\"replicas\":[" +
             join(v[i].p.replicas) + "],\"isr\":[" + join(v[i].p.isr) + "]}";
      }
      return s + "]";
    };
    std::printf("{\"mode\":\"%s\",\"controller\":%d,\"brokers\":[", json_escape(c.mode).c_str(), c.controller);
    for (std::size_t i = 0; i < c.brokers.size(); ++i) {
      std::printf("%s{\"id\":%d,\"host\":\"%s\",\"port\":%d,\"rack\":\"%s\"}", i ? "," : "", c.brokers[i].id,
                  json_escape(c.brokers[i].host).c_str(), c.brokers[i].port, json_escape(c.brokers[i].rack).c_str());
    }
    std::printf("],\"under_replicated\":%s,\"offline\":%s}\n", list(under).c_str(), list(offline).c_str());
  } else {
    std::printf("mode: %s\ncontroller: %d\n%-6s %-24s %s\n", c.mode.c_str(), c.controller, "ID", "ADDRESS", "RACK");
    for (const auto& b : c.brokers) {
      std::printf("%-6d %-24s %s\n", b.id, (b.host + ":" + std::to_string(b.port)).c_str(), b.rack.c_str());
    }
    auto table = [](const char* what, const std::vector<partition_health>& v) {
      std::printf("%s partitions: %zu\n", what, v.size());
      for (const auto& h : v) {
        std::printf("  %s/%d leader %d replicas %s isr %s\n", h.topic.c_str(), h.p.partition, h.p.leader,
                    join(h.p.replicas).c_str(), join(h.p.isr).c_str());
      }
    };
    table("under-replicated", under);
    table("offline", offline);
  }
  return 0;
}

// --- group ----------------------------------------------------------------

std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }
std::string num_or_dash(std::int64_t v) { return v < 0 ? "-" : std::to_string(v); }
std::string seconds_or_dash(double v) {
  if (v < 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// "events:0,1 audit:2" ("-" when empty); `v` is sorted.
std::string partitions_text(const std::vector<runnel::topic_partition_ref>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i == 0 || v[i].topic != v[i - 1].topic) {
      s += (i ? " " : "") + v[i].topic + ":";
    } else {
      s += ',';
    }
    s += std::to_string(v[i].partition);
  }
  return or_dash(s);
}

std::string partitions_json(const std::vector<runnel::topic_partition_ref>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    s += (i ? "," : "") + std::string("{\"topic\":\"") + json_escape(v[i].topic) +
         "\",\"partition\":" + std::to_string(v[i].partition) + "}";
  }
  return s + "]";
}

std::string lag_json(const std::vector<runnel::partition_lag>& rows) {
  std::string s = "[";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.3f", r.lag_seconds);
    s += (i ? "," : "") + std::string("{\"topic\":\"") + json_escape(r.partition.topic) +
         "\",\"partition\":" + std::to_string(r.partition.partition) +
         ",\"committed_offset\":" + std::to_string(r.committed_offset) +
         ",\"log_end_offset\":" + std::to_string(r.log_end_offset) + ",\"lag\":" + std::to_string(r.lag) +
         ",\"lag_seconds\":" + secs + ",\"owner\":\"" + json_escape(r.owner) + "\"}";
  }
  return s + "]";
}

std::int64_t total_lag(const std::vector<runnel::partition_lag>& rows) {
  std::int64_t n = 0;
  for (const auto& r : rows) n += std::max<std::int64_t>(0, r.lag);
  return n;
}

void print_lag_table(const std::vector<runnel::partition_lag>& rows) {
  std::printf("%-24s %-9s %-12s %-12s %-10s %-11s %s\n", "TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG",
              "LAG-SECONDS", "OWNER");
  for (const auto& r : rows) {
    std::printf("%-24s %-9d %-12s %-12s %-10s %-11s %s\n", r.partition.topic.c_str(), r.partition.partition,
                num_or_dash(r.committed_offset).c_str(), num_or_dash(r.log_end_offset).c_str(),
                num_or_dash(r.lag).c_str(), seconds_or_dash(r.lag_seconds).c_str(), or_dash(r.owner).c_str());
  }
  std::printf("total lag: %lld\n", static_cast<long long>(total_lag(rows)));
}

int group_describe(const args& a, const std::string& group) {
  auto admin = connect_admin(a);
  auto d = check(admin->describe_group(group));
  auto lag = check(admin->group_lag(d));
  if (a.flag("--json")) {
    std::printf("{\"group_id\":\"%s\",\"state\":\"%s\",\"coordinator\":%d,\"group_epoch\":%d,\"assignment_epoch\":%d,"
                "\"assignor\":\"%s\",\"members\":[",
                json_escape(d.group_id).c_str(), json_escape(d.state).c_str(), d.coordinator, d.group_epoch,
                d.assignment_epoch, json_escape(d.assignor).c_str());
    for (std::size_t i = 0; i < d.members.size(); ++i) {
      const auto& m = d.members[i];
      std::string topics;
      for (const auto& t : m.subscribed_topics) topics += (topics.empty() ? "\"" : ",\"") + json_escape(t) + "\"";
      std::printf("%s{\"member_id\":\"%s\",\"instance_id\":\"%s\",\"client_id\":\"%s\",\"client_host\":\"%s\","
                  "\"member_epoch\":%d,\"subscribed_topics\":[%s],\"subscribed_regex\":\"%s\",\"assignment\":%s,"
                  "\"target_assignment\":%s,\"revoking\":%s}",
                  i ? "," : "", json_escape(m.member_id).c_str(), json_escape(m.instance_id).c_str(),
                  json_escape(m.client_id).c_str(), json_escape(m.client_host).c_str(), m.member_epoch, topics.c_str(),
                  json_escape(m.subscribed_regex).c_str(), partitions_json(m.assignment).c_str(),
                  partitions_json(m.target_assignment).c_str(), partitions_json(m.revoking).c_str());
    }
    std::printf("],\"partitions\":%s,\"total_lag\":%lld}\n", lag_json(lag).c_str(),
                static_cast<long long>(total_lag(lag)));
    return 0;
  }
  std::printf("group %s\nstate: %s\ncoordinator: %d\ngroup epoch: %d\nassignment epoch: %d\nassignor: %s\nmembers: %zu\n",
              d.group_id.c_str(), d.state.c_str(), d.coordinator, d.group_epoch, d.assignment_epoch,
              or_dash(d.assignor).c_str(), d.members.size());
  if (!d.members.empty()) {
    std::printf("%-24s %-16s %-16s %-16s %-6s %s\n", "MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "EPOCH",
                "ASSIGNMENT");
    for (const auto& m : d.members) {
      std::printf("%-24s %-16s %-16s %-16s %-6d %s\n", m.member_id.c_str(), or_dash(m.instance_id).c_str(),
                  or_dash(m.client_id).c_str(), or_dash(m.client_host).c_str(), m.member_epoch,
                  partitions_text(m.assignment).c_str());
    }
  }
  std::printf("\n");
  print_lag_table(lag);
  return 0;
}

int group_lag(const args& a, const std::string& group) {
  auto lag = check(connect_admin(a)->group_lag(group));
  if (a.flag("--json")) {
    std::printf("{\"group_id\":\"%s\",\"partitions\":%s,\"total_lag\":%lld}\n", json_escape(group).c_str(),
                lag_json(lag).c_str(), static_cast<long long>(total_lag(lag)));
  } else {
    print_lag_table(lag);
  }
  return 0;
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

// What reset-offsets moves each partition to.
struct reset_target {
  enum class kind { earliest, latest, offset, datetime, shift } what;
  std::int64_t value = 0;  // the offset, the time in ms, or the shift
};

reset_target reset_target_of(const args& a) {
  std::vector<reset_target> chosen;
  if (a.flag("--to-earliest")) chosen.push_back({reset_target::kind::earliest});
  if (a.flag("--to-latest")) chosen.push_back({reset_target::kind::latest});
  auto values = [&](const std::string& name) {
    auto it = a.options.find(name);
    return it == a.options.end() ? std::vector<std::string>{} : it->second;
  };
  for (const auto& v : values("--to-offset")) {
    const auto n = to_int("--to-offset", v);
    if (n < 0) throw usage_error{"--to-offset must not be negative, got '" + v + "'"};
    chosen.push_back({reset_target::kind::offset, n});
  }
  for (const auto& v : values("--to-datetime")) {
    auto ms = parse_datetime_ms(v);
    if (!ms) throw usage_error{"--to-datetime expects YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM], got '" + v + "'"};
    chosen.push_back({reset_target::kind::datetime, *ms});
  }
  for (const auto& v : values("--shift-by")) chosen.push_back({reset_target::kind::shift, to_int("--shift-by", v)});
  if (chosen.empty()) {
    throw usage_error{"group reset-offsets needs one of --to-earliest, --to-latest, --to-offset N, --to-datetime T, --shift-by N"};
  }
  if (chosen.size() > 1) throw usage_error{"group reset-offsets takes exactly one --to-* or --shift-by option"};
  return chosen[0];
}

int group_reset_offsets(const args& a, const std::string& group) {
  auto topics_it = a.options.find("--topic");
  if (topics_it == a.options.end() || topics_it->second.empty()) throw usage_error{"group reset-offsets needs --topic T"};
  const reset_target target = reset_target_of(a);
  const bool execute = a.flag("--execute");
  auto admin = connect_admin(a);
  std::vector<runnel::topic_partition_ref> parts;
  for (const auto& t : topics_it->second) {
    for (const auto& p : check(admin->describe_topic(t)).partitions) parts.push_back({t, p.partition});
  }
  std::sort(parts.begin(), parts.end());
  parts.erase(std::unique(parts.begin(), parts.end()), parts.end());
  auto current = check(admin->committed_offsets(group, parts));
  struct planned {
    runnel::topic_partition_ref tp;
    std::int64_t current;  // -1: none
    std::int64_t next;
  };
  std::vector<planned> plan;
  std::map<runnel::topic_partition_ref, runnel::offset_and_metadata> commit;
  for (const auto& tp : parts) {
    auto it = current.find(tp);
    const std::int64_t cur = it != current.end() ? it->second.offset : -1;
    const auto start = check(admin->list_offset(tp.topic, tp.partition, runnel::earliest_offset));
    const auto end = check(admin->list_offset(tp.topic, tp.partition, runnel::latest_offset));
    std::int64_t next = 0;
    switch (target.what) {
      case reset_target::kind::earliest: next = start; break;
      case reset_target::kind::latest: next = end; break;
      case reset_target::kind::offset: next = std::clamp(target.value, start, end); break;
      // The first offset at or after the time (the end when none is).
      case reset_target::kind::datetime:
        next = check(admin->list_offset(tp.topic, tp.partition, target.value));
        if (next < 0) next = end;
        break;
      case reset_target::kind::shift:
        if (cur < 0) {
          fail(runnel::error{runnel::errc::invalid_argument, "cannot shift " + tp.topic + "/" + std::to_string(tp.partition) +
                                                                 ": group " + group + " has no committed offset there"});
        }
        next = std::clamp(cur + target.value, start, end);
        break;
    }
    plan.push_back({tp, cur, next});
    commit[tp].offset = next;
  }
  if (execute) {
    if (auto r = admin->alter_group_offsets(group, commit); !r) {
      if (r.error().code == runnel::errc::non_empty_group) {
        std::fprintf(stderr, "runnelctl: group %s has active members: stop its consumers before reset-offsets --execute (%s)\n",
                     group.c_str(), r.error().what().c_str());
        std::fflush(stdout);
        std::_Exit(1);
      }
      fail(r.error());
    }
  }
  if (a.flag("--json")) {
    std::printf("{\"group_id\":\"%s\",\"executed\":%s,\"partitions\":[", json_escape(group).c_str(),
                execute ? "true" : "false");
    for (std::size_t i = 0; i < plan.size(); ++i) {
      std::printf("%s{\"topic\":\"%s\",\"partition\":%d,\"current_offset\":%lld,\"new_offset\":%lld}", i ? "," : "",
                  json_escape(plan[i].tp.topic).c_str(), plan[i].tp.partition, static_cast<long long>(plan[i].current),
                  static_cast<long long>(plan[i].next));
    }
    std::printf("]}\n");
    return 0;
  }
  std::printf("%-24s %-9s %-12s %s\n", "TOPIC", "PARTITION", "CURRENT", "NEW");
  for (const auto& p : plan) {
    std::printf("%-24s %-9d %-12s %lld\n", p.tp.topic.c_str(), p.tp.partition, num_or_dash(p.current).c_str(),
                static_cast<long long>(p.next));
  }
  if (execute) {
    std::printf("committed %zu offsets for group %s\n", plan.size(), group.c_str());
  } else {
    std::printf("dry run: nothing committed (add --execute to commit these offsets)\n");
  }
  return 0;
}

int group_command(const args& a) {
  const auto& p = a.positional;
  if (p.size() < 2) throw usage_error{"group needs a subcommand: list, describe, lag, reset-offsets, delete"};
  const std::string& sub = p[1];
  const bool json = a.flag("--json");
  if (sub == "list") {
    if (p.size() != 2) throw usage_error{"group list takes no arguments"};
    auto groups = check(connect_admin(a)->list_groups());
    if (json) {
      std::printf("[");
      for (std::size_t i = 0; i < groups.size(); ++i) {
        const auto& g = groups[i];
        std::printf("%s{\"group_id\":\"%s\",\"state\":\"%s\",\"group_epoch\":%d,\"members\":%d}", i ? "," : "",
                    json_escape(g.group_id).c_str(), json_escape(g.state).c_str(), g.group_epoch, g.members);
      }
      std::printf("]\n");
    } else {
      std::printf("%-40s %-12s %-6s %s\n", "GROUP", "STATE", "EPOCH", "MEMBERS");
      for (const auto& g : groups) std::printf("%-40s %-12s %-6d %d\n", g.group_id.c_str(), g.state.c_str(), g.group_epoch, g.members);
    }
    return 0;
  }
  if (sub != "describe" && sub != "lag" && sub != "reset-offsets" && sub != "delete") {
    throw usage_error{"unknown group subcommand '" + sub + "'"};
  }
  if (p.size() != 3) throw usage_error{"group " + sub + " needs exactly one group id"};
  const std::string& group = p[2];
  if (group.empty()) throw usage_error{"group id must not be empty"};
  if (sub == "describe") return group_describe(a, group);
  if (sub == "lag") return group_lag(a, group);
  if (sub == "reset-offsets") return group_reset_offsets(a, group);
  check(connect_admin(a)->delete_group(group));
  std::printf(json ? "{\"deleted\":\"%s\"}\n" : "deleted group %s\n", json ? json_escape(group).c_str() : group.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    auto a = parse(argc, argv);
    if (a.flag("--help")) {
      std::fputs(usage, stdout);
      return 0;
    }
    if (a.positional.empty()) throw usage_error{"no command given"};
    const std::string& cmd = a.positional[0];
    if (cmd == "topic") return topic_command(a);
    if (cmd == "produce") return produce_command(a);
    if (cmd == "consume") return consume_command(a);
    if (cmd == "cluster") return cluster_command(a);
    if (cmd == "group") return group_command(a);
    throw usage_error{"unknown command '" + cmd + "'"};
  } catch (const usage_error& e) {
    std::fprintf(stderr, "runnelctl: %s (see runnelctl --help)\n", e.what.c_str());
    return 2;
  }
}
