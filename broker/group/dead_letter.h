#pragma once
// The DLQ copy of a share group's archived record (ADR 0016,
// docs/queues.md): the record's key, value and headers, with the same
// failure headers the SDK's DLQ processor writes (client/include/runnel/
// processor.h, dlq_header) and runnel.msg.id = "group/topic/partition/offset",
// so that on a DLQ topic with a message-id window a copy written again
// (the broker died before it recorded the first) is dropped: exactly one
// copy, whatever happens between the archive and the write.

#include <cstdint>
#include <string>
#include <string_view>

#include "schemas/batch.h"
#include "schemas/types.h"

namespace runnel::group {

namespace dlq_header {
inline constexpr std::string_view topic = "runnel.dlq.topic";
inline constexpr std::string_view partition = "runnel.dlq.partition";
inline constexpr std::string_view offset = "runnel.dlq.offset";
inline constexpr std::string_view timestamp = "runnel.dlq.timestamp";
inline constexpr std::string_view group = "runnel.dlq.group";
inline constexpr std::string_view error = "runnel.dlq.error";
inline constexpr std::string_view attempts = "runnel.dlq.attempts";
inline constexpr std::string_view last_failure = "runnel.dlq.last.failure.ms";
inline constexpr std::string_view original_msg_id = "runnel.dlq.original.msg.id";
inline constexpr std::string_view prefix = "runnel.dlq.";
}  // namespace dlq_header

inline constexpr std::string_view msg_id_header = "runnel.msg.id";
inline constexpr std::size_t max_msg_id_bytes = 256;  // the broker's limit on runnel.msg.id

// "group/topic/partition/offset".
std::string dead_letter_msg_id(std::string_view group_id, const topic_partition& tp, offset at);

// Why a record with `delivery_count` deliveries was archived, as the
// runnel.dlq.error header says it.
std::string dead_letter_reason(std::uint16_t delivery_count, std::uint16_t max_delivery_attempts);

// Adds the DLQ copy of `r` (a record of `tp`) to `b`. False (nothing
// added) when its message id would be over max_msg_id_bytes.
bool add_dead_letter(schemas::batch_builder& b, const schemas::record_view& r, std::string_view group_id,
                     const topic_partition& tp, std::uint16_t delivery_count, std::string_view reason,
                     timestamp_ms now);

}  // namespace runnel::group
