#pragma once
// segment: one `<base>.log` file of whole batches plus its `.index` and
// `.timeindex`, owned by one log on one shard thread.
//
// Positions: [0, written) is in the file (readable); [written, size) is
// reserved by appends whose writes are in flight; [0, synced) is durable.
// synced <= written <= size.

#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include <asio/awaitable.hpp>

#include "broker/storage/file.h"
#include "broker/storage/offset_index.h"
#include "broker/storage/time_index.h"
#include "broker/storage/types.h"
#include "schemas/batch.h"

namespace runnel::storage {

class io_ring;

// The .log file's descriptor, shared with readers (file_range) so a fetch in
// progress keeps it open after retention unlinks the file.
class segment_file {
 public:
  explicit segment_file(file_handle fd) : fd_(std::move(fd)) {}
  [[nodiscard]] int fd() const { return fd_.get(); }

 private:
  file_handle fd_;
};

// File names: base offset in 20 digits.
std::filesystem::path segment_path(const std::filesystem::path& dir, offset base, const char* ext);
// The offset named by a `<20 digits><ext>` file name (segments: `.log`).
std::optional<offset> parse_segment_name(const std::filesystem::path& p, const char* ext = ".log");

// One batch found by a scan.
struct scanned_batch {
  file_pos pos{0};
  schemas::batch_header header;
};

// What a scan ended with.
enum class scan_end {
  clean,      // reached the end of the file on a batch boundary
  torn,       // a short or malformed header, a batch past the end, a CRC failure, or an offset
              // that does not follow (a gap is accepted only where the cleaner removed records)
};

struct scan_result {
  scan_end end = scan_end::clean;
  file_pos stop{0};          // first byte not accepted
  offset next_offset{0};     // offset after the last accepted batch
  std::string reason;        // for torn: what was wrong (for the log line)
};

class segment {
 public:
  segment(std::filesystem::path dir, offset base, const log_config& cfg);
  ~segment();
  segment(const segment&) = delete;             // owns files
  segment& operator=(const segment&) = delete;  // owns files
  segment(segment&&) = delete;                  // held by shared_ptr
  segment& operator=(segment&&) = delete;       // held by shared_ptr

  // Creates the three files of a new, empty segment.
  std::error_code create();
  // Opens existing files and loads the indexes (validated prefix only).
  std::error_code open_existing();

  // Recovery: makes the in-memory state match the file. Scans from the last
  // index entry that points at a good batch (from 0 with verify_all) to the
  // end of the file, CRC-checking every batch and rebuilding index entries.
  // Returns where and why the scan stopped; the caller decides whether a
  // stop before the end is a torn tail or corruption.
  asio::awaitable<std::expected<scan_result, std::error_code>> recover(io_ring& ring, bool verify_all);

  // Cuts the file and indexes at `pos`, which must be a batch boundary
  // whose batch starts at `next`; then rescans from the last index entry.
  asio::awaitable<std::error_code> truncate_to(io_ring& ring, file_pos pos, offset next);

  // Append bookkeeping (no I/O): reserves [size, size + length) for the
  // batch and indexes it. Returns its position.
  file_pos reserve(const schemas::batch_header& h);
  // Forgets the reservations past what was written (appends that failed
  // on a full disk); their index entries go with the truncate_to that
  // follows. Returns whether there were any.
  bool drop_unwritten() {
    if (size_ == written_) return false;
    size_ = written_;
    next_offset_ = written_next_;
    return true;
  }
  void mark_written(file_pos end, offset next) {
    written_ = end;
    written_next_ = next;
  }
  void mark_synced(file_pos end) { synced_ = end; }

  // Writes index entries whose batches lie below `durable_end` (an offset)
  // and are not yet in the files.
  asio::awaitable<std::error_code> persist_indexes(io_ring& ring, offset durable_end);
  // Writes every index entry and fsyncs both index files (clean close).
  asio::awaitable<std::error_code> sync_indexes(io_ring& ring);

  // Position and header of the batch that contains offset `o`; `o` must lie
  // in [base, written_next()).
  asio::awaitable<std::expected<scanned_batch, std::error_code>> find_batch(io_ring& ring, offset o) const;

  struct range_end {
    file_pos end{0};
    offset next{0};
  };
  // End of the longest run of whole batches that starts at `from` (the
  // boundary of the batch at offset `from_offset`) and ends at or before
  // `limit` (<= written()). When even the first batch does not fit, the run
  // is that one batch, so a reader always makes progress.
  asio::awaitable<std::expected<range_end, std::error_code>> whole_batches_end(io_ring& ring, file_pos from,
                                                                             offset from_offset,
                                                                             file_pos limit) const;
  // Base offset of the first written batch whose max timestamp is >= t.
  asio::awaitable<std::expected<std::optional<offset>, std::error_code>> find_timestamp(io_ring& ring,
                                                                                        timestamp_ms t) const;

  // Offset gaps that start below `o` (the log's cleaner checkpoint) are
  // records the cleaner removed: recover() accepts them.
  void allow_gaps_below(offset o) { gaps_below_ = o; }

  // Unlinks the three files (the .log stays readable through open ranges).
  std::error_code remove_files();

  [[nodiscard]] offset base() const { return base_; }
  [[nodiscard]] offset next_offset() const { return next_offset_; }
  [[nodiscard]] file_pos size() const { return size_; }
  [[nodiscard]] file_pos written() const { return written_; }
  [[nodiscard]] offset written_next() const { return written_next_; }
  [[nodiscard]] file_pos synced() const { return synced_; }
  [[nodiscard]] file_pos allocated() const { return allocated_; }
  void set_allocated(file_pos p) { allocated_ = p; }
  [[nodiscard]] bool empty() const { return size_.value() == 0; }
  [[nodiscard]] timestamp_ms max_timestamp() const { return max_ts_; }
  [[nodiscard]] std::chrono::steady_clock::time_point created() const { return created_; }
  [[nodiscard]] int fd() const { return file_->fd(); }
  [[nodiscard]] const std::shared_ptr<const segment_file>& file() const { return file_; }
  [[nodiscard]] const std::filesystem::path& log_path() const { return log_path_; }
  [[nodiscard]] const offset_index& index() const { return index_; }
  [[nodiscard]] const time_index& timeindex() const { return time_index_; }

 private:
  void index_batch(file_pos pos, const schemas::batch_header& h, bool already_indexed);
  void reset_index_state();

  std::filesystem::path log_path_;
  std::filesystem::path index_path_;
  std::filesystem::path timeindex_path_;
  offset base_;
  const log_config& cfg_;

  std::shared_ptr<const segment_file> file_;
  file_handle index_fd_;
  file_handle timeindex_fd_;

  file_pos size_{0};
  file_pos written_{0};
  file_pos synced_{0};
  file_pos allocated_{0};
  offset next_offset_;
  offset written_next_;

  offset_index index_;
  time_index time_index_;
  std::size_t index_persisted_ = 0;  // entries already in both index files
  bool index_unsynced_ = false;      // index files written since their last fsync
  std::uint64_t bytes_since_index_ = 0;
  timestamp_ms max_ts_{-1};
  offset max_ts_offset_{0};
  std::chrono::steady_clock::time_point created_;
  offset gaps_below_{0};
};

}  // namespace runnel::storage
