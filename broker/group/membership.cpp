#include "broker/group/membership.h"

#include <algorithm>
#include <random>
#include <regex>

#include <fmt/format.h>

#include "broker/group/logger.h"

namespace runnel::group {

namespace {

bool internal_topic(std::string_view name) { return name.starts_with("__"); }

// The topics `m` subscribes to now: its names that exist, and every
// existing non-internal topic its pattern matches whole.
std::set<std::string> resolve(const member& m, const topic_counts& topics) {
  std::set<std::string> out;
  for (const auto& t : m.topic_names) {
    if (topics.contains(t)) out.insert(t);
  }
  if (!m.regex.empty()) {
    // Validated when the member set it; a pattern that no longer compiles
    // (it cannot: the same library) matches nothing.
    try {
      const std::regex re(m.regex, std::regex::ECMAScript);
      for (const auto& [t, n] : topics) {
        if (!internal_topic(t) && std::regex_match(t, re)) out.insert(t);
      }
    } catch (const std::regex_error&) {
    }
  }
  return out;
}

const std::set<std::string>& resolved(member& m, const topic_counts& topics) {
  if (!m.resolved) m.resolved = resolve(m, topics);
  return *m.resolved;
}

// Bumps the group epoch when the partition counts of the subscribed topics
// differ from those of the last bump (topics created, deleted, grown).
void update_subscribed(group& g, const topic_counts& topics) {
  std::map<std::string, std::int32_t> now;
  for (auto& [id, m] : g.members) {
    // Resolved again from `topics`: a name subscribed before its topic
    // existed, or a topic deleted since, changes what the member gets.
    m.resolved.reset();
    for (const auto& t : resolved(m, topics)) now[t] = topics.find(t)->second;
  }
  if (now != g.subscribed) {
    g.subscribed = std::move(now);
    ++g.epoch;
  }
}

// One request (a heartbeat, a timer pass) is one change of the group: its
// epoch goes up by one however many things changed together (a join with
// its subscription and the partition counts it brings).
void bump_once(group& g, std::int32_t epoch_before) {
  if (g.epoch > epoch_before + 1) g.epoch = epoch_before + 1;
}

void maybe_assign(group& g, const topic_counts& topics, const group_limits& limits) {
  if (g.epoch <= g.assignment_epoch && g.target.size() == g.members.size()) return;
  assignor_input in;
  for (auto& [id, m] : g.members) in.members.push_back({id, resolved(m, topics)});
  for (const auto& [t, n] : g.subscribed) in.partitions[t] = n;
  in.previous = &g.target;
  std::string name = g.assignor;
  if (name.empty()) name = limits.default_assignor;
  assignor_fn fn = find_assignor(name);
  if (fn == nullptr) fn = assign_uniform;
  g.target = fn(in);
  g.assignment_epoch = g.epoch;
}

bool held_by_other(const group& g, const std::string& me, const topic_partition& tp) {
  return std::any_of(g.members.begin(), g.members.end(), [&](const auto& kv) {
    return kv.first != me && (kv.second.assigned.contains(tp) || kv.second.revoking.contains(tp));
  });
}

void reconcile(group& g, member& m, const std::optional<std::set<topic_partition>>& owned, clock_type::time_point now) {
  if (!m.revoking.empty() && owned) {
    const bool released = std::none_of(m.revoking.begin(), m.revoking.end(), [&](const auto& tp) { return owned->contains(tp); });
    if (released) m.revoking.clear();
  }
  if (!m.revoking.empty()) return;
  const auto& target = g.target[m.id];
  std::set<topic_partition> drop;
  std::set_difference(m.assigned.begin(), m.assigned.end(), target.begin(), target.end(), std::inserter(drop, drop.end()));
  if (!drop.empty()) {
    for (const auto& tp : drop) m.assigned.erase(tp);
    m.revoking = std::move(drop);
    m.revoke_deadline = now + std::chrono::milliseconds(m.rebalance_timeout_ms);
    return;
  }
  if (m.epoch != g.assignment_epoch) {
    m.previous_epoch = m.epoch;
    m.epoch = g.assignment_epoch;
  }
  for (const auto& tp : target) {
    if (!m.assigned.contains(tp) && !held_by_other(g, m.id, tp)) m.assigned.insert(tp);
  }
}

void remove_member(group& g, const std::string& id) {
  g.members.erase(id);
  g.target.erase(id);
  ++g.epoch;
}

std::expected<void, error> set_subscription(group& g, member& m, const heartbeat_request& r) {
  bool changed = r.topic_names && set_topic_names(m, *r.topic_names);
  if (r.regex && *r.regex != m.regex) {
    m.regex = *r.regex;
    changed = true;
  }
  if (changed) {
    m.resolved.reset();
    ++g.epoch;
  }
  return {};
}

}  // namespace

std::string generate_member_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string id;
  std::uint64_t bits[2] = {rng(), rng()};
  for (int i = 0; i < 22; ++i) {
    const int word = i < 11 ? 0 : 1;
    id.push_back(alphabet[bits[word] & 63]);
    bits[word] >>= 6;
  }
  return id;
}

