#include "schemas/frame.h"

#include <doctest/doctest.h>

#include <cstring>

#include "schemas/partitioner.h"
#include "schemas/protocol_generated.h"
#include "tests/support/raw_client.h"

using namespace runnel;
using namespace runnel::schemas;

namespace {

std::array<std::byte, frame_head_size> head_of(std::uint32_t length, std::uint32_t env_len) {
  std::array<std::byte, frame_head_size> h{};
  std::memcpy(h.data(), &length, 4);
  std::memcpy(h.data() + 4, &env_len, 4);
  return h;
}

std::vector<std::byte> metadata_frame() {
  flatbuffers::FlatBufferBuilder fbb;
  auto body = wire::CreateMetadataRequest(fbb);
  return testing::request_frame(fbb, wire::Request::MetadataRequest, body.Union());
}

}  // namespace

TEST_CASE("frame: a built request round-trips through head decode and verification") {
  auto frame = metadata_frame();
  auto head = decode_frame_head(std::span<const std::byte, frame_head_size>(frame.data(), frame_head_size), 1 << 20);
  REQUIRE(head.has_value());
  CHECK(head->body_size() + frame_head_size == frame.size());
  std::vector<std::byte> body(frame.begin() + frame_head_size, frame.end());
  auto env = verify_request(body, *head);
  REQUIRE(env.has_value());
  CHECK((*env)->body_type() == wire::Request::MetadataRequest);
  CHECK((*env)->correlation_id() == 1);
  CHECK(frame_payload(body, *head).empty());
}

TEST_CASE("frame: the payload starts 8-aligned from the frame start") {
  for (std::uint32_t env = 1; env < 40; ++env) {
    CHECK((frame_head_size + payload_start(env)) % 8 == 0);
    CHECK(payload_start(env) >= env);
  }
}

TEST_CASE("frame: a length over the limit is frame_too_large, before any allocation") {
  auto h = decode_frame_head(head_of(2000, 100), 1000);
  REQUIRE_FALSE(h.has_value());
  CHECK(h.error() == frame_errc::frame_too_large);
}

TEST_CASE("frame: an envelope longer than the frame is bad_frame_length") {
  CHECK(decode_frame_head(head_of(100, 200), 1000).error() == frame_errc::bad_frame_length);
  CHECK(decode_frame_head(head_of(2, 0), 1000).error() == frame_errc::bad_frame_length);
  CHECK(decode_frame_head(head_of(10, 0), 1000).error() == frame_errc::bad_frame_length);
}

TEST_CASE("frame: garbage in the envelope fails verification") {
  std::vector<std::byte> body(64, std::byte{0xAB});
  frame_head h{68, 60};
  auto env = verify_request(body, h);
  REQUIRE_FALSE(env.has_value());
  CHECK(env.error() == frame_errc::bad_envelope);
}

TEST_CASE("partitioner: murmur2 matches Kafka's Java client") {
  // Vectors from Kafka's UtilsTest.testMurmur2.
  auto m = [](std::string_view s) { return murmur2(std::as_bytes(std::span(s.data(), s.size()))); };
  CHECK(m("21") == -973932308);
  CHECK(m("foobar") == -790332482);
  CHECK(m("a-little-bit-long-string") == -985981536);
  CHECK(m("a-little-bit-longer-string") == -1486304829);
  CHECK(m("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58897971);
  CHECK(m("abc") == 479470107);
}

TEST_CASE("partitioner: a key always maps to the same partition in range") {
  for (int i = 0; i < 1000; ++i) {
    auto key = "key-" + std::to_string(i);
    auto k = std::as_bytes(std::span(key.data(), key.size()));
    const auto p = partition_for_key(k, 7);
    CHECK(p >= 0);
    CHECK(p < 7);
    CHECK(partition_for_key(k, 7) == p);
  }
}
