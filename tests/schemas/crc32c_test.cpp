#include "schemas/crc32c.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

using namespace runnel;

namespace {

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> b(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) b[i] = static_cast<std::byte>(s[i]);
  return b;
}

std::vector<std::byte> filled(std::size_t n, std::uint8_t v) { return std::vector<std::byte>(n, std::byte{v}); }

// Known answers: RFC 3720 appendix B.4 (iSCSI) and the usual check value.
struct vector_case {
  const char* name;
  std::vector<std::byte> data;
  std::uint32_t crc;
};

std::vector<vector_case> known_vectors() {
  std::vector<std::byte> up(32), down(32);
  for (std::size_t i = 0; i < 32; ++i) {
    up[i] = static_cast<std::byte>(i);
    down[i] = static_cast<std::byte>(31 - i);
  }
  return {
      {"check string", bytes_of("123456789"), 0xE3069283U},
      {"32 zero bytes", filled(32, 0x00), 0x8A9136AAU},
      {"32 0xFF bytes", filled(32, 0xFF), 0x62A8AB43U},
      {"incrementing 0..31", up, 0x46DD794EU},
      {"decrementing 31..0", down, 0x113FDB5CU},
      {"empty", {}, 0x00000000U},
  };
}

}  // namespace

TEST_CASE("crc32c: known vectors, hardware and portable paths") {
  for (const auto& v : known_vectors()) {
    CAPTURE(v.name);
    CHECK(crc32c::value(v.data) == v.crc);
    CHECK(crc32c::extend_portable(0, v.data) == v.crc);
  }
}

TEST_CASE("crc32c: extend over any split equals the whole") {
  std::mt19937_64 rng(42);
  std::vector<std::byte> data(1000);
  for (auto& b : data) b = static_cast<std::byte>(rng());
  const std::uint32_t whole = crc32c::value(data);
  const std::span<const std::byte> all(data);
  for (std::size_t cut : {0UL, 1UL, 7UL, 8UL, 9UL, 63UL, 500UL, 999UL, 1000UL}) {
    CAPTURE(cut);
    CHECK(crc32c::extend(crc32c::value(all.first(cut)), all.subspan(cut)) == whole);
    CHECK(crc32c::extend_portable(crc32c::extend_portable(0, all.first(cut)), all.subspan(cut)) == whole);
  }
}

TEST_CASE("crc32c: hardware and portable agree on random lengths and alignments") {
  std::mt19937_64 rng(7);
  std::vector<std::byte> data(4096 + 16);
  for (auto& b : data) b = static_cast<std::byte>(rng());
  for (int i = 0; i < 300; ++i) {
    const std::size_t off = rng() % 16;
    const std::size_t len = rng() % 4096;
    const std::span<const std::byte> s(data.data() + off, len);
    CAPTURE(off);
    CAPTURE(len);
    REQUIRE(crc32c::extend(0x12345678U, s) == crc32c::extend_portable(0x12345678U, s));
  }
}

TEST_CASE("crc32c: a single flipped bit changes the checksum") {
  auto data = bytes_of("the quick brown fox jumps over the lazy dog");
  const std::uint32_t before = crc32c::value(data);
  for (std::size_t i = 0; i < data.size() * 8; ++i) {
    auto copy = data;
    copy[i / 8] ^= static_cast<std::byte>(1U << (i % 8));
    CHECK(crc32c::value(copy) != before);
  }
}

#if defined(__x86_64__)
TEST_CASE("crc32c: SSE4.2 path is used where the CPU has it") {
  CHECK(crc32c::hardware_accelerated() == (__builtin_cpu_supports("sse4.2") != 0));
}
#endif
