#pragma once
// Topic assignment and partition state as stored in ZooKeeper
// (docs/zookeeper.md), and the replica assignment of new topics.
//
//   /topics/<t>                          "runnel-topic 1" then one line each:
//                                        "partitions N", "replicas P a,b,c"
//                                        per partition, "config KEY VALUE"
//   /topics/<t>/partitions/<p>/state     "leader L epoch E isr a,b,c"
//
// Decoding is strict: anything unexpected is an error naming the problem,
// never a guess.

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "broker/cluster/controller.h"
#include "broker/meta/topic_store.h"
#include "broker/meta/types.h"

namespace runnel::cluster {

struct topic_assignment {
  std::vector<std::vector<std::int32_t>> replicas;  // per partition, preferred leader first
  meta::config_overrides config;
};

struct leader_state {
  std::int32_t leader = -1;
  std::int32_t leader_epoch = 0;
  std::vector<std::int32_t> isr;
  friend bool operator==(const leader_state&, const leader_state&) = default;
};

std::string topic_path(std::string_view topic);
std::string partitions_path(std::string_view topic);
std::string partition_path(std::string_view topic, std::int32_t partition);
std::string state_path(std::string_view topic, std::int32_t partition);

std::string encode_topic(const topic_assignment& a);
std::expected<topic_assignment, std::string> decode_topic(std::string_view data);
std::string encode_state(const leader_state& s);
std::expected<leader_state, std::string> decode_state(std::string_view data);

// Replicas for a new topic over the live brokers: partition p's preferred
// leader is the (start + p)-th broker and its followers the next ones, so
// leadership and replicas spread evenly. With racks set, brokers are
// ordered alternating between racks first, so a partition's replicas land
// on as many racks as possible. Errors: replication_factor < 1 or more
// than the live brokers.
std::expected<std::vector<std::vector<std::int32_t>>, std::string> assign_replicas(
    const std::vector<broker_registration>& live, std::int32_t partitions, std::int32_t replication_factor,
    std::uint32_t start);

}  // namespace runnel::cluster
