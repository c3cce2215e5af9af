#pragma once
// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
// every record batch. Uses the SSE4.2 crc32 instruction when the CPU has it
// (checked once at start-up), a slicing-by-8 table otherwise.

#include <cstddef>
#include <cstdint>
#include <span>

namespace runnel::crc32c {

// Extends `crc` (the value returned for the bytes before `data`; 0 for a
// fresh checksum) over `data`. extend(extend(0, a), b) == value(a ++ b).
[[nodiscard]] std::uint32_t extend(std::uint32_t crc, std::span<const std::byte> data) noexcept;

[[nodiscard]] inline std::uint32_t value(std::span<const std::byte> data) noexcept {
  return extend(0, data);
}

// The portable table implementation, always available; exposed so tests and
// benchmarks can compare it with the hardware path.
[[nodiscard]] std::uint32_t extend_portable(std::uint32_t crc, std::span<const std::byte> data) noexcept;

// True when extend() uses the SSE4.2 instruction on this CPU.
[[nodiscard]] bool hardware_accelerated() noexcept;

}  // namespace runnel::crc32c
