// runnel-crc32c-bench: CRC-32C throughput, hardware path vs the portable
// slicing-by-8 table, over buffers of batch-like sizes.
//   runnel-crc32c-bench [--json]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "schemas/crc32c.h"

namespace {

template <class F>
double gb_per_sec(const std::vector<std::byte>& buf, std::size_t size, F&& fn) {
  // Bounded: ~512 MiB of input per measurement, at most 1M calls.
  const std::size_t iters = std::min<std::size_t>(1'000'000, (512UL << 20) / size);
  std::uint32_t sink = 0;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < iters; ++i) sink ^= fn(std::span<const std::byte>(buf.data(), size));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (sink == 0xFFFFFFFFU) std::puts("");  // keep the loop alive
  return static_cast<double>(iters * size) / secs / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const bool json = argc > 1 && std::strcmp(argv[1], "--json") == 0;
  std::vector<std::byte> buf(1 << 20);
  std::mt19937_64 rng(1);
  for (auto& b : buf) b = static_cast<std::byte>(rng());
  if (!json) std::printf("hardware path: %s\n", runnel::crc32c::hardware_accelerated() ? "sse4.2" : "none");
  for (std::size_t size : {64UL, 1024UL, 16384UL, 262144UL, 1048576UL}) {
    const double hw = gb_per_sec(buf, size, [](auto s) { return runnel::crc32c::extend(0, s); });
    const double sw = gb_per_sec(buf, size, [](auto s) { return runnel::crc32c::extend_portable(0, s); });
    if (json) {
      std::printf("{\"bytes\":%zu,\"default_gb_per_sec\":%.2f,\"portable_gb_per_sec\":%.2f}\n", size, hw, sw);
    } else {
      std::printf("%8zu B  default %6.2f GB/s  portable %6.2f GB/s\n", size, hw, sw);
    }
  }
  return 0;
}
