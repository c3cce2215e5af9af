#pragma once
// Group configs (ADR 0016): settings a share group carries in its group
// record, set with AlterConfigs on the group, each overriding the broker's
// default of the same name for that group alone.
//
//   share.record.lock.duration.ms   100..3600000   how long an acquired record is the member's
//   share.delivery.attempts.max     1..1000        deliveries before a record is archived
//   share.dlq.topic                 a topic name   archived records are copied there (docs/queues.md)
//
// Only share groups have configs so far: setting one on a group that does
// not exist creates it as a share group.

#include <expected>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/group/errc.h"
#include "broker/group/share_partition.h"
#include "broker/group/types.h"

namespace runnel::group {

inline constexpr std::string_view lock_duration_key = "share.record.lock.duration.ms";
inline constexpr std::string_view delivery_attempts_key = "share.delivery.attempts.max";
inline constexpr std::string_view dlq_topic_key = "share.dlq.topic";

// `current` with `changes` applied (an empty value removes a key), or
// invalid_config naming the first bad key or value.
std::expected<group_configs, error> apply_group_config_changes(const group_configs& current,
                                                               const group_configs& changes);

// The limits of a share group whose broker defaults are `defaults`.
share_limits share_limits_of(const group_configs& configs, const share_limits& defaults);
// The group's DLQ topic (empty: none).
std::string dlq_topic_of(const group_configs& configs);

// Every key with its effective value and whether it is the default.
struct described_config {
  std::string key;
  std::string value;
  bool is_default = true;
};
std::vector<described_config> describe_group_configs(const group_configs& configs, const share_limits& defaults);

}  // namespace runnel::group
