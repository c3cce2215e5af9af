#include "broker/storage/time_index.h"

#include <algorithm>
#include <cstring>

#include "schemas/assert.h"

namespace runnel::storage {

void time_index::append(time_entry e) {
  RUNNEL_ASSERT(e.off >= base_ && e.off - base_ <= UINT32_MAX, "time entry {} outside segment {}", e.off, base_);
  RUNNEL_ASSERT(entries_.empty() || (e.ts >= entries_.back().ts && e.off >= entries_.back().off),
                "time index entries must not decrease");
  entries_.push_back(e);
}

std::optional<time_entry> time_index::floor(timestamp_ms t) const {
  auto it = std::upper_bound(entries_.begin(), entries_.end(), t,
                             [](timestamp_ms v, const time_entry& e) { return v < e.ts; });
  if (it == entries_.begin()) return std::nullopt;
  auto last = std::prev(it);
  // Equal timestamps name the same first offset; take the first for clarity.
  auto first = std::lower_bound(entries_.begin(), last, last->ts,
                                [](const time_entry& e, timestamp_ms v) { return e.ts < v; });
  return *first;
}

void time_index::truncate_entries(std::size_t n) {
  if (n < entries_.size()) entries_.resize(n);
}

std::vector<std::byte> time_index::encode(std::size_t from, std::size_t to) const {
  std::vector<std::byte> out((to - from) * entry_size);
  for (std::size_t i = from; i < to; ++i) {
    std::int64_t ts = entries_[i].ts.value();
    auto rel = static_cast<std::uint32_t>(entries_[i].off - base_);
    std::memcpy(out.data() + (i - from) * entry_size, &ts, 8);
    std::memcpy(out.data() + (i - from) * entry_size + 8, &rel, 4);
  }
  return out;
}

time_index time_index::decode(offset base, std::span<const std::byte> bytes, offset end) {
  time_index idx(base);
  for (std::size_t at = 0; at + entry_size <= bytes.size(); at += entry_size) {
    std::int64_t ts = 0;
    std::uint32_t rel = 0;
    std::memcpy(&ts, bytes.data() + at, 8);
    std::memcpy(&rel, bytes.data() + at + 8, 4);
    time_entry e{timestamp_ms(ts), base + std::int64_t{rel}};
    bool ordered = idx.empty() || (e.ts >= idx.entries_.back().ts && e.off >= idx.entries_.back().off);
    if (!ordered || e.off >= end) break;
    idx.entries_.push_back(e);
  }
  return idx;
}

}  // namespace runnel::storage
