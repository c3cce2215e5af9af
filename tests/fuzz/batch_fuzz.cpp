// Fuzz target for the batch verifier (schemas/batch.h) over arbitrary
// bytes, as the broker meets them in a Produce and the consumer in a
// Fetch: decode_header, verify_batch, batch_view and every record field.
// A batch that verifies must also survive what the broker and the cleaner
// do with it: stamping keeps the CRC valid, and rebuild_batch (the
// cleaner's copy) of any subset of its records verifies again.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "schemas/batch.h"

namespace {

using namespace runnel;

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "batch_fuzz: property broken: %s\n", what);
  std::abort();
}

// Reads every byte so ASan sees a span that points outside the batch.
std::uint8_t touch(std::span<const std::byte> s) {
  std::uint8_t sum = 0;
  for (auto b : s) sum = static_cast<std::uint8_t>(sum + std::to_integer<std::uint8_t>(b));
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // Byte 0 picks the limits; the rest is the batch, 8-aligned like the
  // broker's buffers.
  const schemas::verify_limits limits{(data[0] & 1) != 0 ? 1U << 20 : 4096U, (data[0] & 2) != 0};
  std::vector<std::byte> bytes(size - 1);
  if (!bytes.empty()) std::memcpy(bytes.data(), data + 1, bytes.size());

  auto h = schemas::decode_header(bytes, limits.max_batch_bytes);
  (void)schemas::verify_batch(bytes, limits);  // the whole input, whatever its length says
  if (!h) return 0;
  require(h->length <= limits.max_batch_bytes, "decode_header accepted a length over its limit");
  if (h->length > bytes.size()) return 0;
  const std::span<std::byte> one(bytes.data(), h->length);
  (void)schemas::check_crc(one, *h);

  auto v = schemas::batch_view::open(one, limits);
  if (!v) return 0;
  std::uint8_t sink = 0;
  std::vector<std::size_t> keep;
  for (std::size_t i = 0; i < v->record_count(); ++i) {
    auto r = v->record(i);
    require(r.off >= v->header().base_offset && r.off <= v->header().last_offset(), "record offset outside the batch");
    if (r.key) sink ^= touch(*r.key);
    if (r.value) sink ^= touch(*r.value);
    for (std::size_t k = 0; k < r.header_count(); ++k) {
      auto key = r.header_key(k);
      sink ^= touch(std::as_bytes(std::span(key.data(), key.size())));
      sink ^= touch(r.header_value(k));
    }
    if (i % 2 == 0) keep.push_back(i);
  }
  if (!keep.empty()) {
    auto rebuilt = schemas::rebuild_batch(*v, keep);
    auto rv = schemas::verify_batch(rebuilt, schemas::verify_limits{UINT32_MAX, false});
    require(rv.has_value(), "rebuild_batch of a verified batch does not verify");
    require(rv->record_count == static_cast<std::int32_t>(keep.size()), "rebuilt batch has the wrong record count");
  }
  // The broker stamps verified batches in place; the CRC must stay valid.
  std::vector<std::byte> copy(one.begin(), one.end());
  schemas::stamp_base_offset(copy, offset(12345));
  schemas::stamp_leader_epoch(copy, leader_epoch(7));
  schemas::stamp_producer(copy, producer_id(42), 3, 9);
  require(schemas::verify_batch(copy, schemas::verify_limits{UINT32_MAX, false}).has_value(),
          "a stamped batch no longer verifies");
  volatile std::uint8_t keep_sink = sink;
  (void)keep_sink;
  return 0;
}
