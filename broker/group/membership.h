#pragma once
// The consumer group protocol's state machine (KIP-848, docs/groups.md):
// pure functions over one group, no I/O, so every rule has a unit test.
//
//   heartbeat --join/leave/subscribe--> group epoch + 1 --assignor--> target
//        |                                                   (assignment epoch = group epoch)
//        v
//   reconcile the member toward its target:
//     1. partitions it must give up leave `assigned` for `revoking`; its
//        epoch stays until it reports (owned partitions) that it let go
//     2. then its epoch becomes the assignment epoch and it gains the
//        target partitions that no other member holds (assigned or revoking)
//
// Invariant: a partition is in at most one member's assigned ∪ revoking,
// so no two members consume it at once. A member that does not heartbeat
// for its session timeout, or does not release within its rebalance
// timeout, is removed (fenced) and its partitions are free.

#include <chrono>
#include <expected>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "broker/group/errc.h"
#include "broker/group/types.h"

namespace runnel::group {

struct group_limits {
  std::chrono::milliseconds session_timeout{45'000};      // group.consumer.session.timeout.ms (default)
  std::chrono::milliseconds min_session_timeout{500};     // group.consumer.min.session.timeout.ms
  std::chrono::milliseconds max_session_timeout{600'000};  // group.consumer.max.session.timeout.ms
  std::chrono::milliseconds heartbeat_interval{5'000};    // group.consumer.heartbeat.interval.ms
  std::string default_assignor = "uniform";               // group.consumer.assignor
  std::size_t max_members = 10'000;                       // group.consumer.max.size
};

struct heartbeat_request {
  std::string member_id;
  std::int32_t member_epoch = 0;  // 0 join, -1 leave, -2 leave for now (static), > 0 member
  std::string instance_id;
  std::string rack;
  std::string client_id;
  std::string client_host;
  std::int32_t rebalance_timeout_ms = -1;
  std::int32_t session_timeout_ms = -1;
  std::optional<std::vector<std::string>> topic_names;  // nullopt: unchanged
  std::optional<std::string> regex;                     // nullopt: unchanged
  std::optional<std::string> assignor;                  // nullopt: unchanged
  std::optional<std::set<topic_partition>> owned;       // nullopt: unchanged since the last report
};

struct heartbeat_result {
  std::string member_id;
  std::int32_t member_epoch = 0;
  std::int32_t heartbeat_interval_ms = 0;
  std::set<topic_partition> assignment;
};

// Topics a group may subscribe to, with their partition counts.
using topic_counts = std::map<std::string, std::int32_t, std::less<>>;

// One heartbeat at `now`. Mutates `g` (the caller persists it when its
// record changed) or returns why the member is refused (g unchanged).
std::expected<heartbeat_result, error> heartbeat(group& g, const heartbeat_request& r, const topic_counts& topics,
                                                 clock_type::time_point now, const group_limits& limits);

// Removes members past their session timeout and members that kept
// partitions past their rebalance timeout; recomputes the target when
// that changed the group (with the group's assignor, else limits'
// default). Returns the removed member ids.
std::vector<std::string> expire(group& g, const topic_counts& topics, clock_type::time_point now,
                                const group_limits& limits);

// The earliest session or revocation deadline of `g` (nullopt: no members).
std::optional<clock_type::time_point> next_deadline(const group& g);

// Whether `member_id` at `epoch` may commit an offset for `tp`. An empty
// member id is a commit without a member: allowed only while the group has
// no members.
std::optional<error> check_commit(const group& g, std::string_view member_id, std::int32_t epoch,
                                  const topic_partition& tp);

// Sets m's subscribed topic names (sorted, without repeats); true when they changed.
bool set_topic_names(member& m, std::vector<std::string> names);

// Starts the timers of every member (after the group was loaded).
void restart_deadlines(group& g, clock_type::time_point now);

// A fresh member id: 22 characters of URL-safe base64 (128 random bits).
std::string generate_member_id();

}  // namespace runnel::group
