#pragma once
// Topic metadata: names, partition counts and per-topic config overrides.

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "broker/storage/types.h"

namespace runnel::meta {

// A topic's effective configuration: broker defaults with its overrides.
struct topic_config {
  storage::log_config log;
  std::uint32_t max_message_bytes = 1U << 20;  // max.message.bytes: largest batch accepted
};

using config_overrides = std::map<std::string, std::string>;

struct topic {
  std::string name;
  std::int32_t partitions = 1;
  config_overrides overrides;
  topic_config config;  // resolved from the defaults and `overrides`
};

// Immutable view every shard keeps; replaced whole on every change.
using topic_map = std::map<std::string, topic, std::less<>>;
using topics_snapshot = std::shared_ptr<const topic_map>;

}  // namespace runnel::meta
