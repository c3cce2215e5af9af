#pragma once
// offset_map: the log cleaner's bounded map of key hash -> latest offset.
//
// A fixed array of 24-byte slots (16-byte key hash, i64 offset), open
// addressing with linear probing, sized once from log.cleaner.dedupe.buffer.size
// and filled at most to 90% (Kafka's dedupe load factor), so a probe stays
// short. Two keys whose 128-bit hashes collide count as one key (as in
// Kafka, which uses MD5): the older record of the pair would be removed.
// Owned by the cleaner thread; not thread-safe.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "schemas/types.h"

namespace runnel::storage {

using key_hash = std::array<std::uint64_t, 2>;

// 128-bit MurmurHash3 (x64) of a record key.
key_hash hash_key(std::span<const std::byte> key);

class offset_map {
 public:
  static constexpr std::size_t slot_bytes = 24;
  static constexpr double max_load = 0.9;

  // At least one slot whatever `buffer_bytes` says.
  explicit offset_map(std::uint64_t buffer_bytes);

  // Records `o` as the latest offset of `h` (a later put of the same hash
  // wins). False, changing nothing, when `h` is new and the map is full.
  bool put(const key_hash& h, offset o);
  [[nodiscard]] std::optional<offset> get(const key_hash& h) const;
  void clear();

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] std::size_t capacity() const { return max_entries_; }
  [[nodiscard]] bool full() const { return size_ >= max_entries_; }

 private:
  struct slot {
    key_hash hash{};
    std::int64_t off = -1;  // -1: empty
  };
  static_assert(sizeof(slot) == slot_bytes);
  [[nodiscard]] std::size_t find(const key_hash& h) const;

  std::vector<slot> slots_;
  std::size_t max_entries_ = 0;
  std::size_t size_ = 0;
};

}  // namespace runnel::storage
