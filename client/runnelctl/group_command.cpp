// runnelctl group: list, describe, lag, reset-offsets, delete.

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

namespace runnelctl {

namespace {

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

std::string share_json(const std::vector<runnel::share_partition_stats>& rows) {
  std::string s = "[";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    s += (i ? "," : "") + std::string("{\"topic\":\"") + json_escape(r.partition.topic) +
         "\",\"partition\":" + std::to_string(r.partition.partition) + ",\"start_offset\":" +
         std::to_string(r.start_offset) + ",\"end_offset\":" + std::to_string(r.end_offset) +
         ",\"available\":" + std::to_string(r.available) + ",\"acquired\":" + std::to_string(r.acquired) +
         ",\"acknowledged\":" + std::to_string(r.acknowledged) + ",\"archived\":" + std::to_string(r.archived) +
         ",\"oldest_lock_age_ms\":" + std::to_string(r.oldest_lock_age_ms) + "}";
  }
  return s + "]";
}

void print_share_table(const std::vector<runnel::share_partition_stats>& rows) {
  std::printf("%-24s %-9s %-12s %-12s %-9s %-9s %-9s %s\n", "TOPIC", "PARTITION", "START", "END", "ACQUIRED",
              "AVAILABLE", "ARCHIVED", "OLDEST-LOCK-MS");
  for (const auto& r : rows) {
    std::printf("%-24s %-9d %-12lld %-12lld %-9d %-9d %-9d %lld\n", r.partition.topic.c_str(), r.partition.partition,
                static_cast<long long>(r.start_offset), static_cast<long long>(r.end_offset), r.acquired, r.available,
                r.archived, static_cast<long long>(r.oldest_lock_age_ms));
  }
}

int group_describe(const args& a, const std::string& group) {
  auto admin = connect_admin(a);
  auto d = check(admin->describe_group(group));
  const bool share = d.type == "share";
  // A share group commits no offsets: its partitions' live counts instead of lag.
  std::vector<runnel::partition_lag> lag;
  std::vector<runnel::share_partition_stats> shares;
  if (share) {
    shares = check(admin->describe_share_partitions(d));
  } else {
    lag = check(admin->group_lag(d));
  }
  if (a.flag("--json")) {
    std::printf("{\"group_id\":\"%s\",\"type\":\"%s\",\"state\":\"%s\",\"coordinator\":%d,\"group_epoch\":%d,"
                "\"assignment_epoch\":%d,\"assignor\":\"%s\",\"members\":[",
                json_escape(d.group_id).c_str(), json_escape(d.type).c_str(), json_escape(d.state).c_str(), d.coordinator,
                d.group_epoch, d.assignment_epoch, json_escape(d.assignor).c_str());
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
    if (share) {
      std::printf("],\"partitions\":%s}\n", share_json(shares).c_str());
    } else {
      std::printf("],\"partitions\":%s,\"total_lag\":%lld}\n", lag_json(lag).c_str(),
                  static_cast<long long>(total_lag(lag)));
    }
    return 0;
  }
  std::printf("group %s\ntype: %s\nstate: %s\ncoordinator: %d\ngroup epoch: %d\nassignment epoch: %d\nassignor: %s\nmembers: %zu\n",
              d.group_id.c_str(), d.type.c_str(), d.state.c_str(), d.coordinator, d.group_epoch, d.assignment_epoch,
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
  if (share) {
    print_share_table(shares);
  } else {
    print_lag_table(lag);
  }
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

}  // namespace

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

}  // namespace runnelctl
