#pragma once
// runnel::admin: topics, their configs and consumer groups. Thread-safe;
// every call blocks until the broker answers or `timeout` passes. Topic and
// config requests go to any broker; list_offset and partition_size to the
// partition's leader; group calls to the group's coordinator (list_groups
// to every broker: each lists the groups it coordinates).

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runnel/errors.h"
#include "runnel/group.h"
#include "runnel/record.h"

namespace runnel {

struct admin_config {
  std::string bootstrap = "127.0.0.1:9292";  // host:port[,host:port...]: the first that answers
  std::string client_id = "runnel-admin";
  std::chrono::milliseconds timeout{30'000};
};

struct partition_info {
  std::int32_t partition = 0;
  std::int32_t leader = -1;
  std::int32_t leader_epoch = 0;
  std::vector<std::int32_t> replicas;
  std::vector<std::int32_t> isr;
};

struct topic_info {
  std::string name;
  std::vector<partition_info> partitions;
};

struct broker_info {
  std::int32_t id = 0;
  std::string host;
  std::int32_t port = 0;
  std::string rack;  // empty when not set
};

struct cluster_info {
  std::string mode;  // "standalone" or "cluster"
  std::int32_t controller = -1;
  std::vector<broker_info> brokers;
};

struct config_value {
  std::string value;
  bool is_default = true;
};

// Special timestamps for list_offset.
inline constexpr std::int64_t earliest_offset = -2;
inline constexpr std::int64_t latest_offset = -1;

class admin {
 public:
  static result<std::unique_ptr<admin>> connect(admin_config cfg);
  ~admin();
  admin(const admin&) = delete;             // owns its connections
  admin& operator=(const admin&) = delete;  // owns its connections
  admin(admin&&) = delete;                  // the I/O thread holds `this`
  admin& operator=(admin&&) = delete;       // the I/O thread holds `this`

  result<void> create_topic(const std::string& name, std::int32_t partitions, std::int16_t replication_factor = 1,
                            const std::map<std::string, std::string>& configs = {});
  result<void> delete_topic(const std::string& name);
  result<std::vector<topic_info>> list_topics();
  result<topic_info> describe_topic(const std::string& name);
  result<cluster_info> describe_cluster();
  result<std::map<std::string, config_value>> describe_configs(const std::string& topic);
  // An empty value removes the override.
  result<void> alter_configs(const std::string& topic, const std::map<std::string, std::string>& configs);
  // timestamp: earliest_offset, latest_offset, or milliseconds since the epoch.
  result<std::int64_t> list_offset(const std::string& topic, std::int32_t partition, std::int64_t timestamp);
  // Bytes of the partition's log on its leader.
  result<std::int64_t> partition_size(const std::string& topic, std::int32_t partition);

  // Consumer groups (docs/operations.md, runnelctl group).
  // Every broker's groups, sorted by id.
  result<std::vector<group_listing>> list_groups();
  // errc::group_id_not_found when no broker has the group.
  result<group_description> describe_group(const std::string& group_id);
  // Deletes an empty group and its committed offsets; errc::non_empty_group
  // while it has members.
  result<void> delete_group(const std::string& group_id);
  // Committed offsets (all of the group's when `partitions` is empty); a
  // partition without a commit is left out. An unknown group has none.
  result<std::map<topic_partition_ref, offset_and_metadata>> committed_offsets(
      const std::string& group_id, const std::vector<topic_partition_ref>& partitions = {});
  // Commits `offsets` without a member, as reset-offsets does: the broker
  // allows it only while the group has no members (errc::non_empty_group).
  // Creates the group if it has none. Partitions are accepted one by one:
  // on an error (the first refused partition's, naming it) the others may
  // be committed.
  result<void> alter_group_offsets(const std::string& group_id,
                                   const std::map<topic_partition_ref, offset_and_metadata>& offsets);
  // Per partition the group has committed or its members are assigned,
  // sorted: committed offset, log end, lag (records and seconds), owner.
  // Reads the first uncommitted record of each lagging partition.
  result<std::vector<partition_lag>> group_lag(const std::string& group_id);
  // The same for a description already fetched (its members give owners).
  result<std::vector<partition_lag>> group_lag(const group_description& group);
  // A share group's partitions (those its members are assigned and those
  // with a stored state), each from its leader, sorted; errc::invalid_argument
  // for a consumer group.
  result<std::vector<share_partition_stats>> describe_share_partitions(const group_description& group);

  // Share group configs (docs/queues.md): share.record.lock.duration.ms,
  // share.delivery.attempts.max, share.dlq.topic, each with its effective
  // value. Altering those of a group that does not exist creates it as an
  // empty share group; a consumer group is errc::inconsistent_group_type.
  // An empty value removes the override.
  result<std::map<std::string, config_value>> describe_group_configs(const std::string& group_id);
  result<void> alter_group_configs(const std::string& group_id, const std::map<std::string, std::string>& configs);

  struct impl;

 private:
  explicit admin(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace runnel