std::expected<heartbeat_result, error> heartbeat(group& g, const heartbeat_request& r, const topic_counts& topics,
                                                 clock_type::time_point now, const group_limits& limits) {
  const std::int32_t epoch_before = g.epoch;
  auto fail = [](errc e, std::string msg) { return std::unexpected(error(e, std::move(msg))); };
  if (r.regex && !r.regex->empty()) {
    try {
      const std::regex re(*r.regex, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return fail(errc::invalid_regex, fmt::format("subscribed topic regex '{}': {}", *r.regex, e.what()));
    }
  }
  if (r.assignor && !r.assignor->empty() && find_assignor(*r.assignor) == nullptr) {
    return fail(errc::unsupported_assignor, fmt::format("assignor '{}' (uniform or range)", *r.assignor));
  }
  if (r.session_timeout_ms >= 0 &&
      (std::chrono::milliseconds(r.session_timeout_ms) < limits.min_session_timeout ||
       std::chrono::milliseconds(r.session_timeout_ms) > limits.max_session_timeout)) {
    return fail(errc::invalid_request, fmt::format("session timeout {} ms is outside [{}, {}] ms", r.session_timeout_ms,
                                                   limits.min_session_timeout.count(), limits.max_session_timeout.count()));
  }
  if (r.member_epoch < -2) return fail(errc::invalid_request, fmt::format("member epoch {}", r.member_epoch));

  // Leaving.
  if (r.member_epoch == -1 || r.member_epoch == -2) {
    auto it = g.members.find(r.member_id);
    if (it == g.members.end()) return fail(errc::unknown_member, fmt::format("member '{}' of group {}", r.member_id, g.id));
    heartbeat_result out{r.member_id, r.member_epoch, 0, {}};
    if (r.member_epoch == -2 && !it->second.instance_id.empty()) {
      // A static member keeps its partitions for its session timeout.
      it->second.left_static = true;
      logger().info("group {}: static member {} ({}) left for now", g.id, r.member_id, it->second.instance_id);
      return out;
    }
    logger().info("group {}: member {} left", g.id, r.member_id);
    remove_member(g, r.member_id);
    update_subscribed(g, topics);
    bump_once(g, epoch_before);
    maybe_assign(g, topics, limits);
    return out;
  }

  member* m = nullptr;
  if (r.member_epoch == 0) {
    if (!r.instance_id.empty()) {
      auto holder = std::find_if(g.members.begin(), g.members.end(),
                                 [&](const auto& kv) { return kv.second.instance_id == r.instance_id; });
      // A static member that left for now may come back under a new member
      // id or its own; one that did not leave holds its instance id.
      if (holder != g.members.end() && (holder->first != r.member_id || holder->second.left_static)) {
        if (!holder->second.left_static) {
          return fail(errc::unreleased_instance_id,
                      fmt::format("group {}: instance id '{}' is held by member {}", g.id, r.instance_id, holder->first));
        }
        // The static member returns under a new member id: same epoch and
        // partitions, nobody else rebalances.
        member back = std::move(holder->second);
        const std::string old_id = holder->first;
        g.members.erase(holder);
        back.id = r.member_id.empty() ? generate_member_id() : r.member_id;
        back.left_static = false;
        auto target = g.target.extract(old_id);
        if (!target.empty()) {
          target.key() = back.id;
          g.target.insert(std::move(target));
        }
        logger().info("group {}: static member {} is back as {}", g.id, r.instance_id, back.id);
        m = &g.members.emplace(back.id, std::move(back)).first->second;
      }
    }
    if (m == nullptr) {
      if (!r.member_id.empty() && g.members.contains(r.member_id)) {
        // It joins again (it was fenced on its side): start it afresh.
        remove_member(g, r.member_id);
      }
      if (g.members.size() >= limits.max_members) {
        return fail(errc::invalid_request, fmt::format("group {} has {} members, the maximum", g.id, g.members.size()));
      }
      member fresh;
      fresh.id = r.member_id.empty() ? generate_member_id() : r.member_id;
      fresh.instance_id = r.instance_id;
      fresh.epoch = 0;
      fresh.session_timeout_ms = static_cast<std::int32_t>(limits.session_timeout.count());
      logger().info("group {}: member {} joins{}", g.id, fresh.id,
                    r.instance_id.empty() ? std::string() : fmt::format(" (instance {})", r.instance_id));
      m = &g.members.emplace(fresh.id, std::move(fresh)).first->second;
      ++g.epoch;
    }
  } else {
    auto it = g.members.find(r.member_id);
    if (it == g.members.end()) return fail(errc::unknown_member, fmt::format("member '{}' of group {}", r.member_id, g.id));
    m = &it->second;
    if (r.member_epoch != m->epoch) {
      // The answer that moved it to its current epoch may have been lost:
      // its previous epoch is still good if it claims nothing it lacks.
      const bool lost_answer = r.member_epoch == m->previous_epoch && r.owned &&
                               std::all_of(r.owned->begin(), r.owned->end(), [&](const auto& tp) {
                                 return m->assigned.contains(tp) || m->revoking.contains(tp);
                               });
      if (!lost_answer) {
        return fail(errc::fenced_member_epoch, fmt::format("group {}: member {} is at epoch {}, the request has {}", g.id,
                                                           r.member_id, m->epoch, r.member_epoch));
      }
    }
  }

  if (!r.client_id.empty()) m->client_id = r.client_id;
  if (!r.client_host.empty()) m->client_host = r.client_host;
  if (!r.rack.empty()) m->rack = r.rack;
  if (r.rebalance_timeout_ms > 0) m->rebalance_timeout_ms = r.rebalance_timeout_ms;
  if (r.session_timeout_ms >= 0) m->session_timeout_ms = r.session_timeout_ms;
  m->session_deadline = now + std::chrono::milliseconds(m->session_timeout_ms);
  if (auto s = set_subscription(g, *m, r); !s) return std::unexpected(s.error());
  if (r.assignor && !r.assignor->empty() && *r.assignor != g.assignor) {
    g.assignor = *r.assignor;
    ++g.epoch;
  }
  update_subscribed(g, topics);
  bump_once(g, epoch_before);
  maybe_assign(g, topics, limits);
  reconcile(g, *m, r.owned, now);

  heartbeat_result out;
  out.member_id = m->id;
  out.member_epoch = m->epoch;
  out.heartbeat_interval_ms = static_cast<std::int32_t>(
      std::min<std::int64_t>(limits.heartbeat_interval.count(), std::max(1, m->session_timeout_ms / 3)));
  out.assignment = m->assigned;
  return out;
}

std::vector<std::string> expire(group& g, const topic_counts& topics, clock_type::time_point now,
                                const group_limits& limits) {
  std::vector<std::string> gone;
  for (const auto& [id, m] : g.members) {
    if (now >= m.session_deadline) {
      logger().info("group {}: member {} removed: no heartbeat for {} ms", g.id, id, m.session_timeout_ms);
      gone.push_back(id);
    } else if (!m.revoking.empty() && now >= m.revoke_deadline) {
      logger().info("group {}: member {} removed: it kept {} partitions past its rebalance timeout of {} ms", g.id, id,
                    m.revoking.size(), m.rebalance_timeout_ms);
      gone.push_back(id);
    }
  }
  if (gone.empty()) return gone;
  const std::int32_t epoch_before = g.epoch;
  for (const auto& id : gone) remove_member(g, id);
  update_subscribed(g, topics);
  bump_once(g, epoch_before);
  maybe_assign(g, topics, limits);
  return gone;
}

std::optional<clock_type::time_point> next_deadline(const group& g) {
  std::optional<clock_type::time_point> out;
  for (const auto& [id, m] : g.members) {
    auto d = m.session_deadline;
    if (!m.revoking.empty()) d = std::min(d, m.revoke_deadline);
    if (!out || d < *out) out = d;
  }
  return out;
}

void restart_deadlines(group& g, clock_type::time_point now) {
  for (auto& [id, m] : g.members) {
    m.session_deadline = now + std::chrono::milliseconds(m.session_timeout_ms);
    m.revoke_deadline = now + std::chrono::milliseconds(m.rebalance_timeout_ms);
  }
}

std::optional<error> check_commit(const group& g, std::string_view member_id, std::int32_t epoch,
                                  const topic_partition& tp) {
  if (member_id.empty()) {
    if (g.members.empty()) return std::nullopt;
    return error(errc::non_empty_group,
                 fmt::format("group {} has {} members: a commit without a member id needs an empty group", g.id,
                             g.members.size()));
  }
  auto it = g.members.find(std::string(member_id));
  if (it == g.members.end()) return error(errc::unknown_member, fmt::format("member '{}' of group {}", member_id, g.id));
  const member& m = it->second;
  if (epoch > m.epoch) {
    return error(errc::fenced_member_epoch,
                 fmt::format("group {}: member {} is at epoch {}, the commit has {}", g.id, member_id, m.epoch, epoch));
  }
  if (epoch < m.epoch && epoch != m.previous_epoch) {
    return error(errc::stale_member_epoch,
                 fmt::format("group {}: member {} is at epoch {}, the commit has {}", g.id, member_id, m.epoch, epoch));
  }
  if (!m.assigned.contains(tp) && !m.revoking.contains(tp)) {
    return error(errc::stale_member_epoch,
                 fmt::format("group {}: {} is not assigned to member {} at epoch {}", g.id, tp, member_id, m.epoch));
  }
  return std::nullopt;
}

bool set_topic_names(member& m, std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  if (names == m.topic_names) return false;
  m.topic_names = std::move(names);
  return true;
}

std::string_view type_name(group_type t) { return t == group_type::share ? "share" : "consumer"; }

std::string_view state_name(const group& g) {
  if (g.members.empty()) return "empty";
  if (g.epoch > g.assignment_epoch) return "assigning";
  for (const auto& [id, m] : g.members) {
    if (m.epoch != g.assignment_epoch || !m.revoking.empty()) return "reconciling";
    auto t = g.target.find(id);
    if (t != g.target.end() && t->second != m.assigned) return "reconciling";
  }
  return "stable";
}

std::int32_t offsets_partition_for(std::string_view group_id, std::int32_t partitions) {
  std::int32_t h = 0;
  for (char c : group_id) h = static_cast<std::int32_t>(31U * static_cast<std::uint32_t>(h) + static_cast<unsigned char>(c));
  // Kafka's Utils.abs: Integer.MIN_VALUE maps to 0.
  const std::int32_t non_negative = h == INT32_MIN ? 0 : (h < 0 ? -h : h);
  return partitions > 0 ? non_negative % partitions : 0;
}

}  // namespace runnel::group
