#pragma once
// Consumer group vocabulary: members, groups and committed offsets as the
// coordinator holds them (docs/groups.md). A group belongs to one
// partition of __consumer_offsets; its state is the records of that
// partition (records.h), replayed on load.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "broker/group/assignor.h"
#include "schemas/types.h"

namespace runnel::group {

using clock_type = std::chrono::steady_clock;

inline constexpr std::string_view offsets_topic = "__consumer_offsets";
inline constexpr std::size_t max_group_id_length = 255;
inline constexpr std::size_t max_commit_metadata_bytes = 4096;  // Kafka's offset.metadata.max.bytes

// hash(group id) mod partitions: Java's String.hashCode over the UTF-8
// bytes taken as Latin-1, made non-negative as Kafka's Utils.abs does.
std::int32_t offsets_partition_for(std::string_view group_id, std::int32_t partitions);

// Share groups (ADR 0016): a record's state in a share partition.
enum class share_record_state : std::uint8_t {
  available = 0,
  acquired = 1,
  acknowledged = 2,
  archived = 3,
  dead_lettering = 4,  // archived, its DLQ copy not yet acknowledged
};
std::string_view state_name(share_record_state s);

// The persisted form: records in flight as runs of equal state and
// delivery count over consecutive offsets (acquired ones saved as
// available: a lock does not outlive the leader that granted it).
struct share_state_run {
  offset first{0};
  offset last{0};
  share_record_state state = share_record_state::available;
  std::uint16_t delivery_count = 0;
  auto operator<=>(const share_state_run&) const = default;
};
struct share_state {
  offset start{0};
  offset end{0};
  std::vector<share_state_run> runs;  // ascending, within [start, end)
  std::int32_t leader_epoch = -1;     // of the partition leader that wrote it (cluster mode)
  auto operator<=>(const share_state&) const = default;
};

struct committed_offset {
  std::int64_t offset = -1;
  std::int32_t leader_epoch = -1;
  std::string metadata;
  std::int64_t commit_timestamp_ms = -1;
};

struct member {
  // Persisted (the group record).
  std::string id;
  std::string instance_id;  // static membership (group.instance.id); empty: dynamic
  std::string client_id;
  std::string client_host;
  std::string rack;
  std::int32_t epoch = 0;
  std::int32_t previous_epoch = -1;
  std::int32_t rebalance_timeout_ms = 300'000;
  std::int32_t session_timeout_ms = 45'000;
  std::vector<std::string> topic_names;  // subscribed by name
  std::string regex;                     // subscribed by pattern (ECMAScript, whole name)
  std::set<topic_partition> assigned;    // it may consume these now
  std::set<topic_partition> revoking;    // it must release these before it moves on
  bool left_static = false;              // a static member that left for now (epoch -2)
  // Runtime only.
  std::optional<std::set<std::string>> resolved;  // topic names it subscribes to now
  clock_type::time_point session_deadline{};
  clock_type::time_point revoke_deadline{};
};

// Group configs (group_config.h): key -> value, the overrides a group carries.
using group_configs = std::map<std::string, std::string>;

// A group's type, fixed when it is created (ADR 0016: one namespace of ids).
enum class group_type : std::uint8_t { consumer = 0, share = 1 };
std::string_view type_name(group_type t);

struct group {
  std::string id;
  group_type type = group_type::consumer;
  std::int32_t epoch = 0;             // bumps on every change of members, subscriptions or partition counts
  std::int32_t assignment_epoch = 0;  // the group epoch the target assignment was computed for
  std::string assignor;               // empty: the broker's default
  std::map<std::string, member> members;
  assignment target;                            // member id -> partitions it is heading for
  std::map<std::string, std::int32_t> subscribed;  // partition counts of subscribed topics at the last bump
  std::map<topic_partition, committed_offset> offsets;
  // Share groups: each share partition's persisted state (share_partition.h).
  std::map<topic_partition, share_state> share_states;
  group_configs configs;  // overrides set with AlterConfigs (group_config.h); in the group record
  bool has_record = false;  // a group record exists in the log (else only offsets)
  // Runtime only: the sequence of the commit whose value `offsets` holds,
  // per partition, so commits that finish out of order never go back.
  std::map<topic_partition, std::uint64_t> applied_seq;
};

// "empty", "assigning", "reconciling" or "stable".
std::string_view state_name(const group& g);

}  // namespace runnel::group
