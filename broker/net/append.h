#pragma once
// Appending to a local partition on its owner shard: what a produce does
// for one partition, and what the group coordinator does to write its
// records to __consumer_offsets.

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>

#include "broker/net/shard.h"
#include "schemas/protocol_generated.h"
#include "schemas/types.h"

namespace runnel::net {

struct partition_outcome {
  partition_outcome() = default;
  explicit partition_outcome(std::int32_t p, wire::ErrorCode e = wire::ErrorCode::NONE, std::string m = {})
      : partition(p), error(e), message(std::move(m)) {}

  std::int32_t partition = 0;
  wire::ErrorCode error = wire::ErrorCode::NONE;
  std::string message;
  std::int64_t base_offset = -1;
  std::int64_t append_time = -1;
  std::int64_t log_start = -1;
  wire::Durability durability = wire::Durability::none;
  std::int32_t replicas = 0;  // copies holding the batch
  std::vector<wire::DuplicateRecord> duplicates;  // dropped by the message-id window (index in the record set)
};


// On the owner shard: append every batch, then (acks=all) wait for the
// group-committed fdatasync that covers them and, in cluster mode, for
// every ISR member to hold them durably. A cluster leader stamps its epoch;
// anyone else answers NOT_LEADER, and acks=all with fewer than
// min.insync.replicas in the ISR appends nothing (NOT_ENOUGH_REPLICAS).
asio::awaitable<partition_outcome> append_on_owner(shard& s, topic_partition tp, std::vector<std::span<std::byte>> batches,
                                                   std::int8_t acks, std::chrono::steady_clock::time_point deadline);

}  // namespace runnel::net
