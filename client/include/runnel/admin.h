#pragma once
// runnel::admin: topics and their configs. Thread-safe; every call blocks
// until the broker answers or `timeout` passes. Topic and config requests go
// to any broker; list_offset and partition_size to the partition's leader.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runnel/errors.h"

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

  struct impl;

 private:
  explicit admin(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace runnel
