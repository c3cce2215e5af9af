#include "schemas/batch.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>

#include "schemas/batch_generated.h"
#include "schemas/crc32c.h"
#include "tests/support/batches.h"

using namespace runnel;
using namespace runnel::schemas;

namespace {

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s)); }
std::string str(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

template <class T>
void poke(std::vector<std::byte>& b, std::size_t pos, T v) {
  std::memcpy(b.data() + pos, &v, sizeof v);
}
template <class T>
T peek(const std::vector<std::byte>& b, std::size_t pos) {
  T v;
  std::memcpy(&v, b.data() + pos, sizeof v);
  return v;
}

// Recomputes the CRC after a test edited covered bytes on purpose.
void recrc(std::vector<std::byte>& b) {
  poke<std::uint32_t>(b, crc_pos, crc32c::value(std::span<const std::byte>(b).subspan(crc_covered_from)));
}

verify_limits limits() { return verify_limits{1 << 20}; }

// A batch whose Records buffer is built by hand (for malformed contents).
std::vector<std::byte> batch_from_records(flatbuffers::FlatBufferBuilder& fbb, int count) {
  std::vector<std::byte> out(batch_header_size);
  auto* p = reinterpret_cast<const std::byte*>(fbb.GetBufferPointer());
  out.insert(out.end(), p, p + fbb.GetSize());
  out.resize((out.size() + 7) / 8 * 8);
  fb::BatchHeader h(0, static_cast<std::uint32_t>(out.size()), 0, 0, batch_magic, 0, 0, count - 1, count, 10, 10, -1,
                    -1, 0, -1);
  std::memcpy(out.data(), static_cast<const void*>(&h), sizeof h);
  recrc(out);
  return out;
}

}  // namespace

TEST_CASE("batch: build and read back keys, values, null key, tombstone and headers") {
  batch_builder b;
  std::string k1 = "key-1", v1 = "value-1", hv = "trace-42", v2 = "no key";
  header_in hdr{"trace", bytes_of(hv)};
  b.add(bytes_of(k1), bytes_of(v1), timestamp_ms(5000), std::span(&hdr, 1));
  b.add(std::nullopt, bytes_of(v2), timestamp_ms(5007));
  b.add(bytes_of(k1), std::nullopt, timestamp_ms(4990));
  CHECK(b.record_count() == 3);
  auto bytes = b.finish();
  CHECK(b.empty());
  CHECK(bytes.size() % batch_alignment == 0);

  auto view = batch_view::open(bytes, limits());
  REQUIRE(view.has_value());
  const auto& h = view->header();
  CHECK(h.length == bytes.size());
  CHECK(h.record_count == 3);
  CHECK(h.last_offset_delta == 2);
  CHECK(h.first_timestamp == timestamp_ms(5000));
  CHECK(h.max_timestamp == timestamp_ms(5007));
  CHECK(h.producer == producer_id(-1));
  CHECK(h.base_sequence == -1);
  REQUIRE(view->record_count() == 3);

  auto r0 = view->record(0);
  CHECK(r0.off == offset(0));
  CHECK(r0.timestamp == timestamp_ms(5000));
  REQUIRE(r0.key);
  CHECK(str(*r0.key) == k1);
  CHECK(str(*r0.value) == v1);
  REQUIRE(r0.header_count() == 1);
  CHECK(r0.header_key(0) == "trace");
  CHECK(str(r0.header_value(0)) == hv);

  auto r1 = view->record(1);
  CHECK_FALSE(r1.key);
  CHECK(str(*r1.value) == v2);
  CHECK(r1.timestamp == timestamp_ms(5007));
  CHECK(r1.header_count() == 0);

  auto r2 = view->record(2);
  CHECK(r2.off == offset(2));
  CHECK_FALSE(r2.value);  // tombstone
  CHECK(r2.timestamp == timestamp_ms(4990));
}

