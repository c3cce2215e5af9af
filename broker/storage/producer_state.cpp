#include "broker/storage/producer_state.h"

#include <algorithm>
#include <cstring>

#include "broker/storage/errc.h"
#include "broker/storage/segment.h"
#include "schemas/crc32c.h"

namespace runnel::storage {

namespace {

constexpr std::uint32_t snapshot_magic = 0x53504e52;  // "RNPS"
constexpr std::uint32_t snapshot_version = 1;
constexpr const char* snapshot_ext = ".producers";

std::int32_t next_sequence(std::int32_t s) { return s == INT32_MAX ? 0 : s + 1; }

template <class T>
void put(std::vector<std::byte>& out, T v) {
  const auto at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &v, sizeof(T));
}

class cursor {
 public:
  explicit cursor(std::span<const std::byte> b) : b_(b) {}
  template <class T>
  bool get(T& v) {
    if (b_.size() - at_ < sizeof(T)) return false;
    std::memcpy(&v, b_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return true;
  }
  [[nodiscard]] bool done() const { return at_ == b_.size(); }

 private:
  std::span<const std::byte> b_;
  std::size_t at_ = 0;
};

}  // namespace

std::int32_t last_sequence(const schemas::batch_header& h) {
  const std::int64_t last = std::int64_t{h.base_sequence} + h.last_offset_delta;
  return static_cast<std::int32_t>(last > INT32_MAX ? last - INT32_MAX - 1 : last);
}

sequence_check producer_state::check(const schemas::batch_header& h, std::int64_t expired_before_ms) const {
  auto it = producers_.find(h.producer.value());
  const bool known = it != producers_.end() && it->second.last_timestamp >= expired_before_ms;
  if (!known) {
    // A producer starts (or starts again after expiry) at sequence 0.
    return {h.base_sequence == 0 ? sequence_verdict::append : sequence_verdict::unknown_producer, {}};
  }
  const producer_entry& e = it->second;
  if (h.producer_epoch < e.epoch) return {sequence_verdict::fenced, {}};
  if (h.producer_epoch > e.epoch) {
    // A new epoch restarts the sequences.
    return {h.base_sequence == 0 ? sequence_verdict::append : sequence_verdict::out_of_order, {}};
  }
  const std::int32_t last = last_sequence(h);
  for (const auto& b : e.batches) {
    if (b.first_seq == h.base_sequence && b.last_seq == last) return {sequence_verdict::duplicate, b};
  }
  const std::int32_t expected = e.batches.empty() ? 0 : next_sequence(e.batches.back().last_seq);
  return {h.base_sequence == expected ? sequence_verdict::append : sequence_verdict::out_of_order, {}};
}

void producer_state::apply(const schemas::batch_header& h) {
  if (h.producer.value() < 0) return;
  auto [it, created] = producers_.try_emplace(h.producer.value());
  producer_entry& e = it->second;
  const bool restarts = !e.batches.empty() && h.base_sequence == 0 && next_sequence(e.batches.back().last_seq) != 0;
  if (created || h.producer_epoch != e.epoch || restarts) {
    // A new producer, a new epoch, or sequences that start again (the
    // producer expired meanwhile): the old batches say nothing now.
    e.epoch = h.producer_epoch;
    e.batches.clear();
    e.last_timestamp = 0;
  }
  e.batches.push_back(producer_batch{h.base_sequence, last_sequence(h), h.base_offset, h.last_offset()});
  if (e.batches.size() > producer_batches_kept) e.batches.pop_front();
  e.last_timestamp = std::max(e.last_timestamp, h.max_timestamp.value());
}

void producer_state::apply(const schemas::batch_header& h, offset first_copy) {
  auto placed = h;
  placed.base_offset = first_copy;
  apply(placed);
  auto& last = producers_.at(h.producer.value()).batches.back();
  last.last = first_copy;
}

std::size_t producer_state::expire(std::int64_t before_ms) {
  return std::erase_if(producers_, [&](const auto& kv) { return kv.second.last_timestamp < before_ms; });
}

const producer_entry* producer_state::find(std::int64_t producer_id) const {
  auto it = producers_.find(producer_id);
  return it == producers_.end() ? nullptr : &it->second;
}

std::vector<std::byte> producer_state::encode() const {
  std::vector<std::byte> out;
  put(out, snapshot_magic);
  put(out, snapshot_version);
  put(out, static_cast<std::uint64_t>(producers_.size()));
  // Sorted by id: the same state always encodes to the same bytes.
  std::vector<std::int64_t> ids;
  ids.reserve(producers_.size());
  for (const auto& [id, e] : producers_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (auto id : ids) {
    const producer_entry& e = producers_.at(id);
    put(out, id);
    put(out, e.epoch);
    put(out, static_cast<std::uint16_t>(e.batches.size()));
    put(out, std::uint32_t{0});
    put(out, e.last_timestamp);
    for (const auto& b : e.batches) {
      put(out, b.first_seq);
      put(out, b.last_seq);
      put(out, b.base.value());
      put(out, b.last.value());
    }
  }
  put(out, crc32c::value(out));
  return out;
}

std::expected<producer_state, std::error_code> producer_state::decode(std::span<const std::byte> bytes) {
  const auto bad = std::unexpected(make_error_code(errc::corrupt_log));
  if (bytes.size() < 4) return bad;
  std::uint32_t crc = 0;
  std::memcpy(&crc, bytes.data() + bytes.size() - 4, 4);
  auto body = bytes.first(bytes.size() - 4);
  if (crc32c::value(body) != crc) return bad;
  cursor c(body);
  std::uint32_t magic = 0;
  std::uint32_t version = 0;
  std::uint64_t count = 0;
  if (!c.get(magic) || !c.get(version) || !c.get(count) || magic != snapshot_magic || version != snapshot_version) {
    return bad;
  }
  producer_state s;
  for (std::uint64_t i = 0; i < count; ++i) {
    std::int64_t id = 0;
    producer_entry e;
    std::uint16_t n = 0;
    std::uint32_t pad = 0;
    if (!c.get(id) || !c.get(e.epoch) || !c.get(n) || !c.get(pad) || !c.get(e.last_timestamp)) return bad;
    if (n > producer_batches_kept) return bad;
    for (std::uint16_t k = 0; k < n; ++k) {
      producer_batch b;
      std::int64_t base = 0;
      std::int64_t last = 0;
      if (!c.get(b.first_seq) || !c.get(b.last_seq) || !c.get(base) || !c.get(last)) return bad;
      b.base = offset(base);
      b.last = offset(last);
      e.batches.push_back(b);
    }
    s.producers_.emplace(id, std::move(e));
  }
  if (!c.done()) return bad;
  return s;
}

std::filesystem::path producer_snapshot_path(const std::filesystem::path& dir, offset at) {
  return segment_path(dir, at, snapshot_ext);
}

std::vector<offset> producer_snapshots(const std::filesystem::path& dir) {
  std::vector<offset> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (auto o = parse_segment_name(entry.path(), snapshot_ext)) out.push_back(*o);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace runnel::storage
