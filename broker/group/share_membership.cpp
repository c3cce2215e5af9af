#include "broker/group/share_membership.h"

#include <fmt/format.h>

#include <algorithm>

#include "broker/group/logger.h"

namespace runnel::group {

namespace {

// Every partition of the topics `m` subscribes to that exist in `topics`.
std::set<topic_partition> partitions_of(const member& m, const topic_counts& topics) {
  std::set<topic_partition> out;
  for (const auto& name : m.topic_names) {
    auto t = topics.find(name);
    if (t == topics.end()) continue;
    for (std::int32_t p = 0; p < t->second; ++p) out.emplace(name, partition_id(p));
  }
  return out;
}

// Assigns every member its partitions; one epoch bump for the whole call
// when anything changed (or `changed` says it did already).
void assign_all(group& g, const topic_counts& topics, bool changed) {
  for (auto& [id, m] : g.members) {
    auto parts = partitions_of(m, topics);
    if (parts != m.assigned) {
      m.assigned = std::move(parts);
      changed = true;
    }
  }
  if (!changed) return;
  ++g.epoch;
  g.assignment_epoch = g.epoch;
}

}  // namespace

std::expected<heartbeat_result, error> share_heartbeat(group& g, const share_heartbeat_request& r,
                                                       const topic_counts& topics, clock_type::time_point now,
                                                       const group_limits& limits) {
  auto fail = [](errc e, std::string msg) { return std::unexpected(error(e, std::move(msg))); };
  if (r.member_epoch < -1) return fail(errc::invalid_request, fmt::format("member epoch {}", r.member_epoch));
  auto it = g.members.find(r.member_id);
  if (r.member_epoch == -1) {
    if (it == g.members.end()) return fail(errc::unknown_member, fmt::format("member '{}' of share group {}", r.member_id, g.id));
    logger().info("share group {}: member {} left", g.id, r.member_id);
    g.members.erase(it);
    assign_all(g, topics, true);
    return heartbeat_result{r.member_id, -1, 0, {}};
  }
  bool changed = false;
  if (r.member_epoch == 0) {
    if (it == g.members.end()) {
      if (g.members.size() >= limits.max_members) {
        return fail(errc::invalid_request, fmt::format("share group {} has {} members, the maximum", g.id, g.members.size()));
      }
      member fresh;
      fresh.id = r.member_id.empty() ? generate_member_id() : r.member_id;
      fresh.session_timeout_ms = static_cast<std::int32_t>(limits.session_timeout.count());
      it = g.members.emplace(fresh.id, std::move(fresh)).first;
      logger().info("share group {}: member {} joined", g.id, it->first);
      changed = true;
    }
    // A join under an id already in the group is that member again (its
    // answer was lost): it carries on.
  } else {
    if (it == g.members.end()) return fail(errc::unknown_member, fmt::format("member '{}' of share group {}", r.member_id, g.id));
    if (r.member_epoch != it->second.epoch && r.member_epoch != it->second.previous_epoch) {
      return fail(errc::fenced_member_epoch, fmt::format("member '{}' of share group {}: epoch {}, the group's is {}",
                                                         r.member_id, g.id, r.member_epoch, it->second.epoch));
    }
  }
  member& m = it->second;
  m.rack = r.rack;
  m.client_id = r.client_id;
  m.client_host = r.client_host;
  if (r.topic_names && set_topic_names(m, *r.topic_names)) changed = true;
  assign_all(g, topics, changed);
  if (m.epoch != g.epoch) {
    m.previous_epoch = m.epoch;
    m.epoch = g.epoch;
  }
  m.session_deadline = now + std::chrono::milliseconds(m.session_timeout_ms);
  return heartbeat_result{m.id, m.epoch, static_cast<std::int32_t>(limits.heartbeat_interval.count()), m.assigned};
}

std::vector<std::string> share_expire(group& g, const topic_counts& topics, clock_type::time_point now) {
  std::vector<std::string> removed;
  for (auto it = g.members.begin(); it != g.members.end();) {
    if (it->second.session_deadline > now) {
      ++it;
      continue;
    }
    logger().info("share group {}: member {} timed out", g.id, it->first);
    removed.push_back(it->first);
    it = g.members.erase(it);
  }
  assign_all(g, topics, !removed.empty());
  return removed;
}

}  // namespace runnel::group
