#include "broker/group/dead_letter.h"

#include <vector>

#include <fmt/format.h>

namespace runnel::group {

namespace {

std::span<const std::byte> bytes_of(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

}  // namespace

std::string dead_letter_msg_id(std::string_view group_id, const topic_partition& tp, offset at) {
  return fmt::format("{}/{}/{}/{}", group_id, tp.topic, tp.partition.value(), at.value());
}

std::string dead_letter_reason(std::uint16_t delivery_count, std::uint16_t max_delivery_attempts) {
  if (delivery_count >= max_delivery_attempts) {
    return fmt::format("not accepted in {} deliveries (share.delivery.attempts.max)", delivery_count);
  }
  return fmt::format("rejected by a member (delivery {})", delivery_count);
}

bool add_dead_letter(schemas::batch_builder& b, const schemas::record_view& r, std::string_view group_id,
                     const topic_partition& tp, std::uint16_t delivery_count, std::string_view reason,
                     timestamp_ms now) {
  const std::string id = dead_letter_msg_id(group_id, tp, r.off);
  if (id.size() > max_msg_id_bytes) return false;
  // The values live here until add() has copied them.
  const std::string partition = std::to_string(tp.partition.value());
  const std::string at = std::to_string(r.off.value());
  const std::string ts = std::to_string(r.timestamp.value());
  const std::string attempts = std::to_string(delivery_count);
  const std::string failed = std::to_string(now.value());
  std::vector<schemas::header_in> hs;
  hs.reserve(r.header_count() + 10);
  for (std::size_t i = 0; i < r.header_count(); ++i) {
    const std::string_view k = r.header_key(i);
    if (k == msg_id_header) {
      hs.push_back({dlq_header::original_msg_id, r.header_value(i)});
    } else if (!k.starts_with(dlq_header::prefix)) {
      hs.push_back({k, r.header_value(i)});
    }
  }
  hs.push_back({dlq_header::topic, bytes_of(tp.topic)});
  hs.push_back({dlq_header::partition, bytes_of(partition)});
  hs.push_back({dlq_header::offset, bytes_of(at)});
  hs.push_back({dlq_header::timestamp, bytes_of(ts)});
  hs.push_back({dlq_header::group, bytes_of(group_id)});
  hs.push_back({dlq_header::error, bytes_of(reason)});
  hs.push_back({dlq_header::attempts, bytes_of(attempts)});
  hs.push_back({dlq_header::last_failure, bytes_of(failed)});
  hs.push_back({msg_id_header, bytes_of(id)});
  b.add(r.key, r.value, now, hs);
  return true;
}

}  // namespace runnel::group
