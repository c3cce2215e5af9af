#pragma once
// Consumer group vocabulary shared by runnel::consumer and runnel::admin
// (docs/groups.md).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runnel/record.h"

namespace runnel {

// A committed position: the next offset the group will consume.
struct offset_and_metadata {
  std::int64_t offset = -1;
  std::string metadata;
  std::int64_t commit_timestamp_ms = -1;  // set by the coordinator (reads only)
  std::int32_t leader_epoch = -1;
};

struct group_listing {
  std::string group_id;
  std::string state;  // empty, assigning, reconciling, stable
  std::int32_t group_epoch = 0;
  std::int32_t members = 0;
};

struct group_member_description {
  std::string member_id;
  std::string instance_id;
  std::string client_id;
  std::string client_host;
  std::int32_t member_epoch = 0;
  std::vector<std::string> subscribed_topics;
  std::string subscribed_regex;
  std::vector<topic_partition_ref> assignment;         // it may consume these now
  std::vector<topic_partition_ref> target_assignment;  // where the group is heading
  std::vector<topic_partition_ref> revoking;           // it must release these first
};

struct group_description {
  std::string group_id;
  std::string state;
  std::int32_t group_epoch = 0;
  std::int32_t assignment_epoch = 0;
  std::string assignor;
  std::int32_t coordinator = -1;  // broker id
  std::vector<group_member_description> members;
  std::string type;  // "consumer" or "share"
  std::vector<topic_partition_ref> share_partitions;  // share groups: partitions with a stored share state
};

// One partition of a share group as its leader has it now
// (admin::describe_share_partitions). Records from start_offset on are in
// flight or not yet handed out; end_offset is the first never handed out.
struct share_partition_stats {
  topic_partition_ref partition;
  std::int64_t start_offset = 0;
  std::int64_t end_offset = 0;
  std::int32_t available = 0;     // in flight, to be handed out (again)
  std::int32_t acquired = 0;      // locked by a member
  std::int32_t acknowledged = 0;  // accepted, above start_offset
  std::int32_t archived = 0;      // rejected or out of attempts, above start_offset
  std::int64_t oldest_lock_age_ms = 0;  // 0: nothing acquired
};

// One partition of a group's lag (admin::group_lag): every partition the
// group has a committed offset for or a member is assigned.
struct partition_lag {
  topic_partition_ref partition;
  std::int64_t committed_offset = -1;  // -1: nothing committed
  std::int64_t log_end_offset = -1;    // the next offset to be written; -1: the topic is gone
  std::int64_t lag = -1;               // records from committed to the end; -1 without a commit
  // Now minus the timestamp of the first record not yet consumed (the one
  // at the committed offset, or the log start if retention removed it);
  // 0 when lag is 0; -1 without a commit or when that record could not be
  // read within the admin's timeout.
  double lag_seconds = -1;
  std::string owner;  // member id assigned the partition; empty: none
};

}  // namespace runnel
