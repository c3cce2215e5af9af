#pragma once
// Record batches: build, view, verify, stamp. The format (see batch.fbs and
// docs/storage_format.md) is the same on the wire and on disk:
//
//   [BatchHeader: 64 bytes, little endian][Records FlatBuffer][zero pad to 8]
//
//   @0  base_offset  i64  } stamped by the leader, not covered by the CRC
//   @8  length       u32  }
//   @12 leader_epoch i32  }
//   @16 crc          u32    CRC-32C of bytes [20, length)
//   @20 magic ... @63       covered by the CRC (see batch.fbs)

#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <vector>

#include "schemas/errc.h"
#include "schemas/types.h"

namespace runnel::fb {
struct Records;
}

namespace runnel::schemas {

inline constexpr std::size_t batch_header_size = 64;
inline constexpr std::size_t batch_alignment = 8;
// Smallest legal batch: a header plus the smallest Records buffer.
inline constexpr std::size_t min_batch_size = batch_header_size + 16;
inline constexpr std::uint8_t batch_magic = 1;
// Byte positions of the fields the broker reads or stamps without parsing.
inline constexpr std::size_t base_offset_pos = 0;
inline constexpr std::size_t length_pos = 8;
inline constexpr std::size_t leader_epoch_pos = 12;
inline constexpr std::size_t crc_pos = 16;
inline constexpr std::size_t crc_covered_from = 20;
inline constexpr std::size_t producer_id_pos = 48;
inline constexpr std::size_t producer_epoch_pos = 56;
inline constexpr std::size_t base_sequence_pos = 60;

// attributes bits
inline constexpr std::uint16_t compression_mask = 0x7;
inline constexpr std::uint16_t log_append_time_bit = 0x8;

// The decoded fixed header.
struct batch_header {
  offset base_offset{0};
  std::uint32_t length = 0;
  leader_epoch epoch{0};
  std::uint32_t crc = 0;
  std::uint8_t magic = 0;
  std::uint16_t attributes = 0;
  std::int32_t last_offset_delta = 0;
  std::int32_t record_count = 0;
  timestamp_ms first_timestamp{0};
  timestamp_ms max_timestamp{0};
  producer_id producer{-1};
  std::int16_t producer_epoch = -1;
  std::int32_t base_sequence = -1;