TEST_CASE("batch: header fields sit at their documented byte positions") {
  batch_builder b;
  b.set_producer(producer_id(0x1122334455667788), 0x99, 0x01020304);
  std::string v = "x";
  b.add(std::nullopt, bytes_of(v), timestamp_ms(0x0A0B0C0D0E0F));
  auto bytes = b.finish();
  stamp_base_offset(bytes, offset(0x7766554433221100));
  stamp_leader_epoch(bytes, leader_epoch(0x55443322));
  CHECK(peek<std::int64_t>(bytes, 0) == 0x7766554433221100);
  CHECK(peek<std::uint32_t>(bytes, 8) == bytes.size());
  CHECK(peek<std::int32_t>(bytes, 12) == 0x55443322);
  CHECK(peek<std::uint32_t>(bytes, 16) == crc32c::value(std::span<const std::byte>(bytes).subspan(20)));
  CHECK(peek<std::uint8_t>(bytes, 20) == batch_magic);
  CHECK(peek<std::uint8_t>(bytes, 21) == 0);
  CHECK(peek<std::uint16_t>(bytes, 22) == 0);
  CHECK(peek<std::int32_t>(bytes, 24) == 0);
  CHECK(peek<std::int32_t>(bytes, 28) == 1);
  CHECK(peek<std::int64_t>(bytes, 32) == 0x0A0B0C0D0E0F);
  CHECK(peek<std::int64_t>(bytes, 40) == 0x0A0B0C0D0E0F);
  CHECK(peek<std::int64_t>(bytes, 48) == 0x1122334455667788);
  CHECK(peek<std::int16_t>(bytes, 56) == 0x99);
  CHECK(peek<std::int16_t>(bytes, 58) == 0);
  CHECK(peek<std::int32_t>(bytes, 60) == 0x01020304);
}

TEST_CASE("batch: stamping base offset and leader epoch keeps the CRC valid") {
  auto bytes = testing::make_batch(3);
  stamp_base_offset(bytes, offset(1234));
  stamp_leader_epoch(bytes, leader_epoch(7));
  auto h = verify_batch(bytes, limits());
  REQUIRE(h.has_value());
  CHECK(h->base_offset == offset(1234));
  CHECK(h->epoch == leader_epoch(7));
  CHECK(h->last_offset() == offset(1236));
  CHECK(h->next_offset() == offset(1237));
  auto view = batch_view::open(bytes, limits());
  REQUIRE(view.has_value());
  CHECK(view->record(2).off == offset(1236));
}

TEST_CASE("batch: fewer bytes than a header is batch_too_short") {
  auto bytes = testing::make_batch();
  CHECK(decode_header(std::span(bytes).first(batch_header_size - 1)).error() == errc::batch_too_short);
  CHECK(verify_batch(std::span(bytes).first(10), limits()).error() == errc::batch_too_short);
}

TEST_CASE("batch: fewer bytes than the length field says is batch_too_short") {
  auto bytes = testing::make_batch();
  CHECK(verify_batch(std::span(bytes).first(bytes.size() - 8), limits()).error() == errc::batch_too_short);
}

TEST_CASE("batch: trailing bytes after the batch are bad_length") {
  auto bytes = testing::make_batch();
  bytes.resize(bytes.size() + 8);
  CHECK(verify_batch(bytes, limits()).error() == errc::bad_length);
}

TEST_CASE("batch: a length that is not a multiple of 8 or below the minimum is bad_length") {
  auto bytes = testing::make_batch();
  poke<std::uint32_t>(bytes, length_pos, static_cast<std::uint32_t>(bytes.size() - 3));
  CHECK(verify_batch(bytes, limits()).error() == errc::bad_length);
  poke<std::uint32_t>(bytes, length_pos, 8);
  CHECK(decode_header(bytes).error() == errc::bad_length);
}

TEST_CASE("batch: a batch over max_batch_bytes is bad_length") {
  auto bytes = testing::make_batch(4, 1000);
  CHECK(verify_batch(bytes, verify_limits{static_cast<std::uint32_t>(bytes.size() - 8)}).error() == errc::bad_length);
  CHECK(verify_batch(bytes, verify_limits{static_cast<std::uint32_t>(bytes.size())}).has_value());
}

TEST_CASE("batch: an unknown magic is bad_magic") {
  auto bytes = testing::make_batch();
  poke<std::uint8_t>(bytes, 20, 9);
  recrc(bytes);
  CHECK(verify_batch(bytes, limits()).error() == errc::bad_magic);
}

TEST_CASE("batch: a compression codec or unknown attribute bit is unsupported_attributes") {
  auto bytes = testing::make_batch();
  poke<std::uint16_t>(bytes, 22, 1);  // codec 1
  recrc(bytes);
  CHECK(verify_batch(bytes, limits()).error() == errc::unsupported_attributes);
  poke<std::uint16_t>(bytes, 22, 0x40);
  recrc(bytes);
  CHECK(verify_batch(bytes, limits()).error() == errc::unsupported_attributes);
}

TEST_CASE("batch: a flipped bit in the records is crc_mismatch") {
  auto bytes = testing::make_batch(2, 100);
  bytes[bytes.size() - 20] ^= std::byte{0x10};
  CHECK(verify_batch(bytes, limits()).error() == errc::crc_mismatch);
}

