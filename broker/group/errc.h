#pragma once
// Consumer group errors; each maps to one wire error code at the network
// edge (net::to_wire).

#include <string>
#include <system_error>

namespace runnel::group {

enum class errc {
  coordinator_not_available = 1,  // COORDINATOR_NOT_AVAILABLE: the offsets partition has no leader
  not_coordinator,                // NOT_COORDINATOR
  load_in_progress,               // COORDINATOR_LOAD_IN_PROGRESS
  unknown_member,                 // UNKNOWN_MEMBER_ID
  fenced_member_epoch,            // FENCED_MEMBER_EPOCH
  stale_member_epoch,             // STALE_MEMBER_EPOCH
  invalid_group_id,               // INVALID_GROUP_ID
  group_not_found,                // GROUP_ID_NOT_FOUND
  non_empty_group,                // NON_EMPTY_GROUP
  unreleased_instance_id,         // UNRELEASED_INSTANCE_ID
  invalid_regex,                  // INVALID_REGULAR_EXPRESSION
  unsupported_assignor,           // UNSUPPORTED_ASSIGNOR
  unknown_topic_or_partition,     // UNKNOWN_TOPIC_OR_PARTITION
  invalid_request,                // INVALID_REQUEST
  invalid_record_state,           // INVALID_RECORD_STATE: a share acknowledgement the record's state refuses
  inconsistent_group_type,        // INCONSISTENT_GROUP_TYPE: a consumer group's id used as a share group, or back
  invalid_config,                 // INVALID_CONFIG: a group config key or value the broker refuses
  not_leader,                     // NOT_LEADER: a share fetch at a broker that does not lead the partition
  fenced_leader_epoch,            // FENCED_LEADER_EPOCH: a share state write from a deposed partition leader
};

const std::error_category& error_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

// An error with the text the user sees (names the group, member or partition).
struct error {
  error() = default;
  error(std::error_code c, std::string m) : code(c), message(std::move(m)) {}
  std::error_code code;
  std::string message;
};

}  // namespace runnel::group

template <>
struct std::is_error_code_enum<runnel::group::errc> : std::true_type {};
