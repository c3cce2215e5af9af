#pragma once
// log: the segmented, append-only log of one topic partition.
//
//   append(batch) --stamp offset--> reserve bytes in the active segment
//        |                             (roll first at segment.bytes / segment.ms)
//        v
//   write queue --coalesced writev, one in flight--> io_ring --> page cache
//        |  log_end_offset() advances: readers see the batch
//        v
//   flush() --group commit: one fdatasync per dirty segment covers every
//        |     batch written before it--> flushed_offset() advances
//        v
//   index entries for durable batches --> .index / .timeindex
//
// Threading: a log lives on one shard; every call, and every completion,
// runs on that shard's io_context thread. No locks.
//
// Crash rules (see docs/storage_format.md): everything below the persisted
// recovery point was fsynced; a bad batch there is corruption and open()
// fails naming the file and position. At or above it a bad batch is a torn
// write: the log is truncated there with a warning.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <expected>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/any_io_executor.hpp>

#include "broker/storage/clean_pass.h"
#include "broker/storage/epoch_cache.h"
#include "broker/storage/dedup_window.h"
#include "broker/storage/producer_state.h"
#include "broker/storage/types.h"
#include "broker/storage/waiters.h"

namespace runnel::schemas {
struct batch_header;
class batch_view;
}

namespace runnel::storage {

class io_ring;
class segment;

// Process-wide: while false, appends reserve no blocks ahead of the tail
// (segment.preallocate.bytes), so preallocation cannot eat the space the
// broker keeps free (storage.min.free.bytes); set by the broker's disk watch.
void set_preallocation_allowed(bool allowed) noexcept;

class log {
 public:
  // Opens (recovering) the log in `dir`, or creates an empty one there when
  // `dir` has no segments. `ring` must outlive the log.
  static asio::awaitable<std::expected<std::unique_ptr<log>, std::error_code>> open(io_ring& ring,
                                                                                  std::filesystem::path dir,
                                                                                  topic_partition tp,
                                                                                  log_config cfg);
  ~log();
  log(const log&) = delete;             // owns files and waiters
  log& operator=(const log&) = delete;  // owns files and waiters
  log(log&&) = delete;                  // coroutines hold `this`
  log& operator=(log&&) = delete;       // coroutines hold `this`

  // Appends one whole batch that the caller verified (schemas::verify_batch).
  // Stamps its base offset in place, and its leader epoch when `epoch` >= 0
  // (a cluster leader; the epoch cache records where a new epoch starts);
  // `batch` must stay alive until this completes, which is when the bytes
  // are in the file and readable. A batch with a producer id is checked
  // against the producer state first: a retry of a batch in the log comes
  // back as `duplicate` with the first copy's offsets (nothing written); a
  // sequence gap, an older epoch or an unknown producer is refused
  // (errc::out_of_order_sequence, producer_fenced, unknown_producer_id).
  asio::awaitable<std::expected<append_result, std::error_code>> append(std::span<std::byte> batch,
                                                                         std::int32_t epoch = -1);
  // A follower's append: the batch keeps the offsets and epoch its leader
  // stamped; its base offset must be the log's next offset (else
  // errc::offset_mismatch), or past it on a compacted log (the leader's
  // cleaner removed the offsets between; the gap is recorded in the cleaner
  // checkpoint first).
  asio::awaitable<std::expected<append_result, std::error_code>> append_replica(std::span<std::byte> batch);

  // Returns once everything appended before the call is durable
  // (fdatasync'ed). Concurrent flushes share one fdatasync.
  asio::awaitable<std::error_code> flush();

  // Whole batches from the one containing `from`, up to `max_bytes` (at
  // least one batch, so a reader always progresses), never past `upto`
  // (exclusive; defaults to the log end). An empty range when from == upto.
  // Errors: offset_out_of_range when `from` is below the log start or past
  // `upto`.
  asio::awaitable<std::expected<std::optional<file_range>, std::error_code>> read(
      offset from, std::uint32_t max_bytes, std::optional<offset> upto = std::nullopt);

  // Offset of the first batch whose max timestamp is >= t; nullopt when
  // every batch is older (the answer is then the log end).
  asio::awaitable<std::expected<std::optional<offset>, std::error_code>> offset_for_timestamp(timestamp_ms t);

  // Resumes when log_end_offset() > `after` (new data), or on close/failure.
  asio::awaitable<std::error_code> wait_for_data(offset after);

  // Removes every batch at or after `to` (a batch boundary; inside a batch,
  // the whole batch goes), and the epochs that start there. Waits for
  // in-flight writes first. The caller (the replica fetcher) starts no
  // append until it returns.
  asio::awaitable<std::error_code> truncate(offset to);

  // Deletes every segment and starts the log again, empty, at `start` (a
  // follower whose leader's log now starts past this log's end: Kafka's
  // truncateFullyAndStartAt). Waits for in-flight writes first.
  asio::awaitable<std::error_code> reset_to(offset start);

