#pragma once
// Kafka's default partitioner: murmur2 of the key bytes (seed 0x9747b28c),
// made positive, modulo the partition count. The same key lands on the same
// partition as with Kafka's Java client for the same partition count.

#include <cstddef>
#include <cstdint>
#include <span>

namespace runnel::schemas {

[[nodiscard]] std::int32_t murmur2(std::span<const std::byte> data) noexcept;

[[nodiscard]] inline std::int32_t partition_for_key(std::span<const std::byte> key, std::int32_t partitions) noexcept {
  return static_cast<std::int32_t>((static_cast<std::uint32_t>(murmur2(key)) & 0x7fffffffU) %
                                   static_cast<std::uint32_t>(partitions));
}

}  // namespace runnel::schemas
