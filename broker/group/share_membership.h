#pragma once
// Share group membership (ADR 0016): pure functions over one share group,
// no I/O. Simpler than a consumer group's (membership.h): partitions are
// shared, not owned, so there is no reconciliation: every member is
// assigned every partition of the topics it subscribes to, and the records
// of a partition are divided among its members one acquisition at a time
// (share_partition.h).
//
//   join (epoch 0) / leave (-1) / subscription or partition count change
//     -> group epoch + 1; a member's epoch is the group epoch it last saw
//   a member's heartbeat carries its epoch, or the one before (an answer
//   it missed); anything else is fenced.
//   no heartbeat for the session timeout -> the member is removed.

#include <expected>
#include <optional>
#include <string>
#include <vector>

#include "broker/group/errc.h"
#include "broker/group/membership.h"
#include "broker/group/types.h"

namespace runnel::group {

struct share_heartbeat_request {
  std::string member_id;
  std::int32_t member_epoch = 0;  // 0 join, -1 leave, > 0 member
  std::string rack;
  std::string client_id;
  std::string client_host;
  std::optional<std::vector<std::string>> topic_names;  // nullopt: unchanged
};

// One heartbeat at `now`. Mutates `g` (a share group; the caller persists
// its record when that changed) or returns why the member is refused (g
// unchanged).
std::expected<heartbeat_result, error> share_heartbeat(group& g, const share_heartbeat_request& r,
                                                       const topic_counts& topics, clock_type::time_point now,
                                                       const group_limits& limits);

// Removes members past their session timeout and assigns again when a
// topic's partition count changed. Returns the removed member ids; `g`
// changed when they are not empty or its epoch moved.
std::vector<std::string> share_expire(group& g, const topic_counts& topics, clock_type::time_point now);

}  // namespace runnel::group
