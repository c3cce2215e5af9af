#pragma once
// Storage vocabulary: positions in files, log configuration, read results.

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "schemas/types.h"

namespace runnel::storage {

// Byte position inside one segment file.
using file_pos = strong<std::uint64_t, struct file_pos_tag>;

// Per-log settings (topic configs with these names override the defaults).
struct log_config {
  std::uint64_t segment_bytes = 1ULL << 30;                          // segment.bytes
  std::chrono::milliseconds segment_ms{7LL * 24 * 3600 * 1000};      // segment.ms
  std::uint32_t index_interval_bytes = 4096;                         // index.interval.bytes
  std::int64_t retention_bytes = -1;                                 // retention.bytes, -1 = none
  std::chrono::milliseconds retention_ms{7LL * 24 * 3600 * 1000};    // retention.ms, <0 = none
  std::uint64_t preallocate_bytes = 16ULL << 20;                     // segment.preallocate.bytes, 0 = off
  std::uint32_t max_write_bytes = 4U << 20;                          // coalesce appends up to this per write
  // Background fdatasync (also persisting the indexes, so a restart after
  // a crash scans only what came after) when this many records or this
  // much time are unflushed; 0 = never (a roll and acks=all still flush).
  std::uint64_t flush_messages = 0;                                  // flush.messages
  std::chrono::milliseconds flush_ms{0};                             // flush.ms
  bool verify_on_open = false;                                       // log.verify.on.open: CRC-scan everything
  // Log compaction (cleanup.policy = delete | compact | compact,delete).
  bool cleanup_delete = true;                                        // retention deletes old segments
  bool cleanup_compact = false;                                      // the cleaner keeps the latest record per key
  std::chrono::milliseconds delete_retention_ms{24LL * 3600 * 1000};  // delete.retention.ms: tombstones kept this long
  double min_cleanable_dirty_ratio = 0.5;                            // min.cleanable.dirty.ratio
  std::chrono::milliseconds min_compaction_lag_ms{0};                // min.compaction.lag.ms
  std::chrono::milliseconds producer_id_expiration{24LL * 3600 * 1000};  // producer.id.expiration.ms
  std::chrono::milliseconds dedup_window{0};      // dedup.window.ms: the message-id window, 0 = off
  std::size_t dedup_max_ids = 1'000'000;          // dedup.window.max.ids per partition
};

// Broker-wide log cleaner settings (broker keys log.cleaner.*).
struct cleaner_config {
  bool enable = true;                                   // log.cleaner.enable
  std::uint64_t dedupe_buffer_bytes = 32ULL << 20;      // log.cleaner.dedupe.buffer.size: the offset map
  std::chrono::milliseconds backoff{15'000};            // log.cleaner.backoff.ms: how often to look for work
};

class segment_file;

// Whole batches of one segment, as they lie in the file: a fetch sends
// [pos, pos + length) of `file` unchanged. `file` keeps the segment's
// descriptor open even if retention deletes the segment meanwhile.
struct file_range {
  std::shared_ptr<const segment_file> file;
  file_pos pos{0};
  std::uint32_t length = 0;
  offset first_offset{0};  // base offset of the first batch in the range
  offset next_offset{0};   // offset after the last batch in the range
};

struct append_result {
  offset base_offset{0};
  offset last_offset{0};
  timestamp_ms append_time{0};
  bool duplicate = false;  // an idempotent producer's retry: the offsets are the first copy's, nothing written
  // Records the message-id window dropped: (index in the batch, offset of
  // the first copy). All dropped: nothing written, base/last are the first
  // dropped record's first copy.
  std::vector<std::pair<std::int32_t, offset>> dropped;
};

}  // namespace runnel::storage
