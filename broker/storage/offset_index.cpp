#include "broker/storage/offset_index.h"

#include <algorithm>
#include <cstring>

#include "schemas/assert.h"

namespace runnel::storage {

void offset_index::append(index_entry e) {
  RUNNEL_ASSERT(e.off >= base_ && e.off - base_ <= UINT32_MAX, "index entry {} outside segment {}", e.off, base_);
  RUNNEL_ASSERT(e.pos.value() <= UINT32_MAX, "index position {} beyond 4 GiB", e.pos);
  RUNNEL_ASSERT(entries_.empty() || (e.off > entries_.back().off && e.pos > entries_.back().pos),
                "index entries must increase ({} at {} after {} at {})", e.off, e.pos, entries_.back().off,
                entries_.back().pos);
  entries_.push_back(e);
}

std::optional<index_entry> offset_index::floor(offset o) const {
  auto it = std::upper_bound(entries_.begin(), entries_.end(), o,
                             [](offset v, const index_entry& e) { return v < e.off; });
  if (it == entries_.begin()) return std::nullopt;
  return *std::prev(it);
}

std::optional<index_entry> offset_index::floor_pos(file_pos p) const {
  auto it = std::upper_bound(entries_.begin(), entries_.end(), p,
                             [](file_pos v, const index_entry& e) { return v < e.pos; });
  if (it == entries_.begin()) return std::nullopt;
  return *std::prev(it);
}

void offset_index::truncate_to(offset o) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), o,
                             [](const index_entry& e, offset v) { return e.off < v; });
  entries_.erase(it, entries_.end());
}

std::vector<std::byte> offset_index::encode(std::size_t from, std::size_t to) const {
  std::vector<std::byte> out((to - from) * entry_size);
  for (std::size_t i = from; i < to; ++i) {
    auto rel = static_cast<std::uint32_t>(entries_[i].off - base_);
    auto pos = static_cast<std::uint32_t>(entries_[i].pos.value());
    std::memcpy(out.data() + (i - from) * entry_size, &rel, 4);
    std::memcpy(out.data() + (i - from) * entry_size + 4, &pos, 4);
  }
  return out;
}

offset_index offset_index::decode(offset base, std::span<const std::byte> bytes, file_pos file_size) {
  offset_index idx(base);
  for (std::size_t at = 0; at + entry_size <= bytes.size(); at += entry_size) {
    std::uint32_t rel = 0;
    std::uint32_t pos = 0;
    std::memcpy(&rel, bytes.data() + at, 4);
    std::memcpy(&pos, bytes.data() + at + 4, 4);
    index_entry e{base + std::int64_t{rel}, file_pos(pos)};
    bool increasing = idx.empty() || (e.off > idx.back().off && e.pos > idx.back().pos);
    if (!increasing || e.pos >= file_size) break;
    idx.entries_.push_back(e);
  }
  return idx;
}

}  // namespace runnel::storage
