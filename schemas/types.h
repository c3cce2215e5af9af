#pragma once
// Vocabulary shared by broker and client: ids and positions as strong types.

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "schemas/strong.h"

namespace runnel {

// Offset of a record within one partition: dense, assigned by the leader.
using offset = strong<std::int64_t, struct offset_tag>;
// Leader epoch: bumped each time a partition gets a new leader.
using leader_epoch = strong<std::int32_t, struct leader_epoch_tag>;
// Milliseconds since the Unix epoch.
using timestamp_ms = strong<std::int64_t, struct timestamp_ms_tag>;
using partition_id = strong<std::int32_t, struct partition_id_tag>;
using producer_id = strong<std::int64_t, struct producer_id_tag>;

}  // namespace runnel

#include <string>
#include <string_view>
#include <utility>

namespace runnel {

// A topic partition: the unit of ordering, storage and replication.
struct topic_partition {
  // A constructor, not an aggregate: GCC 12 miscompiles aggregate
  // temporaries with non-trivial members inside a co_await expression
  // (docs/adr/0004-gcc12-coroutine-temporaries.md).
  topic_partition() = default;
  topic_partition(std::string t, partition_id p) : topic(std::move(t)), partition(p) {}

  std::string topic;
  partition_id partition{0};

  auto operator<=>(const topic_partition&) const = default;
};

// Kafka's topic name rule: 1..249 characters of [a-zA-Z0-9._-], not "." or "..".
inline bool valid_topic_name(std::string_view name) {
  if (name.empty() || name.size() > 249 || name == "." || name == "..") return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Calls f(topic, partitions) once per topic of `parts` (sorted by topic,
// then partition): how partition sets become per-topic lists on the wire
// and on disk.
template <class F>
void for_each_topic(const std::set<topic_partition>& parts, F&& f) {
  auto it = parts.begin();
  while (it != parts.end()) {
    const std::string& topic = it->topic;
    std::vector<std::int32_t> ps;
    for (; it != parts.end() && it->topic == topic; ++it) ps.push_back(it->partition.value());
    f(topic, ps);
  }
}

}  // namespace runnel

template <>
struct std::hash<runnel::topic_partition> {
  std::size_t operator()(const runnel::topic_partition& tp) const noexcept {
    return std::hash<std::string>{}(tp.topic) * 31 + std::hash<std::int32_t>{}(tp.partition.value());
  }
};

template <>
struct fmt::formatter<runnel::topic_partition> : fmt::formatter<std::string_view> {
  auto format(const runnel::topic_partition& tp, fmt::format_context& ctx) const {
    return fmt::format_to(ctx.out(), "{}/{}", tp.topic, tp.partition.value());
  }
};
