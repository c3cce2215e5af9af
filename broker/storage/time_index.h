#pragma once
// time_index: timestamp -> offset index of one segment.
//
// File `<base>.timeindex`: 12-byte entries, little endian,
//   i64 timestamp, u32 relative offset
// Entry i is written together with offset-index entry i (same count, same
// durability rule). An entry (t, o) means: t is the largest batch timestamp
// seen in the segment up to that index point, and o the base offset of the
// first batch that reached it. So every batch before o's batch has a max
// timestamp below t, and a lookup for T may start at the largest entry with
// t <= T. Timestamps never decrease from entry to entry.

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "broker/storage/types.h"

namespace runnel::storage {

struct time_entry {
  timestamp_ms ts{0};
  offset off{0};
};

class time_index {
 public:
  static constexpr std::size_t entry_size = 12;

  explicit time_index(offset base) : base_(base) {}

  void append(time_entry e);
  // Largest entry with ts <= t (the first of equal ones), if any.
  [[nodiscard]] std::optional<time_entry> floor(timestamp_ms t) const;
  // Keeps the first n entries.
  void truncate_entries(std::size_t n);

  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] bool empty() const { return entries_.empty(); }
  [[nodiscard]] const time_entry& operator[](std::size_t i) const { return entries_[i]; }

  [[nodiscard]] std::vector<std::byte> encode(std::size_t from, std::size_t to) const;
  // Keeps the longest prefix of whole entries whose timestamps do not
  // decrease and whose offsets do not decrease and lie in [base, end).
  static time_index decode(offset base, std::span<const std::byte> bytes, offset end);

 private:
  offset base_;
  std::vector<time_entry> entries_;
};

}  // namespace runnel::storage
