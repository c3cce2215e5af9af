#include "broker/net/handlers/group_common.h"

#include <vector>

namespace runnel::net::handlers {

std::set<topic_partition> partitions_of(const wire_topic_partitions* v) {
  std::set<topic_partition> out;
  if (v == nullptr) return out;
  for (const auto* t : *v) {
    if (t->partitions() == nullptr) continue;
    for (std::int32_t p : *t->partitions()) out.emplace(t->topic()->str(), partition_id(p));
  }
  return out;
}

flatbuffers::Offset<wire_topic_partitions> build_topic_partitions(flatbuffers::FlatBufferBuilder& fbb,
                                                                  const std::set<topic_partition>& parts) {
  std::vector<flatbuffers::Offset<wire::TopicPartitions>> out;
  for_each_topic(parts, [&](const std::string& topic, const std::vector<std::int32_t>& ps) {
    out.push_back(wire::CreateTopicPartitionsDirect(fbb, topic.c_str(), &ps));
  });
  return fbb.CreateVector(out);
}

}  // namespace runnel::net::handlers
