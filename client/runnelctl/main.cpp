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

#include "client/runnelctl/cli.h"

namespace {

using namespace runnelctl;

constexpr const char* usage = R"(usage: runnelctl [--bootstrap HOST:PORT[,HOST:PORT...] | zk://HOST:PORT/CHROOT] [--json] COMMAND
  topic create NAME --partitions N [--replicas R] [--config k=v]...
  topic list
  topic describe NAME
  topic alter NAME --config k=v...        (k= with no value removes the override)
  topic delete NAME
  produce TOPIC [--key-separator SEP] [--acks 0|1|all] [--partition P] [--msg-id-from-key]
                                                            (one record per stdin line; --msg-id-from-key: the key is
                                                            also the record's runnel.msg.id)
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
  dlq list                                 (dead-letter topics: records per partition, oldest and newest failure)
  dlq inspect TOPIC [--partition P [--offset O]] [--max-messages N]
                                           (records with their failure headers; default the first 20)
  dlq replay TOPIC [--to ORIGINAL|TOPIC] [--from X] [--until Y] [--partition P] [--execute]
                                           (X, Y: offsets or ISO 8601 times, --until exclusive; prints the plan;
                                           --execute re-produces the records without their failure headers,
                                           skipping what an earlier replay to the same target sent)
  queue create NAME --partitions N [--group G] [--dlq TOPIC] [--lock-ms L] [--max-attempts A] [--config k=v]...
                                           (a topic and a share group G, default NAME, with those settings)
  queue send NAME [--key-separator SEP] [--acks 0|1|all]   (one message per stdin line, as produce)
  queue receive NAME [--group G] [--max-messages N] [--ack accept|release|reject|none] [--wait-ms W]
                                           (N messages, default 1, one value per line; stops after W ms, default
                                           5000, without one; none: not acknowledged, released when it leaves)
bootstrap defaults to $RUNNEL_BOOTSTRAP or 127.0.0.1:9292; the first broker of the list that answers is used
)";

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
  if (a.flag("--msg-id-from-key")) {
    if (!sep) throw usage_error{"--msg-id-from-key needs --key-separator"};
    cfg.msg_id_of = [](std::string_view, std::optional<std::string_view> key, std::string_view) {
      return key ? std::optional<std::string>(std::string(*key)) : std::nullopt;
    };
  }
  auto producer = check(runnel::producer::connect(cfg));
  std::atomic<std::uint64_t> ok{0}, failed{0}, repeats{0};
  std::mutex err_mu;
  std::optional<runnel::error> first_error;
  auto cb = [&](const runnel::result<runnel::delivery>& r) {
    if (r) {
      ++ok;
      if (r->duplicate) ++repeats;
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
    std::printf("{\"topic\":\"%s\",\"produced\":%llu,\"duplicates\":%llu,\"failed\":0}\n", json_escape(topic).c_str(),
                static_cast<unsigned long long>(ok.load() - repeats.load()), static_cast<unsigned long long>(repeats.load()));
  } else if (repeats.load() > 0) {
    std::fprintf(stderr, "produced %llu records to %s (%llu more were repeats the message-id window dropped)\n",
                 static_cast<unsigned long long>(ok.load() - repeats.load()), topic.c_str(),
                 static_cast<unsigned long long>(repeats.load()));
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
    if (cmd == "dlq") return dlq_command(a);
    if (cmd == "queue" && a.positional.size() >= 2 && a.positional[1] == "send") {
      if (a.positional.size() != 3) throw usage_error{"queue send needs exactly one queue name"};
      args as_produce = a;
      as_produce.positional = {"produce", a.positional[2]};
      as_produce.options.erase("--group");
      return produce_command(as_produce);
    }
    if (cmd == "queue") return queue_command(a);
    throw usage_error{"unknown command '" + cmd + "'"};
  } catch (const usage_error& e) {
    std::fprintf(stderr, "runnelctl: %s (see runnelctl --help)\n", e.what.c_str());
    return 2;
  }
}