TEST_CASE("batch: a flipped bit in a covered header field is crc_mismatch") {
  auto bytes = testing::make_batch(2, 100);
  bytes[40] ^= std::byte{0x01};  // max_timestamp
  CHECK(verify_batch(bytes, limits()).error() == errc::crc_mismatch);
}

TEST_CASE("batch: records that fail the FlatBuffers Verifier are bad_records") {
  auto bytes = testing::make_batch(2, 100);
  // Point the root offset far outside the buffer, then make the CRC agree.
  poke<std::uint32_t>(bytes, batch_header_size, 0x7fffff00);
  recrc(bytes);
  CHECK(verify_batch(bytes, limits()).error() == errc::bad_records);
}

TEST_CASE("batch: a record count that disagrees with the records is record_count_mismatch") {
  auto bytes = testing::make_batch(3);
  poke<std::int32_t>(bytes, 28, 2);  // record_count
  poke<std::int32_t>(bytes, 24, 1);  // last_offset_delta
  recrc(bytes);
  CHECK(verify_batch(bytes, limits()).error() == errc::record_count_mismatch);
  // Fewer records than offsets: a producer's batch never, a cleaned one may.
  poke<std::int32_t>(bytes, 28, 3);
  poke<std::int32_t>(bytes, 24, 5);
  recrc(bytes);
  CHECK(verify_batch(bytes, verify_limits{1 << 20, true}).error() == errc::record_count_mismatch);
  CHECK(verify_batch(bytes, limits()).has_value());
}

TEST_CASE("batch: rebuild_batch keeps offsets, drops records and passes verification") {
  auto bytes = testing::make_batch(5, 8, timestamp_ms(1000));
  stamp_base_offset(bytes, offset(100));
  auto view = batch_view::open(bytes, limits());
  REQUIRE(view.has_value());
  std::vector<std::size_t> keep{1, 3};
  auto out = rebuild_batch(*view, keep);
  auto v = batch_view::open(out, limits());
  REQUIRE(v.has_value());
  CHECK(v->header().base_offset == offset(100));
  CHECK(v->header().last_offset_delta == 4);
  CHECK(v->header().next_offset() == offset(105));
  CHECK(v->header().record_count == 2);
  CHECK(v->header().first_timestamp == timestamp_ms(1001));
  CHECK(v->header().max_timestamp == timestamp_ms(1003));
  CHECK(v->record(0).off == offset(101));
  CHECK(v->record(1).off == offset(103));
  CHECK(v->record(1).timestamp == timestamp_ms(1003));
  CHECK(v->record(1).key.has_value());
  CHECK(verify_batch(out, verify_limits{1 << 20, true}).error() == errc::record_count_mismatch);
}

TEST_CASE("batch: records not numbered 0, 1, 2 is bad_offset_delta") {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<fb::Record>> recs{fb::CreateRecord(fbb, 0), fb::CreateRecord(fbb, 2)};
  fbb.Finish(fb::CreateRecords(fbb, fbb.CreateVector(recs)));
  auto bytes = batch_from_records(fbb, 2);
  CHECK(verify_batch(bytes, limits()).error() == errc::bad_offset_delta);
}

TEST_CASE("batch: a max timestamp below the first timestamp is bad_timestamps") {
  auto bytes = testing::make_batch(2);
  poke<std::int64_t>(bytes, 40, 1);
  recrc(bytes);
  CHECK(verify_batch(bytes, limits()).error() == errc::bad_timestamps);
}

TEST_CASE("batch: errors have readable messages in the runnel.schemas category") {
  std::error_code ec = errc::crc_mismatch;
  CHECK(std::string(ec.category().name()) == "runnel.schemas");
  CHECK(ec.message() == "record batch CRC-32C mismatch");
}

TEST_CASE("batch: random byte flips never crash verification and are always detected") {
  auto good = testing::make_batch(5, 40);
  std::mt19937 rng(12345);
  for (int i = 0; i < 20000; ++i) {
    auto bytes = good;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      auto pos = rng() % bytes.size();
      bytes[pos] ^= std::byte{static_cast<std::uint8_t>(1 + rng() % 255)};
    }
    bool covered = !std::equal(bytes.begin() + crc_pos, bytes.end(), good.begin() + crc_pos);
    auto r = verify_batch(bytes, limits());
    // Flips confined to base offset / length / epoch may leave a valid
    // batch; anything touching the CRC or the bytes it covers must fail.
    if (covered) CHECK_FALSE(r.has_value());
  }
}
