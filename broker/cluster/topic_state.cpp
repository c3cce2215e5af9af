#include "broker/cluster/topic_state.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

#include <fmt/format.h>

namespace runnel::cluster {

namespace {

constexpr std::string_view topic_magic = "runnel-topic 1";

std::expected<std::int32_t, std::string> parse_i32(std::string_view s, std::string_view what) {
  std::int32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) {
    return std::unexpected(fmt::format("{}: '{}' is not an integer", what, s));
  }
  return v;
}

std::expected<std::vector<std::int32_t>, std::string> parse_ids(std::string_view s, std::string_view what) {
  std::vector<std::int32_t> ids;
  if (s.empty()) return ids;
  while (true) {
    const auto comma = s.find(',');
    auto id = parse_i32(s.substr(0, comma), what);
    if (!id) return std::unexpected(id.error());
    if (*id < 0) return std::unexpected(fmt::format("{}: negative broker id {}", what, *id));
    if (std::find(ids.begin(), ids.end(), *id) != ids.end()) {
      return std::unexpected(fmt::format("{}: broker {} listed twice", what, *id));
    }
    ids.push_back(*id);
    if (comma == std::string_view::npos) return ids;
    s.remove_prefix(comma + 1);
  }
}

std::string join_ids(const std::vector<std::int32_t>& ids) {
  std::string s;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(ids[i]);
  }
  return s;
}

// Splits on single spaces: "a b c" -> {a, b, c}.
std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> w;
  while (!line.empty()) {
    const auto sp = line.find(' ');
    w.push_back(line.substr(0, sp));
    if (sp == std::string_view::npos) break;
    line.remove_prefix(sp + 1);
  }
  return w;
}

}  // namespace

std::string topic_path(std::string_view topic) { return fmt::format("/topics/{}", topic); }
std::string partitions_path(std::string_view topic) { return fmt::format("/topics/{}/partitions", topic); }
std::string partition_path(std::string_view topic, std::int32_t partition) {
  return fmt::format("/topics/{}/partitions/{}", topic, partition);
}
std::string state_path(std::string_view topic, std::int32_t partition) {
  return fmt::format("/topics/{}/partitions/{}/state", topic, partition);
}

std::string encode_topic(const topic_assignment& a) {
  std::string s(topic_magic);
  s += fmt::format("\npartitions {}", a.replicas.size());
  for (std::size_t p = 0; p < a.replicas.size(); ++p) s += fmt::format("\nreplicas {} {}", p, join_ids(a.replicas[p]));
  for (const auto& [k, v] : a.config) s += fmt::format("\nconfig {} {}", k, v);
  return s;
}

namespace {

std::expected<topic_assignment, std::string> parse_topic(std::string_view data) {
  topic_assignment a;
  std::int32_t count = -1;
  std::size_t line_no = 0;
  while (!data.empty() || line_no == 0) {
    const auto nl = data.find('\n');
    const std::string_view line = data.substr(0, nl);
    data = nl == std::string_view::npos ? std::string_view{} : data.substr(nl + 1);
    ++line_no;
    auto fail = [&](const std::string& why) { return std::unexpected(fmt::format("line {}: {}", line_no, why)); };
    if (line_no == 1) {
      if (line != topic_magic) return fail(fmt::format("expected '{}'", topic_magic));
      continue;
    }
    const auto w = words(line);
    if (w.size() == 2 && w[0] == "partitions" && count < 0) {
      auto n = parse_i32(w[1], "partitions");
      if (!n) return fail(n.error());
      if (*n < 1 || *n > meta::max_partitions) return fail(fmt::format("partitions {} out of range", *n));
      count = *n;
      a.replicas.resize(static_cast<std::size_t>(count));
    } else if (w.size() == 3 && w[0] == "replicas" && count > 0) {
      auto p = parse_i32(w[1], "partition");
      if (!p) return fail(p.error());
      if (*p < 0 || *p >= count) return fail(fmt::format("partition {} out of range", *p));
      auto ids = parse_ids(w[2], "replicas");
      if (!ids) return fail(ids.error());
      if (ids->empty() || !a.replicas[static_cast<std::size_t>(*p)].empty()) {
        return fail(fmt::format("replicas of partition {} empty or repeated", *p));
      }
      a.replicas[static_cast<std::size_t>(*p)] = std::move(*ids);
    } else if (w.size() >= 3 && w[0] == "config") {
      const auto value_at = line.find(' ', line.find(' ') + 1) + 1;
      a.config[std::string(w[1])] = std::string(line.substr(value_at));
    } else {
      return fail(fmt::format("unexpected '{}'", line));
    }
  }
  if (count < 0) return std::unexpected("no partitions line");
  for (std::size_t p = 0; p < a.replicas.size(); ++p) {
    if (a.replicas[p].empty()) return std::unexpected(fmt::format("partition {} has no replicas", p));
  }
  return a;
}

}  // namespace

std::expected<topic_assignment, error> decode_topic(std::string_view data) {
  auto a = parse_topic(data);
  if (!a) return std::unexpected(error{errc::malformed_state, std::move(a.error())});
  return std::move(*a);
}

std::string encode_state(const leader_state& s) {
  return fmt::format("leader {} epoch {} isr {}", s.leader, s.leader_epoch, join_ids(s.isr));
}

