#pragma once
// offset_index: the sparse offset -> file position index of one segment.
//
// File `<base>.index`: a sequence of 8-byte entries, little endian,
//   u32 relative offset (offset - segment base), u32 file position
// both strictly increasing. An entry points at the first byte of a batch
// whose base offset is that offset. Entries are added every
// index.interval.bytes of log, kept in memory, and written to the file only
// once the log bytes they point at are durable, so an entry on disk always
// names durable data (recovery scans from the last valid one).

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "broker/storage/types.h"

namespace runnel::storage {

struct index_entry {
  offset off{0};
  file_pos pos{0};
};

class offset_index {
 public:
  static constexpr std::size_t entry_size = 8;

  explicit offset_index(offset base) : base_(base) {}

  // Entries must increase in both offset and position.
  void append(index_entry e);
  // Largest entry with off <= o, if any.
  [[nodiscard]] std::optional<index_entry> floor(offset o) const;
  // Largest entry with pos <= p, if any.
  [[nodiscard]] std::optional<index_entry> floor_pos(file_pos p) const;
  // Drops every entry with off >= o.
  void truncate_to(offset o);
  void clear() { entries_.clear(); }

  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] bool empty() const { return entries_.empty(); }
  [[nodiscard]] const index_entry& operator[](std::size_t i) const { return entries_[i]; }
  [[nodiscard]] const index_entry& back() const { return entries_.back(); }

  // File bytes of entries [from, to).
  [[nodiscard]] std::vector<std::byte> encode(std::size_t from, std::size_t to) const;
  // Decodes file bytes: keeps the longest prefix of whole entries that
  // increase strictly and point inside [0, file_size). Bytes after it (a
  // torn or stale tail) are ignored; the caller rebuilds from the log.
  static offset_index decode(offset base, std::span<const std::byte> bytes, file_pos file_size);

 private:
  offset base_;
  std::vector<index_entry> entries_;
};

}  // namespace runnel::storage