  // Leader epochs (epoch_cache.h): the latest epoch with data, and where
  // the largest epoch <= `epoch` ends in this log.
  [[nodiscard]] std::optional<std::int32_t> latest_epoch() const { return epochs_->latest(); }
  [[nodiscard]] std::optional<std::pair<std::int32_t, offset>> end_for_epoch(std::int32_t epoch) const {
    return epochs_->end_for(epoch, next_offset_);
  }

  // Deletes whole sealed segments past retention.ms (by their newest
  // timestamp) or beyond retention.bytes (oldest first); never the active
  // segment. Returns how many segments were deleted.
  asio::awaitable<std::expected<std::size_t, std::error_code>> apply_retention(timestamp_ms now);

  // Log compaction (log_clean.cpp; the thread and schedule are cleaner.h).
  // plan_clean: on this shard, the snapshot for one pass when the log is
  // compacted, no pass is in progress, and the dirty ratio (bytes of sealed
  // segments that end past the checkpoint / bytes of the cleanable sealed
  // segments) is >= min.cleanable.dirty.ratio. Cleanable: sealed, durable,
  // and (with min.compaction.lag.ms) whose newest timestamp is at least
  // that old; the first segment that is not ends the range.
  std::optional<clean_job> plan_clean(timestamp_ms now);
  // finish_clean: the pass's result back on this shard. Swaps the cleaned
  // segments in (crash-safe rename protocol, docs/storage_format.md) or,
  // after an error, a close, a truncation or a retention that changed the
  // segments meanwhile, deletes the `.cleaned` files. Ends the pass.
  asio::awaitable<std::error_code> finish_clean(const clean_job& job,
                                                const std::expected<clean_output, std::error_code>& out);
  // The cleaner checkpoint: below it every sealed segment was cleaned (the
  // offsets there may have gaps); persisted in `cleaner-offset-checkpoint`.
  [[nodiscard]] offset cleaner_checkpoint() const { return cleaned_end_; }
  [[nodiscard]] bool cleaning() const { return cleaning_; }

  // Idempotent producers of this partition (producer_state.h); snapshots
  // at every roll and clean close, replayed from on open and truncation.
  [[nodiscard]] const producer_state& producers() const { return producers_; }
  // The message-id window (dedup.window.ms > 0), else null.
  [[nodiscard]] const dedup_window* msg_ids() const { return msg_ids_ ? &*msg_ids_ : nullptr; }

  // Clean close: waits for writes, fsyncs data and indexes, persists the
  // recovery point. Later calls fail with log_closed.
  asio::awaitable<std::error_code> close();

  [[nodiscard]] const topic_partition& tp() const { return tp_; }
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
  [[nodiscard]] const log_config& config() const { return cfg_; }
  // New settings (an altered topic config): segment size and age apply at
  // the next roll, retention at the next pass; existing segments stay.
  // Turning the message-id window on starts it empty (it is rebuilt from
  // the log at the next open).
  void set_config(const log_config& cfg);
  // flush.messages / flush.ms: starts a background fdatasync when either
  // is due; called after every write and by the shard's flush tick.
  void flush_if_due(std::chrono::steady_clock::time_point now);
  // First offset still in the log.
  [[nodiscard]] offset log_start_offset() const;
  // Next offset to be written: everything below it is in the file (readable).
  [[nodiscard]] offset log_end_offset() const { return written_end_; }
  // Everything below it is durable.
  [[nodiscard]] offset flushed_offset() const { return durable_end_; }
  // Next offset to assign (>= log_end_offset() while appends are in flight).
  [[nodiscard]] offset next_offset() const { return next_offset_; }
  [[nodiscard]] offset recovery_point() const { return recovery_point_; }
  [[nodiscard]] std::size_t segment_count() const { return segments_.size(); }
  [[nodiscard]] std::uint64_t size_bytes() const;
  // Segment base offsets, oldest first (for tests and tools).
  [[nodiscard]] std::vector<offset> segment_bases() const;

 private:
  struct pending_write;

  log(io_ring& ring, asio::any_io_executor ex, std::filesystem::path dir, topic_partition tp, log_config cfg);

