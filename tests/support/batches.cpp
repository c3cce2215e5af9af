#include "tests/support/batches.h"

#include <fmt/format.h>

#include <fstream>

#include "schemas/assert.h"

namespace runnel::testing {

std::vector<std::byte> make_batch(int records, std::size_t value_size, timestamp_ms ts, std::uint8_t fill) {
  schemas::batch_builder b;
  for (int i = 0; i < records; ++i) {
    auto key = fmt::format("k{}", i);
    std::vector<std::byte> value(value_size, std::byte(static_cast<std::uint8_t>(fill + i)));
    b.add(std::as_bytes(std::span(key)), std::span<const std::byte>(value), ts + std::int64_t{i});
  }
  return b.finish();
}

std::vector<std::byte> read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  RUNNEL_ASSERT(in.good(), "cannot read {}", p.string());
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

void write_file(const std::filesystem::path& p, const std::vector<std::byte>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  RUNNEL_ASSERT(out.good(), "cannot write {}", p.string());
}

void flip_byte(const std::filesystem::path& p, std::uint64_t pos) {
  auto bytes = read_file(p);
  RUNNEL_ASSERT(pos < bytes.size(), "flip at {} beyond {} bytes of {}", pos, bytes.size(), p.string());
  bytes[pos] ^= std::byte{0xff};
  write_file(p, bytes);
}

void truncate_file(const std::filesystem::path& p, std::uint64_t size) { std::filesystem::resize_file(p, size); }

}  // namespace runnel::testing

namespace runnel::testing {

void write_file(const std::filesystem::path& p, std::string_view text) {
  write_file(p, std::vector<std::byte>(reinterpret_cast<const std::byte*>(text.data()),
                                       reinterpret_cast<const std::byte*>(text.data()) + text.size()));
}

}  // namespace runnel::testing
