#pragma once
// Requests more than one SDK class sends.

#include <cstdint>
#include <string>

#include "client/src/wire_client.h"

namespace runnel::client {

// ListOffsets for one partition. The returned pointer points into `keep`;
// errors name topic/partition.
result<const wire::ListOffsetsPartitionResponse*> list_offsets_one(wire_client& w, const std::string& topic,
                                                                   std::int32_t partition, std::int64_t timestamp,
                                                                   response& keep);

}  // namespace runnel::client
