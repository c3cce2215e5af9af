#pragma once
// Topic metadata: names, partition counts and per-topic config overrides.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "broker/storage/types.h"

namespace runnel::meta {

// A topic's effective configuration: broker defaults with its overrides.
struct topic_config {
  storage::log_config log;
  std::uint32_t max_message_bytes = 1U << 20;  // max.message.bytes: largest batch accepted
  std::int32_t min_insync_replicas = 1;         // min.insync.replicas: acks=all needs this many in the ISR
  bool unclean_leader_election = false;         // unclean.leader.election: elect out-of-ISR replicas
  bool dead_letter_topic = false;               // dead.letter.topic: a DLQ (a marker for tools)
};

using config_overrides = std::map<std::string, std::string>;

// Cluster mode: a partition's replicas and leadership, as ZooKeeper holds
// them (/topics/<t> and /topics/<t>/partitions/<p>/state).
struct partition_leadership {
  std::vector<std::int32_t> replicas;  // the assignment, preferred leader first
  std::int32_t leader = -1;            // -1: no leader (offline)
  std::int32_t leader_epoch = 0;
  std::vector<std::int32_t> isr;
  std::int32_t version = -1;           // znode version of the state: writes are compare-and-set on it
};

struct topic {
  std::string name;
  std::int32_t partitions = 1;
  config_overrides overrides;
  topic_config config;  // resolved from the defaults and `overrides`
  // Cluster mode: one entry per partition (an entry with no replicas while
  // its state is not yet read). Empty in standalone mode.
  std::vector<partition_leadership> leadership;
};

// Immutable view every shard keeps; replaced whole on every change.
using topic_map = std::map<std::string, topic, std::less<>>;
using topics_snapshot = std::shared_ptr<const topic_map>;

}  // namespace runnel::meta
