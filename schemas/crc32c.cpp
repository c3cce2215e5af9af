#include "schemas/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace runnel::crc32c {
namespace {

constexpr std::uint32_t poly = 0x82F63B78U;  // reflected Castagnoli

// Slicing-by-8 tables: tables[0] is the classic byte table, tables[k][b] the
// CRC of byte b followed by k zero bytes.
constexpr std::array<std::array<std::uint32_t, 256>, 8> make_tables() {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c & 1U) != 0 ? (c >> 1) ^ poly : c >> 1;
    t[0][b] = c;
  }
  for (std::size_t k = 1; k < 8; ++k) {
    for (std::size_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFFU];
  }
  return t;
}

constexpr auto tables = make_tables();

std::uint32_t load_le32(const std::byte* p) noexcept {
  std::uint32_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;  // x86-64 and aarch64 are little-endian; the format is little-endian
}

std::uint32_t extend_table(std::uint32_t crc, const std::byte* p, std::size_t n) noexcept {
  std::uint32_t c = ~crc;
  while (n >= 8) {
    const std::uint32_t lo = load_le32(p) ^ c;
    const std::uint32_t hi = load_le32(p + 4);
    c = tables[7][lo & 0xFFU] ^ tables[6][(lo >> 8) & 0xFFU] ^ tables[5][(lo >> 16) & 0xFFU] ^
        tables[4][lo >> 24] ^ tables[3][hi & 0xFFU] ^ tables[2][(hi >> 8) & 0xFFU] ^
        tables[1][(hi >> 16) & 0xFFU] ^ tables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = (c >> 8) ^ tables[0][(c ^ std::to_integer<std::uint32_t>(*p++)) & 0xFFU];
  return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t extend_sse42(std::uint32_t crc, const std::byte* p,
                                                              std::size_t n) noexcept {
  std::uint64_t c = ~crc;
  // One dependent stream: ~8 bytes per 3 cycles, several GB/s, far above
  // what a batch needs (perf/crc32c_bench.cpp measures it).
  while (n >= 8) {
    std::uint64_t v = 0;
    std::memcpy(&v, p, sizeof v);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (n-- > 0) c32 = _mm_crc32_u8(c32, std::to_integer<std::uint8_t>(*p++));
  return ~c32;
}

bool detect_sse42() noexcept { return __builtin_cpu_supports("sse4.2") != 0; }
#else
bool detect_sse42() noexcept { return false; }
#endif

const bool use_hardware = detect_sse42();

}  // namespace

std::uint32_t extend(std::uint32_t crc, std::span<const std::byte> data) noexcept {
#if defined(__x86_64__)
  if (use_hardware) return extend_sse42(crc, data.data(), data.size());
#endif
  return extend_table(crc, data.data(), data.size());
}

std::uint32_t extend_portable(std::uint32_t crc, std::span<const std::byte> data) noexcept {
  return extend_table(crc, data.data(), data.size());
}

bool hardware_accelerated() noexcept { return use_hardware; }

}  // namespace runnel::crc32c