  asio::awaitable<std::error_code> do_open();
  asio::awaitable<std::expected<append_result, std::error_code>> enqueue(std::span<std::byte> batch,
                                                                          const schemas::batch_header& h,
                                                                          bool track_epoch);
  std::error_code maybe_roll(std::uint32_t incoming_bytes);
  std::error_code roll();
  void start_writer();
  // The leader-epoch checkpoint, written through the ring.
  void start_epoch_save();
  asio::awaitable<void> epoch_save_loop();
  asio::awaitable<std::error_code> save_epochs_now();
  asio::awaitable<void> write_loop();
  asio::awaitable<std::error_code> write_group(std::vector<pending_write*>& group);
  void maybe_start_sync();
  asio::awaitable<void> sync_loop();
  asio::awaitable<std::error_code> quiesce();
  // A write that met a full disk (or a roll that could not create its
  // segment): the log takes back the offsets it handed out past what was
  // written, then takes appends again (STORAGE_FULL until then).
  static bool out_of_space(std::error_code ec);
  void release_sealed_tails();
  void start_take_back();
  asio::awaitable<void> take_back_unwritten();
  asio::awaitable<std::error_code> do_truncate(offset to);
  asio::awaitable<std::error_code> persist_recovery_point(offset point);
  void fail(std::error_code ec, const char* what);
  void maybe_notify_idle();
  // No write, sync, checkpoint or snapshot in flight and none queued.
  [[nodiscard]] bool idle() const {
    return !writing_ && !syncing_ && !saving_epochs_ && saving_snapshots_ == 0 && queue_.empty();
  }
  std::error_code check_usable() const;
  [[nodiscard]] std::shared_ptr<segment> segment_for(offset o) const;
  // Cancels a cleaning pass in progress and waits until it has finished.
  asio::awaitable<void> wait_for_clean();
  // Writes the checkpoint only for a log that has one or is compacted
  // (others keep it in memory: a missing file reads as the log start).
  asio::awaitable<std::error_code> persist_cleaner_checkpoint(offset point);
  asio::awaitable<std::error_code> replace_file(const char* name, std::span<const std::byte> bytes);
  asio::awaitable<std::error_code> sync_dir(std::filesystem::path dir);
  asio::awaitable<std::error_code> sync_dir() { return sync_dir(dir_); }
  [[nodiscard]] bool unchanged_since(const clean_job& job) const;
  // The producer state as of the log end: the newest snapshot at or below
  // it (snapshots past it are deleted) plus the batches after it.
  asio::awaitable<std::error_code> rebuild_producers();
  // Writes the producer state as of next_offset_ (roll, close) through the
  // ring, unsynced (a torn one is skipped on open); a failure only costs a
  // longer replay later. snapshot_producers() starts it in the background
  // (quiesce waits for it); write_producer_snapshot() is the write.
  void snapshot_producers();
  asio::awaitable<void> write_producer_snapshot(offset at, std::vector<std::byte> bytes);
  // Deletes producer snapshots outside [from, to].
  void remove_producer_snapshots(offset from, offset to);
  // The message-id window as of the log end: the ids of the records from
  // the first batch within the window (time index) to the end.
  asio::awaitable<std::error_code> rebuild_msg_ids();
  // Adds the ids of `view`'s records (its base offset stamped) to the window.
  void note_msg_ids(const schemas::batch_view& view);
  // Logs when ids left the window early since the count was `before`.
  void warn_if_evicted(std::uint64_t before);

  io_ring& ring_;
  asio::any_io_executor ex_;  // the shard's; write and sync loops run on it
  std::filesystem::path dir_;
  topic_partition tp_;
  log_config cfg_;

  std::vector<std::shared_ptr<segment>> segments_;  // by base offset; back() is active
  std::optional<epoch_cache> epochs_;                // loaded by open()
  offset next_offset_{0};
  offset written_end_{0};
  offset durable_end_{0};
  offset recovery_point_{0};

  std::deque<pending_write*> queue_;
  bool writing_ = false;
  bool syncing_ = false;
  bool sync_wanted_ = false;  // flush_if_due asked for a sync nobody waits on
  bool entries_unsynced_ = false;  // a roll created files whose directory entries are not durable yet
  // When the oldest unflushed write landed (nullopt: everything written is durable).
  std::optional<std::chrono::steady_clock::time_point> unflushed_since_;
  bool closed_ = false;
  bool truncating_ = false;
  bool rolling_back_ = false;  // take_back_unwritten() runs or is about to
  bool saving_epochs_ = false;  // epoch_save_loop() runs
  std::size_t saving_snapshots_ = 0;  // write_producer_snapshot() calls running
  std::uint64_t epoch_generation_ = 0;  // epochs assigned by appends so far
  std::uint64_t saved_generation_ = 0;  // of them, in the checkpoint file
  std::error_code failure_;

  offset_waiters written_waiters_;  // wait_for_data, quiesce
  offset_waiters durable_waiters_;  // flush
  std::vector<completion> idle_waiters_;  // quiesce: no write or sync in flight
  bool preallocate_ = true;

  producer_state producers_;
  std::optional<dedup_window> msg_ids_;

  offset cleaned_end_{0};  // the cleaner checkpoint (first dirty offset)
  bool cleaning_ = false;  // plan_clean .. finish_clean
  std::shared_ptr<std::atomic<bool>> clean_cancel_;
  std::vector<completion> clean_waiters_;  // wait_for_clean
};

}  // namespace runnel::storage