namespace {

std::expected<leader_state, std::string> parse_state(std::string_view data) {
  const auto w = words(data);
  if ((w.size() != 6 && w.size() != 5) || w[0] != "leader" || w[2] != "epoch" || w[4] != "isr") {
    return std::unexpected(fmt::format("malformed partition state '{}'", data));
  }
  leader_state s;
  auto leader = parse_i32(w[1], "leader");
  if (!leader) return std::unexpected(leader.error());
  auto epoch = parse_i32(w[3], "epoch");
  if (!epoch) return std::unexpected(epoch.error());
  if (*leader < -1 || *epoch < 0) return std::unexpected(fmt::format("malformed partition state '{}'", data));
  s.leader = *leader;
  s.leader_epoch = *epoch;
  if (w.size() == 6) {
    auto isr = parse_ids(w[5], "isr");
    if (!isr) return std::unexpected(isr.error());
    s.isr = std::move(*isr);
  }
  return s;
}

}  // namespace

std::expected<leader_state, error> decode_state(std::string_view data) {
  auto s = parse_state(data);
  if (!s) return std::unexpected(error{errc::malformed_state, std::move(s.error())});
  return std::move(*s);
}

std::expected<std::vector<std::vector<std::int32_t>>, error> assign_replicas(
    const std::vector<broker_registration>& live, std::int32_t partitions, std::int32_t replication_factor,
    std::uint32_t start) {
  if (replication_factor < 1) {
    return std::unexpected(error{errc::invalid_replication, fmt::format("replication factor {} < 1", replication_factor)});
  }
  if (static_cast<std::size_t>(replication_factor) > live.size()) {
    return std::unexpected(error{errc::not_enough_brokers, fmt::format("replication factor {} is more than the {} live brokers",
                                                                       replication_factor, live.size())});
  }
  // Rack-alternating order: r1b1, r2b1, r3b1, r1b2, ... (Kafka's order).
  std::map<std::string, std::vector<std::int32_t>> by_rack;
  for (const auto& b : live) by_rack[b.rack].push_back(b.id);
  for (auto& [rack, ids] : by_rack) std::sort(ids.begin(), ids.end());
  std::vector<std::int32_t> order;
  for (std::size_t i = 0; order.size() < live.size(); ++i) {
    for (const auto& [rack, ids] : by_rack) {
      if (i < ids.size()) order.push_back(ids[i]);
    }
  }
  const auto n = order.size();
  std::vector<std::vector<std::int32_t>> out(static_cast<std::size_t>(partitions));
  for (std::size_t p = 0; p < out.size(); ++p) {
    for (std::size_t r = 0; r < static_cast<std::size_t>(replication_factor); ++r) {
      out[p].push_back(order[(start + p + r) % n]);
    }
  }
  return out;
}

namespace {

bool contains(const std::vector<std::int32_t>& v, std::int32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

}  // namespace

std::vector<state_change> plan_elections(const topics_view& topics, const std::set<std::int32_t>& live,
                                         const std::function<bool(const topic_view&)>& unclean) {
  std::vector<state_change> out;
  for (const auto& [name, t] : topics) {
    for (std::size_t p = 0; p < t.partitions.size() && p < t.assignment.replicas.size(); ++p) {
      const auto& pv = t.partitions[p];
      if (!pv.known) continue;
      const auto& s = pv.state;
      const auto& replicas = t.assignment.replicas[p];
      std::vector<std::int32_t> live_isr;
      for (auto id : s.isr) {
        if (live.contains(id)) live_isr.push_back(id);
      }
      state_change c{name, static_cast<std::int32_t>(p), s, pv.version, {}};
      if (s.leader >= 0 && live.contains(s.leader)) {
        if (live_isr.size() == s.isr.size()) continue;
        c.next.isr = live_isr;
        c.why = "dead brokers leave the ISR";
        out.push_back(std::move(c));
        continue;
      }
      // No live leader: the first live ISR member in assignment order.
      std::int32_t next = -1;
      for (auto id : replicas) {
        if (contains(live_isr, id)) {
          next = id;
          break;
        }
      }
      if (next >= 0) {
        c.next = {next, s.leader_epoch + 1, live_isr};
        c.why = fmt::format("leader {} is gone; {} from the ISR takes over", s.leader, next);
      } else if (unclean && unclean(t)) {
        for (auto id : replicas) {
          if (live.contains(id)) {
            next = id;
            break;
          }
        }
        if (next < 0) {
          if (s.leader == -1) continue;
          c.next = {-1, s.leader_epoch + 1, s.isr};
          c.why = "no live replica: offline";
        } else {
          c.next = {next, s.leader_epoch + 1, {next}};
          c.why = fmt::format("UNCLEAN election: {} is not in the ISR; records may be lost", next);
        }
      } else {
        if (s.leader == -1) continue;  // already offline; wait for an ISR member
        c.next = {-1, s.leader_epoch + 1, s.isr};
        c.why = "no live ISR member: offline until one returns";
      }
      out.push_back(std::move(c));
    }
  }
  return out;
}

std::vector<state_change> plan_handover(const topics_view& topics, std::int32_t me, const std::set<std::int32_t>& live) {
  std::vector<state_change> out;
  for (const auto& [name, t] : topics) {
    for (std::size_t p = 0; p < t.partitions.size() && p < t.assignment.replicas.size(); ++p) {
      const auto& pv = t.partitions[p];
      if (!pv.known || pv.state.leader != me) continue;
      std::int32_t next = -1;
      for (auto id : t.assignment.replicas[p]) {
        if (id != me && live.contains(id) && contains(pv.state.isr, id)) {
          next = id;
          break;
        }
      }
      if (next < 0) continue;
      std::vector<std::int32_t> isr;
      for (auto id : pv.state.isr) {
        if (id != me) isr.push_back(id);
      }
      out.push_back({name, static_cast<std::int32_t>(p), {next, pv.state.leader_epoch + 1, isr}, pv.version,
                     fmt::format("controlled shutdown of {}: {} takes over", me, next)});
    }
  }
  return out;
}

}  // namespace runnel::cluster
