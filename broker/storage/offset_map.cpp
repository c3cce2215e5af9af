#include "broker/storage/offset_map.h"

#include <algorithm>
#include <cstring>

namespace runnel::storage {

namespace {

std::uint64_t rotl(std::uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

std::uint64_t fmix(std::uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

}  // namespace

key_hash hash_key(std::span<const std::byte> key) {
  constexpr std::uint64_t c1 = 0x87c37b91114253d5ULL;
  constexpr std::uint64_t c2 = 0x4cf5ad432745937fULL;
  const auto* data = reinterpret_cast<const std::uint8_t*>(key.data());
  const std::size_t len = key.size();
  const std::size_t blocks = len / 16;
  std::uint64_t h1 = 0x9368e53c2f6af274ULL;  // seed
  std::uint64_t h2 = h1;
  for (std::size_t i = 0; i < blocks; ++i) {
    std::uint64_t k1 = 0;
    std::uint64_t k2 = 0;
    std::memcpy(&k1, data + i * 16, 8);
    std::memcpy(&k2, data + i * 16 + 8, 8);
    k1 *= c1;
    k1 = rotl(k1, 31);
    k1 *= c2;
    h1 ^= k1;
    h1 = rotl(h1, 27);
    h1 += h2;
    h1 = h1 * 5 + 0x52dce729;
    k2 *= c2;
    k2 = rotl(k2, 33);
    k2 *= c1;
    h2 ^= k2;
    h2 = rotl(h2, 31);
    h2 += h1;
    h2 = h2 * 5 + 0x38495ab5;
  }
  const std::uint8_t* tail = data + blocks * 16;
  std::uint64_t k1 = 0;
  std::uint64_t k2 = 0;
  const std::size_t rest = len & 15;
  for (std::size_t i = rest; i > 8; --i) k2 ^= std::uint64_t{tail[i - 1]} << ((i - 9) * 8);
  if (rest > 8) {
    k2 *= c2;
    k2 = rotl(k2, 33);
    k2 *= c1;
    h2 ^= k2;
  }
  for (std::size_t i = std::min<std::size_t>(rest, 8); i > 0; --i) k1 ^= std::uint64_t{tail[i - 1]} << ((i - 1) * 8);
  if (rest > 0) {
    k1 *= c1;
    k1 = rotl(k1, 31);
    k1 *= c2;
    h1 ^= k1;
  }
  h1 ^= len;
  h2 ^= len;
  h1 += h2;
  h2 += h1;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h1 += h2;
  h2 += h1;
  return {h1, h2};
}

offset_map::offset_map(std::uint64_t buffer_bytes)
    : slots_(std::max<std::uint64_t>(2, buffer_bytes / slot_bytes)),
      max_entries_(std::max<std::size_t>(1, static_cast<std::size_t>(static_cast<double>(slots_.size()) * max_load))) {
  max_entries_ = std::min(max_entries_, slots_.size() - 1);  // one slot stays empty: probes end
}

std::size_t offset_map::find(const key_hash& h) const {
  std::size_t i = static_cast<std::size_t>(h[0] % slots_.size());
  while (slots_[i].off >= 0 && slots_[i].hash != h) i = (i + 1) % slots_.size();
  return i;
}

bool offset_map::put(const key_hash& h, offset o) {
  auto i = find(h);
  if (slots_[i].off < 0) {
    if (full()) return false;
    slots_[i].hash = h;
    ++size_;
  }
  slots_[i].off = std::max(slots_[i].off, o.value());
  return true;
}

std::optional<offset> offset_map::get(const key_hash& h) const {
  auto i = find(h);
  if (slots_[i].off < 0) return std::nullopt;
  return offset(slots_[i].off);
}

void offset_map::clear() {
  std::fill(slots_.begin(), slots_.end(), slot{});
  size_ = 0;
}

}  // namespace runnel::storage
