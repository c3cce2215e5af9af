#include "schemas/batch.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#include "schemas/assert.h"
#include "schemas/batch_generated.h"
#include "schemas/crc32c.h"

namespace runnel::schemas {

static_assert(std::endian::native == std::endian::little,
              "the batch format is little endian and is read in place");
static_assert(sizeof(fb::BatchHeader) == batch_header_size, "BatchHeader layout drifted");
static_assert(alignof(fb::BatchHeader) == batch_alignment);

namespace {

template <class T>
void store(std::span<std::byte> bytes, std::size_t pos, T v) {
  std::memcpy(bytes.data() + pos, &v, sizeof(T));
}

const fb::Records* records_of(std::span<const std::byte> batch) {
  return flatbuffers::GetRoot<fb::Records>(batch.data() + batch_header_size);
}

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

}  // namespace

std::expected<batch_header, std::error_code> decode_header(std::span<const std::byte> bytes,
                                                           std::uint32_t max_length) {
  if (bytes.size() < batch_header_size) return std::unexpected(errc::batch_too_short);
  fb::BatchHeader raw;
  std::memcpy(static_cast<void*>(&raw), bytes.data(), batch_header_size);
  batch_header h;
  h.base_offset = offset(raw.base_offset());
  h.length = raw.length();
  h.epoch = leader_epoch(raw.leader_epoch());
  h.crc = raw.crc();
  h.magic = raw.magic();
  h.attributes = raw.attributes();
  h.last_offset_delta = raw.last_offset_delta();
  h.record_count = raw.record_count();
  h.first_timestamp = timestamp_ms(raw.first_timestamp());
  h.max_timestamp = timestamp_ms(raw.max_timestamp());
  h.producer = producer_id(raw.producer_id());
  h.producer_epoch = raw.producer_epoch();
  h.base_sequence = raw.base_sequence();
  if (h.length < min_batch_size || h.length % batch_alignment != 0 || h.length > max_length) {
    return std::unexpected(errc::bad_length);
  }
  return h;
}

std::error_code check_crc(std::span<const std::byte> batch, const batch_header& header) {
  RUNNEL_ASSERT(batch.size() == header.length, "check_crc needs exactly one batch ({} != {})", batch.size(),
                header.length);
  if (crc32c::value(batch.subspan(crc_covered_from)) != header.crc) return errc::crc_mismatch;
  return {};
}

std::expected<batch_header, std::error_code> verify_batch(std::span<const std::byte> batch,
                                                          const verify_limits& limits) {
  auto h = decode_header(batch, limits.max_batch_bytes);
  if (!h) return h;
  if (batch.size() < h->length) return std::unexpected(errc::batch_too_short);
  if (batch.size() > h->length) return std::unexpected(errc::bad_length);
  if (h->magic != batch_magic) return std::unexpected(errc::bad_magic);
  if ((h->attributes & ~log_append_time_bit) != 0) return std::unexpected(errc::unsupported_attributes);
  if (auto ec = check_crc(batch, *h)) return std::unexpected(ec);
  // A cleaned batch keeps its offset range but may hold fewer records.
  if (h->record_count < 1 || h->last_offset_delta < h->record_count - 1 ||
      (limits.require_dense && h->last_offset_delta != h->record_count - 1)) {
    return std::unexpected(errc::record_count_mismatch);
  }
  if (h->max_timestamp < h->first_timestamp) return std::unexpected(errc::bad_timestamps);

  // The Verifier walks every table once; bound its work by the buffer size
  // (a table is at least 4 bytes) and its depth by the schema's (records ->
  // record -> headers -> header -> string is 5 levels).
  auto fb_bytes = batch.subspan(batch_header_size);
  flatbuffers::Verifier::Options opts;
  opts.max_depth = 8;
  opts.max_tables = static_cast<flatbuffers::uoffset_t>(fb_bytes.size() / 4 + 1);
  opts.check_alignment = true;
  flatbuffers::Verifier verifier(reinterpret_cast<const std::uint8_t*>(fb_bytes.data()), fb_bytes.size(), opts);
  if (!verifier.VerifyBuffer<fb::Records>(nullptr)) return std::unexpected(errc::bad_records);

  const auto* records = records_of(batch)->records();
  if (records->size() != static_cast<flatbuffers::uoffset_t>(h->record_count)) {
    return std::unexpected(errc::record_count_mismatch);
  }
  // Strictly increasing deltas in [0, last_offset_delta]; with as many
  // records as offsets (a producer's batch) that means 0, 1, 2, ...
  std::int64_t prev = -1;
  for (flatbuffers::uoffset_t i = 0; i < records->size(); ++i) {
    const std::int32_t d = records->Get(i)->offset_delta();
    if (d <= prev || d > h->last_offset_delta) return std::unexpected(errc::bad_offset_delta);
    prev = d;
  }
  return h;
}

void stamp_base_offset(std::span<std::byte> batch, offset base) {
  RUNNEL_ASSERT(batch.size() >= batch_header_size, "stamping a batch of {} bytes", batch.size());
  store<std::int64_t>(batch, base_offset_pos, base.value());
}

void stamp_producer(std::span<std::byte> batch, producer_id id, std::int16_t epoch, std::int32_t base_sequence) {
  RUNNEL_ASSERT(batch.size() >= batch_header_size, "stamping a batch of {} bytes", batch.size());
  store<std::int64_t>(batch, producer_id_pos, id.value());
  store<std::int16_t>(batch, producer_epoch_pos, epoch);
  store<std::int32_t>(batch, base_sequence_pos, base_sequence);
  store<std::uint32_t>(batch, crc_pos, crc32c::value(std::span<const std::byte>(batch).subspan(crc_covered_from)));
}

void stamp_leader_epoch(std::span<std::byte> batch, leader_epoch epoch) {
  RUNNEL_ASSERT(batch.size() >= batch_header_size, "stamping a batch of {} bytes", batch.size());
  store<std::int32_t>(batch, leader_epoch_pos, epoch.value());
}

// --- record_view / batch_view ---------------------------------------------

namespace {
const flatbuffers::Vector<flatbuffers::Offset<fb::RecordHeader>>* headers_of(const void* p) {
  return static_cast<const flatbuffers::Vector<flatbuffers::Offset<fb::RecordHeader>>*>(p);
}
std::span<const std::byte> as_span(const flatbuffers::Vector<std::uint8_t>* v) {
  return std::as_bytes(std::span(v->data(), v->size()));
}
}  // namespace

std::size_t record_view::header_count() const { return headers == nullptr ? 0 : headers_of(headers)->size(); }

std::string_view record_view::header_key(std::size_t i) const {
  return headers_of(headers)->Get(static_cast<flatbuffers::uoffset_t>(i))->key()->string_view();
}

std::span<const std::byte> record_view::header_value(std::size_t i) const {
  const auto* v = headers_of(headers)->Get(static_cast<flatbuffers::uoffset_t>(i))->value();
  return v == nullptr ? std::span<const std::byte>{} : as_span(v);
}

batch_view::batch_view(std::span<const std::byte> bytes, const batch_header& header)
    : bytes_(bytes), header_(header), records_(records_of(bytes)) {}

std::expected<batch_view, std::error_code> batch_view::open(std::span<const std::byte> batch,
                                                            const verify_limits& limits) {
  auto h = verify_batch(batch, limits);
  if (!h) return std::unexpected(h.error());
  return batch_view(batch, *h);
}

std::size_t batch_view::record_count() const { return records_->records()->size(); }

record_view batch_view::record(std::size_t i) const {
  const auto* r = records_->records()->Get(static_cast<flatbuffers::uoffset_t>(i));
  record_view out;
  out.off = header_.base_offset + std::int64_t{r->offset_delta()};
  out.timestamp = header_.first_timestamp + r->timestamp_delta();
  if (r->key() != nullptr) out.key = as_span(r->key());
  if (r->value() != nullptr) out.value = as_span(r->value());
  out.headers = r->headers();
  return out;
}

std::vector<std::byte> rebuild_batch(const batch_view& src, std::span<const std::size_t> keep) {
  RUNNEL_ASSERT(!keep.empty(), "rebuilding a batch with no records");
  const auto* in = src.records_->records();
  flatbuffers::FlatBufferBuilder fbb(src.bytes().size());
  fbb.Align(batch_alignment);
  auto bytes_vec = [&](const flatbuffers::Vector<std::uint8_t>* v) {
    return v == nullptr ? flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>>{}
                        : fbb.CreateVector(v->data(), v->size());
  };
  std::int64_t first_ts = 0;
  std::int64_t max_ts = 0;
  for (std::size_t n = 0; n < keep.size(); ++n) {
    std::int64_t ts = src.record(keep[n]).timestamp.value();
    if (n == 0) first_ts = max_ts = ts;
    max_ts = std::max(max_ts, ts);
  }
  std::vector<flatbuffers::Offset<fb::Record>> records;
  std::vector<flatbuffers::Offset<fb::RecordHeader>> headers;
  for (std::size_t i : keep) {
    RUNNEL_ASSERT(i < in->size(), "record {} of a batch of {}", i, in->size());
    const auto* r = in->Get(static_cast<flatbuffers::uoffset_t>(i));
    flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::RecordHeader>>> headers_off;
    if (r->headers() != nullptr) {
      headers.clear();
      for (const auto* h : *r->headers()) {
        auto k = fbb.CreateString(h->key());
        headers.push_back(fb::CreateRecordHeader(fbb, k, bytes_vec(h->value())));
      }
      headers_off = fbb.CreateVector(headers);
    }
    auto key = bytes_vec(r->key());
    auto value = bytes_vec(r->value());
    std::int64_t ts = src.header().first_timestamp.value() + r->timestamp_delta();
    records.push_back(fb::CreateRecord(fbb, r->offset_delta(), ts - first_ts, key, value, headers_off));
  }
  fbb.Finish(fb::CreateRecords(fbb, fbb.CreateVector(records)));

  std::size_t fb_size = fbb.GetSize();
  std::size_t total = round_up(batch_header_size + fb_size, batch_alignment);
  std::vector<std::byte> out(batch_header_size);
  const auto* fb_begin = reinterpret_cast<const std::byte*>(fbb.GetBufferPointer());
  out.insert(out.end(), fb_begin, fb_begin + fb_size);
  out.resize(total);
  const auto& sh = src.header();
  fb::BatchHeader h(sh.base_offset.value(), static_cast<std::uint32_t>(total), sh.epoch.value(), /*crc=*/0,
                    batch_magic, /*reserved0=*/0, sh.attributes, sh.last_offset_delta,
                    static_cast<std::int32_t>(keep.size()), first_ts, max_ts, sh.producer.value(), sh.producer_epoch,
                    /*reserved1=*/0, sh.base_sequence);
  std::memcpy(out.data(), static_cast<const void*>(&h), batch_header_size);
  store<std::uint32_t>(out, crc_pos, crc32c::value(std::span<const std::byte>(out).subspan(crc_covered_from)));
  return out;
}

// --- batch_builder --------------------------------------------------------

struct batch_builder::state {
  explicit state(std::size_t capacity) : fbb(capacity) { fbb.Align(batch_alignment); }

  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<fb::Record>> records;
  std::vector<flatbuffers::Offset<fb::RecordHeader>> headers_scratch;
  timestamp_ms first_timestamp{0};
  timestamp_ms max_timestamp{0};
  producer_id producer{-1};
  std::int16_t producer_epoch = -1;
  std::int32_t base_sequence = -1;
};

batch_builder::batch_builder(std::size_t initial_capacity) : s_(std::make_unique<state>(initial_capacity)) {}
batch_builder::~batch_builder() = default;
batch_builder::batch_builder(batch_builder&&) noexcept = default;
batch_builder& batch_builder::operator=(batch_builder&&) noexcept = default;

void batch_builder::add(std::optional<std::span<const std::byte>> key,
                        std::optional<std::span<const std::byte>> value, timestamp_ms ts,
                        std::span<const header_in> headers) {
  auto& fbb = s_->fbb;
  auto bytes_vec = [&](std::span<const std::byte> b) {
    return fbb.CreateVector(reinterpret_cast<const std::uint8_t*>(b.data()), b.size());
  };
  if (s_->records.empty()) {
    s_->first_timestamp = ts;
    s_->max_timestamp = ts;
  }
  s_->max_timestamp = std::max(s_->max_timestamp, ts);

  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::RecordHeader>>> headers_off;
  if (!headers.empty()) {
    s_->headers_scratch.clear();
    for (const auto& h : headers) {
      auto k = fbb.CreateString(h.key.data(), h.key.size());
      auto v = bytes_vec(h.value);
      s_->headers_scratch.push_back(fb::CreateRecordHeader(fbb, k, v));
    }
    headers_off = fbb.CreateVector(s_->headers_scratch);
  }
  flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> key_off;
  flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> value_off;
  if (key) key_off = bytes_vec(*key);
  if (value) value_off = bytes_vec(*value);
  auto delta = static_cast<std::int32_t>(s_->records.size());
  s_->records.push_back(
      fb::CreateRecord(fbb, delta, ts - s_->first_timestamp, key_off, value_off, headers_off));
}

void batch_builder::set_producer(producer_id id, std::int16_t epoch, std::int32_t base_sequence) {
  s_->producer = id;
  s_->producer_epoch = epoch;
  s_->base_sequence = base_sequence;
}

std::size_t batch_builder::record_count() const { return s_->records.size(); }

std::size_t batch_builder::size_estimate() const {
  // Records vector (4 bytes per element + length) and root table/vtable.
  return batch_header_size + s_->fbb.GetSize() + 4 * s_->records.size() + 32;
}

std::vector<std::byte> batch_builder::finish() {
  RUNNEL_ASSERT(!s_->records.empty(), "finishing an empty batch");
  auto& fbb = s_->fbb;
  auto vec = fbb.CreateVector(s_->records);
  fbb.Finish(fb::CreateRecords(fbb, vec));

  std::size_t fb_size = fbb.GetSize();
  std::size_t total = round_up(batch_header_size + fb_size, batch_alignment);
  RUNNEL_ASSERT(total <= std::numeric_limits<std::uint32_t>::max(), "batch of {} bytes", total);
  std::vector<std::byte> out;
  out.reserve(total);
  out.resize(batch_header_size);
  const auto* fb_begin = reinterpret_cast<const std::byte*>(fbb.GetBufferPointer());
  out.insert(out.end(), fb_begin, fb_begin + fb_size);
  out.resize(total);  // zero pad to the alignment

  auto count = static_cast<std::int32_t>(s_->records.size());
  fb::BatchHeader h(/*base_offset=*/0, static_cast<std::uint32_t>(total), /*leader_epoch=*/0, /*crc=*/0,
                    batch_magic, /*reserved0=*/0, /*attributes=*/0, count - 1, count,
                    s_->first_timestamp.value(), s_->max_timestamp.value(), s_->producer.value(),
                    s_->producer_epoch, /*reserved1=*/0, s_->base_sequence);
  std::memcpy(out.data(), static_cast<const void*>(&h), batch_header_size);
  auto crc = crc32c::value(std::span<const std::byte>(out).subspan(crc_covered_from));
  store<std::uint32_t>(out, crc_pos, crc);

  fbb.Clear();
  fbb.Align(batch_alignment);
  s_->records.clear();
  return out;
}

}  // namespace runnel::schemas
