#pragma once
// What the consumer group handlers share: partition sets in and out of
// the wire's TopicPartitions lists.

#include <set>
#include <string>

#include <flatbuffers/flatbuffers.h>

#include "schemas/protocol_generated.h"
#include "schemas/types.h"

namespace runnel::net::handlers {

using wire_topic_partitions = flatbuffers::Vector<flatbuffers::Offset<wire::TopicPartitions>>;

std::set<topic_partition> partitions_of(const wire_topic_partitions* v);
flatbuffers::Offset<wire_topic_partitions> build_topic_partitions(flatbuffers::FlatBufferBuilder& fbb,
                                                                  const std::set<topic_partition>& parts);
// nullptr for an empty string (absent field on the wire).
inline const char* or_null(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

}  // namespace runnel::net::handlers
