#pragma once
// Helpers of the group tests: partition sets, a member's side of the
// heartbeat protocol, and checkers that read a group from the outside
// (its members' assigned/revoking sets, its persisted fields).

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "broker/group/membership.h"
#include "broker/group/types.h"

namespace runnel::group::testing {

inline topic_partition tp(std::string topic, std::int32_t p) { return topic_partition(std::move(topic), partition_id(p)); }

inline std::set<topic_partition> parts(const std::string& topic, std::initializer_list<std::int32_t> ps) {
  std::set<topic_partition> out;
  for (auto p : ps) out.insert(tp(topic, p));
  return out;
}

// Partitions 0..n-1 of `topic`.
inline std::set<topic_partition> all_parts(const std::string& topic, std::int32_t n) {
  std::set<topic_partition> out;
  for (std::int32_t p = 0; p < n; ++p) out.insert(tp(topic, p));
  return out;
}

inline std::set<topic_partition> unite(const std::set<topic_partition>& a, const std::set<topic_partition>& b) {
  std::set<topic_partition> out = a;
  out.insert(b.begin(), b.end());
  return out;
}

// A join (epoch 0) subscribing to `names`.
inline heartbeat_request join_request(std::string member_id, std::vector<std::string> names,
                                      std::string instance_id = {}) {
  heartbeat_request r;
  r.member_id = std::move(member_id);
  r.member_epoch = 0;
  r.instance_id = std::move(instance_id);
  r.topic_names = std::move(names);
  r.owned = std::set<topic_partition>{};
  return r;
}

// A heartbeat of a member at `epoch` reporting `owned`.
inline heartbeat_request beat_request(std::string member_id, std::int32_t epoch,
                                      std::optional<std::set<topic_partition>> owned) {
  heartbeat_request r;
  r.member_id = std::move(member_id);
  r.member_epoch = epoch;
  r.owned = std::move(owned);
  return r;
}

// Every violation of "a partition is in at most one member's assigned ∪
// revoking" and of "assigned and revoking of one member are disjoint".
inline std::vector<std::string> ownership_faults(const group& g) {
  std::vector<std::string> faults;
  std::map<topic_partition, std::string> holder;
  for (const auto& [id, m] : g.members) {
    for (const auto& p : m.assigned) {
      if (m.revoking.contains(p)) faults.push_back(fmt::format("{} both assigned and revoking at {}", p, id));
    }
    for (const auto& p : unite(m.assigned, m.revoking)) {
      auto [it, fresh] = holder.emplace(p, id);
      if (!fresh) faults.push_back(fmt::format("{} held by both {} and {}", p, it->second, id));
    }
  }
  return faults;
}

// Every difference between the persisted parts (and offsets) of two groups.
inline std::vector<std::string> group_differences(const group& a, const group& b) {
  std::vector<std::string> d;
  auto diff = [&](bool same, std::string what) {
    if (!same) d.push_back(fmt::format("group {}: {}", a.id, what));
  };
  diff(a.id == b.id, "id");
  diff(a.type == b.type, fmt::format("type {} vs {}", type_name(a.type), type_name(b.type)));
  diff(a.configs == b.configs, fmt::format("{} vs {} configs (or their values)", a.configs.size(), b.configs.size()));
  diff(a.share_states == b.share_states,
       fmt::format("{} vs {} share states (or their contents)", a.share_states.size(), b.share_states.size()));
  diff(a.epoch == b.epoch, fmt::format("epoch {} vs {}", a.epoch, b.epoch));
  diff(a.assignment_epoch == b.assignment_epoch,
       fmt::format("assignment epoch {} vs {}", a.assignment_epoch, b.assignment_epoch));
  diff(a.assignor == b.assignor, "assignor");
  diff(a.subscribed == b.subscribed, "subscribed partition counts");
  // A member without a target entry and one with an empty entry head for the same.
  auto target_of = [](const group& g, const std::string& id) {
    auto it = g.target.find(id);
    return it == g.target.end() ? std::set<topic_partition>{} : it->second;
  };
  diff(a.members.size() == b.members.size(), fmt::format("{} vs {} members", a.members.size(), b.members.size()));
  for (const auto& [id, m] : a.members) {
    auto it = b.members.find(id);
    if (it == b.members.end()) {
      d.push_back(fmt::format("group {}: member {} missing", a.id, id));
      continue;
    }
    const member& n = it->second;
    auto mdiff = [&](bool same, const char* what) { diff(same, fmt::format("member {}: {}", id, what)); };
    mdiff(m.instance_id == n.instance_id, "instance id");
    mdiff(m.client_id == n.client_id && m.client_host == n.client_host && m.rack == n.rack, "client");
    mdiff(m.epoch == n.epoch, "epoch");
    mdiff(m.previous_epoch == n.previous_epoch, "previous epoch");
    mdiff(m.rebalance_timeout_ms == n.rebalance_timeout_ms && m.session_timeout_ms == n.session_timeout_ms,
          "timeouts");
    mdiff(m.topic_names == n.topic_names && m.regex == n.regex, "subscription");
    mdiff(m.assigned == n.assigned, "assigned");
    mdiff(m.revoking == n.revoking, "revoking");
    mdiff(m.left_static == n.left_static, "left_static");
    mdiff(target_of(a, id) == target_of(b, id), "target");
  }
  diff(a.offsets.size() == b.offsets.size(), fmt::format("{} vs {} offsets", a.offsets.size(), b.offsets.size()));
  for (const auto& [p, o] : a.offsets) {
    auto it = b.offsets.find(p);
    if (it == b.offsets.end()) {
      d.push_back(fmt::format("group {}: offset of {} missing", a.id, p));
      continue;
    }
    const auto& q = it->second;
    diff(o.offset == q.offset && o.leader_epoch == q.leader_epoch && o.metadata == q.metadata &&
             o.commit_timestamp_ms == q.commit_timestamp_ms,
         fmt::format("offset of {}: {} vs {}", p, o.offset, q.offset));
  }
  return d;
}

}  // namespace runnel::group::testing
