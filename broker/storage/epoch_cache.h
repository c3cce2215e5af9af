#pragma once
// epoch_cache: the leader epochs of one log and the offset where each
// started (Kafka's leader-epoch-checkpoint, KIP-101). A replica that becomes
// follower asks its leader where its own latest epoch ends there and
// truncates its log to that point, so replicas never diverge.
//
// Kept in <log dir>/leader-epoch-checkpoint, text:
//   runnel-epochs 1
//   <epoch> <start offset>        one line per epoch, ascending
// written atomically (temp file, fsync, rename, directory fsync) whenever
// it changes, which is only when leadership changes; the log writes it
// through its io_uring ring (encode()), off the shard thread's critical
// path. A missing file is an empty cache; a malformed one is an error
// naming the file.

#include <cstdint>
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "schemas/types.h"

namespace runnel::storage {

class epoch_cache {
 public:
  struct entry {
    std::int32_t epoch = 0;
    offset start{0};
    friend bool operator==(const entry&, const entry&) = default;
  };

  static constexpr const char* file_name = "leader-epoch-checkpoint";
  static std::expected<epoch_cache, std::error_code> load(const std::filesystem::path& dir);

  // The mutators change memory only and say whether anything changed: the
  // caller persists encode() then (the log through its ring, or save()).
  // Records that `epoch` starts at `start` when it is newer than the latest
  // epoch; a no-op for a known epoch.
  [[nodiscard]] bool assign(std::int32_t epoch, offset start);
  // Drops epochs that start at or after `end` (the log was truncated there,
  // or they never got data).
  [[nodiscard]] bool truncate_from(offset end);
  // Drops everything (the log was emptied to refetch from the leader).
  [[nodiscard]] bool clear();

  // The checkpoint file's contents.
  [[nodiscard]] std::string encode() const;
  // Writes it with blocking system calls (tools and tests).
  std::error_code save() const;

  // The largest epoch <= `epoch` and where it ends: at the next epoch's
  // start, or `log_end` for the latest. nullopt when every epoch is newer
  // (or none is known).
  [[nodiscard]] std::optional<std::pair<std::int32_t, offset>> end_for(std::int32_t epoch, offset log_end) const;
  [[nodiscard]] std::optional<std::int32_t> latest() const;
  [[nodiscard]] const std::vector<entry>& entries() const { return entries_; }

 private:
  explicit epoch_cache(std::filesystem::path file) : file_(std::move(file)) {}

  std::filesystem::path file_;
  std::vector<entry> entries_;
};

}  // namespace runnel::storage
