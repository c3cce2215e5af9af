#pragma once
// clean_pass: one compaction pass over one log's sealed segments, run on
// the log cleaner's own thread (never a shard's).
//
//   clean_job (a snapshot the shard made: immutable sealed segment files)
//     1. offset map: key hash -> latest offset over the dirty section
//        [first_dirty, ...) until the map is full (then the pass ends there)
//     2. each segment below that end --copy the records to keep-->
//        <base>.log.cleaned, .index.cleaned, .timeindex.cleaned (fsynced)
//   clean_output --> the shard swaps the files in (log::finish_clean)
//
// Sealed segment files never change while their segment is in the log, so
// reading them here with pread, while the shard keeps their descriptors
// open (the job holds shared_ptr<segment_file>), is safe. This thread
// writes only `*.cleaned` files; renames and the segment list belong to
// the shard.
//
// A record is kept when its offset is at or past the map's end, it has a
// null key, or it is the latest of its key; a latest tombstone (null
// value) is dropped once its record timestamp is older than
// now - delete.retention.ms.

#include <array>
#include <atomic>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <system_error>
#include <vector>

#include "broker/storage/types.h"

namespace runnel::storage {

class offset_map;

struct clean_segment {
  offset base{0};
  offset end{0};             // the next segment's base: the segment's offset range is [base, end)
  std::uint64_t size = 0;    // bytes of whole batches
  std::shared_ptr<const segment_file> file;
};

struct clean_job {
  topic_partition tp;
  std::filesystem::path dir;
  log_config cfg;
  timestamp_ms now{0};
  std::vector<clean_segment> segments;  // sealed, durable, past min.compaction.lag.ms; from the log start
  offset first_dirty{0};                // the cleaner checkpoint: below it every segment was cleaned
  std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
};

struct clean_output {
  offset cleaned_end{0};         // the new checkpoint: the offset map covered [first_dirty, cleaned_end)
  std::vector<offset> replaced;  // segments that have `.cleaned` files (the others had nothing to drop)
  std::uint64_t bytes_before = 0;
  std::uint64_t bytes_after = 0;
  std::uint64_t records_removed = 0;
};

// The suffixes of the swap protocol (see docs/storage_format.md).
inline constexpr const char* cleaned_suffix = ".cleaned";
inline constexpr const char* swap_suffix = ".swap";
inline constexpr const char* const segment_exts[] = {".log", ".index", ".timeindex"};

// `<base><ext><suffix>` in `dir`.
std::filesystem::path clean_path(const std::filesystem::path& dir, offset base, const char* ext, const char* suffix);

// Runs the pass. `stop()` is polled between batches; true abandons the
// pass (errc: operation_canceled). On any error no `.cleaned` file is left.
std::expected<clean_output, std::error_code> run_clean_pass(const clean_job& job, offset_map& map,
                                                            const std::function<bool()>& stop);

// Unlinks every `.cleaned` file of `dir` (leftovers of an abandoned pass).
std::error_code remove_cleaned_files(const std::filesystem::path& dir);

// Recovery at open, before the segments are listed. `.swap` files exist
// only once every `.cleaned` file of the pass was complete and fsynced: if
// any does, the remaining `.cleaned` files become `.swap` and every `.swap`
// takes its final name (replacing the old file); else the `.cleaned`
// files are deleted (the pass never started its swap).
std::error_code recover_clean_files(const std::filesystem::path& dir, const topic_partition& tp);

// `cleaner-offset-checkpoint`: 16 bytes, little endian: u32 magic "RNCC",
// i64 offset, u32 CRC-32C of the first 12 bytes; replaced atomically.
// nullopt when missing or malformed.
std::optional<offset> read_cleaner_checkpoint(const std::filesystem::path& dir);
std::array<std::byte, 16> encode_cleaner_checkpoint(offset point);
inline constexpr const char* cleaner_checkpoint_name = "cleaner-offset-checkpoint";

}  // namespace runnel::storage
