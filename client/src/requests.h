#pragma once
// Requests more than one SDK class sends.

#include <cstdint>
#include <string>

#include "client/src/connection_pool.h"
#include "client/src/metadata_cache.h"
#include "client/src/wire_client.h"

namespace runnel::client {

// ListOffsets for one partition. The returned pointer points into `keep`;
// errors name topic/partition.
result<const wire::ListOffsetsPartitionResponse*> list_offsets_one(wire_client& w, const std::string& topic,
                                                                   std::int32_t partition, std::int64_t timestamp,
                                                                   response& keep);

// list_offsets_one at the partition's leader. After an error that says the
// leader moved (leader_may_have_moved) or while no leader is elected, the
// topic's metadata is fetched again and the request retried, with backoff,
// for up to the pool's timeout. Blocking.
result<const wire::ListOffsetsPartitionResponse*> list_offsets_at_leader(connection_pool& pool, metadata_cache& meta,
                                                                         const std::string& topic, std::int32_t partition,
                                                                         std::int64_t timestamp, response& keep);

// InitProducerId at `w`: a fresh idempotent producer id and its epoch.
result<std::pair<std::int64_t, std::int16_t>> init_producer_id(wire_client& w);

}  // namespace runnel::client
