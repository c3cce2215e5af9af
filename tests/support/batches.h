#pragma once
// Batch factories and byte corruption for tests.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/batch.h"

namespace runnel::testing {

// A batch of `records` records; record i has key "k<i>" and a value of
// `value_size` bytes, each byte `fill + i`. Timestamps start at `ts`, +1 ms
// per record.
std::vector<std::byte> make_batch(int records = 1, std::size_t value_size = 16, timestamp_ms ts = timestamp_ms(1000),
                                  std::uint8_t fill = 1);

// The bytes of a file, and ways to damage one in place.
std::vector<std::byte> read_file(const std::filesystem::path& p);
void flip_byte(const std::filesystem::path& p, std::uint64_t pos);
void truncate_file(const std::filesystem::path& p, std::uint64_t size);
void write_file(const std::filesystem::path& p, const std::vector<std::byte>& bytes);
void write_file(const std::filesystem::path& p, std::string_view text);

}  // namespace runnel::testing
