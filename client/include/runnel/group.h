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
};

}  // namespace runnel
