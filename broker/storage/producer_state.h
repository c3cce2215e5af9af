#pragma once
// producer_state: what one partition knows of its idempotent producers
// (Kafka's KIP-98): per producer id, its epoch and the sequence ranges and
// offsets of its last 5 batches.
//
//   leader append:   check(batch) -> append | duplicate (answer the first
//                    copy's offsets, write nothing) | out_of_order (a gap)
//                    | fenced (an older epoch) | unknown_producer (a
//                    sequence other than 0 from a producer it does not know,
//                    or one expired after producer.id.expiration.ms)
//   every append:    apply(batch)  (leader, follower, recovery replay)
//
// Followers apply what they replicate, so a follower that becomes leader
// answers retries as the old leader would. The log persists it as
// snapshots (encode/decode) at segment roll and replays the batch headers
// after the newest snapshot on open and after a truncation (log.cpp).
//
// On the log's shard; not thread-safe.

#include <cstdint>
#include <deque>
#include <expected>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "broker/storage/types.h"
#include "schemas/batch.h"

namespace runnel::storage {

inline constexpr std::size_t producer_batches_kept = 5;

struct producer_batch {
  std::int32_t first_seq = 0;
  std::int32_t last_seq = 0;
  offset base{0};
  offset last{0};
  friend bool operator==(const producer_batch&, const producer_batch&) = default;
};

struct producer_entry {
  std::int16_t epoch = 0;
  std::deque<producer_batch> batches;  // oldest first, at most producer_batches_kept
  std::int64_t last_timestamp = 0;     // the newest batch's max timestamp (ms), for expiry
};

enum class sequence_verdict { append, duplicate, out_of_order, fenced, unknown_producer };

struct sequence_check {
  sequence_verdict verdict = sequence_verdict::append;
  producer_batch original;  // duplicate: the copy already in the log
};

// The sequence of a batch's last record (sequences wrap at INT32_MAX).
[[nodiscard]] std::int32_t last_sequence(const schemas::batch_header& h);

class producer_state {
 public:
  // The leader's verdict on batch `h` (producer id >= 0). Producers whose
  // newest batch is older than `expired_before_ms` count as unknown.
  [[nodiscard]] sequence_check check(const schemas::batch_header& h, std::int64_t expired_before_ms) const;
  // Records an appended batch (its base offset stamped); batches without a
  // producer id change nothing.
  void apply(const schemas::batch_header& h);
  // A batch that wrote nothing (the message-id window dropped every
  // record): its sequence range is taken, answered with `first_copy`.
  void apply(const schemas::batch_header& h, offset first_copy);
  // Forgets producers whose newest batch is older than `before_ms`;
  // returns how many.
  std::size_t expire(std::int64_t before_ms);
  void clear() { producers_.clear(); }
  [[nodiscard]] std::size_t size() const { return producers_.size(); }
  [[nodiscard]] const producer_entry* find(std::int64_t producer_id) const;

  // Snapshot bytes (docs/storage_format.md): "RNPS", version 1, the
  // producers, CRC-32C of everything before it.
  [[nodiscard]] std::vector<std::byte> encode() const;
  static std::expected<producer_state, std::error_code> decode(std::span<const std::byte> bytes);

 private:
  std::unordered_map<std::int64_t, producer_entry> producers_;
};

// `<20-digit offset>.producers` in a log directory: the state of every
// batch below that offset.
[[nodiscard]] std::filesystem::path producer_snapshot_path(const std::filesystem::path& dir, offset at);
// The snapshot offsets in `dir`, oldest first.
[[nodiscard]] std::vector<offset> producer_snapshots(const std::filesystem::path& dir);

}  // namespace runnel::storage