  [[nodiscard]] offset last_offset() const { return base_offset + last_offset_delta; }
  [[nodiscard]] offset next_offset() const { return base_offset + (last_offset_delta + std::int64_t{1}); }
};

// Decodes the header of the batch at the start of `bytes`. Checks only that
// the header fits and that `length` is plausible (>= min_batch_size, a
// multiple of 8, <= max_length); says nothing about the bytes behind it.
std::expected<batch_header, std::error_code> decode_header(std::span<const std::byte> bytes,
                                                           std::uint32_t max_length = UINT32_MAX);

// CRC-32C over [crc_covered_from, length) compared with the header's crc.
// `batch` must hold exactly one whole batch (header.length bytes).
std::error_code check_crc(std::span<const std::byte> batch, const batch_header& header);

struct verify_limits {
  std::uint32_t max_batch_bytes = 1024 * 1024;
  // A producer's batch has every offset of its range: record_count ==
  // last_offset_delta + 1 (with the delta rule below: deltas 0, 1, 2, ...).
  // Off, a batch the log cleaner shrank is accepted too: fewer records,
  // deltas strictly increasing and <= last_offset_delta.
  bool require_dense = false;
};

// Full verification of untrusted bytes holding exactly one batch: header,
// magic, attributes, CRC, the Records FlatBuffer (Verifier with tight
// depth/table limits), record count, offset deltas (strictly increasing, in
// [0, last_offset_delta]), timestamps.
std::expected<batch_header, std::error_code> verify_batch(std::span<const std::byte> batch,
                                                          const verify_limits& limits);

// The log cleaner's copy of a verified batch that keeps only the records
// `keep` names (indexes into the batch, ascending, not empty): same base
// offset, last_offset_delta, leader epoch, attributes and producer fields;
// each record keeps its offset_delta; record_count, first/max timestamp
// (those of the kept records), length and CRC are recomputed.
class batch_view;
std::vector<std::byte> rebuild_batch(const batch_view& src, std::span<const std::size_t> keep);

// Writes the broker-stamped fields in place; the CRC stays valid.
void stamp_base_offset(std::span<std::byte> batch, offset base);
void stamp_leader_epoch(std::span<std::byte> batch, leader_epoch epoch);
// The producer's: id, epoch and base sequence (an idempotent producer
// stamps them when it first sends the batch), then the CRC again.
void stamp_producer(std::span<std::byte> batch, producer_id id, std::int16_t epoch, std::int32_t base_sequence);

// One record read in place from a verified batch; spans point into it.
struct record_view {
  offset off{0};
  timestamp_ms timestamp{0};
  std::optional<std::span<const std::byte>> key;    // nullopt: null key
  std::optional<std::span<const std::byte>> value;  // nullopt: tombstone
  const void* headers = nullptr;                    // fb::Vector<RecordHeader>*; see header_count
  [[nodiscard]] std::size_t header_count() const;
  [[nodiscard]] std::string_view header_key(std::size_t i) const;
  [[nodiscard]] std::span<const std::byte> header_value(std::size_t i) const;
};

// A view of one whole batch whose bytes were verified (or read back from a
// log that verified them on append). Does not own the bytes.
class batch_view {
 public:
  // Verifies (verify_batch) and returns a view.
  static std::expected<batch_view, std::error_code> open(std::span<const std::byte> batch,
                                                         const verify_limits& limits);
  // A view of bytes the caller has verified already (log::append's are:
  // its callers ran verify_batch), `header` decoded from them: no second
  // CRC and FlatBuffers pass over every appended batch.
  static batch_view of_verified(std::span<const std::byte> batch, const batch_header& header) {
    return batch_view(batch, header);
  }

  [[nodiscard]] const batch_header& header() const { return header_; }
  [[nodiscard]] std::span<const std::byte> bytes() const { return bytes_; }
  [[nodiscard]] std::size_t record_count() const;
  [[nodiscard]] record_view record(std::size_t i) const;

 private:
  friend std::vector<std::byte> rebuild_batch(const batch_view& src, std::span<const std::size_t> keep);
  batch_view(std::span<const std::byte> bytes, const batch_header& header);

  std::span<const std::byte> bytes_;
  batch_header header_;
  const fb::Records* records_ = nullptr;
};

struct header_in {
  std::string_view key;
  std::span<const std::byte> value;
};

// Builds one batch. Not thread-safe. Typical use:
//   batch_builder b; b.add(key, value, ts); ...; std::vector<std::byte> bytes = b.finish();
class batch_builder {
 public:
  explicit batch_builder(std::size_t initial_capacity = 16 * 1024);
  ~batch_builder();
  batch_builder(const batch_builder&) = delete;             // owns a FlatBufferBuilder
  batch_builder& operator=(const batch_builder&) = delete;  // owns a FlatBufferBuilder
  batch_builder(batch_builder&&) noexcept;
  batch_builder& operator=(batch_builder&&) noexcept;

  void add(std::optional<std::span<const std::byte>> key, std::optional<std::span<const std::byte>> value,
           timestamp_ms ts, std::span<const header_in> headers = {});

  // Idempotent producer identity; defaults to "not idempotent" (-1s).
  void set_producer(producer_id id, std::int16_t epoch, std::int32_t base_sequence);

  [[nodiscard]] std::size_t record_count() const;
  // Bytes the batch would take if finished now (an upper bound within 8 bytes).
  [[nodiscard]] std::size_t size_estimate() const;
  [[nodiscard]] bool empty() const { return record_count() == 0; }

  // Produces the batch (base offset 0, leader epoch 0, CRC set) and resets
  // the builder for the next batch. Requires at least one record.
  std::vector<std::byte> finish();

 private:
  struct state;
  std::unique_ptr<state> s_;
};

}  // namespace runnel::schemas
