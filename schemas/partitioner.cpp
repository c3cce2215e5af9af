#include "schemas/partitioner.h"

#include <cstring>

namespace runnel::schemas {

// Port of org.apache.kafka.common.utils.Utils.murmur2 (32-bit arithmetic,
// little-endian 4-byte blocks, tail bytes mixed high to low).
std::int32_t murmur2(std::span<const std::byte> data) noexcept {
  constexpr std::uint32_t seed = 0x9747b28cU;
  constexpr std::uint32_t m = 0x5bd1e995U;
  constexpr int r = 24;
  const auto length = static_cast<std::uint32_t>(data.size());
  std::uint32_t h = seed ^ length;
  const std::size_t blocks = data.size() / 4;
  for (std::size_t i = 0; i < blocks; ++i) {
    std::uint32_t k = 0;
    std::memcpy(&k, data.data() + i * 4, 4);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const std::byte* tail = data.data() + blocks * 4;
  switch (data.size() % 4) {
    case 3: h ^= std::to_integer<std::uint32_t>(tail[2]) << 16; [[fallthrough]];
    case 2: h ^= std::to_integer<std::uint32_t>(tail[1]) << 8; [[fallthrough]];
    case 1:
      h ^= std::to_integer<std::uint32_t>(tail[0]);
      h *= m;
      break;
    default: break;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<std::int32_t>(h);
}

}  // namespace runnel::schemas
