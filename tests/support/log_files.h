#pragma once
// Plain (blocking) views of a log directory for tests that damage files the
// way a crash or a power loss would.

#include <filesystem>
#include <optional>
#include <vector>

#include "schemas/batch.h"
#include "schemas/types.h"

namespace runnel::testing {

struct segment_on_disk {
  offset base{0};
  std::filesystem::path log;
};

// The .log files of a log directory, oldest first.
std::vector<segment_on_disk> segments_on_disk(const std::filesystem::path& dir);

struct durable_point {
  std::filesystem::path file;  // segment holding the first byte past `off`
  std::uint64_t pos = 0;       // where the batch at `off` starts (or the end of the file)
  std::size_t segment_index = 0;
};

// Where the batch with base offset `off` starts, walking headers from the
// start of the segment that should hold it. nullopt if the walk fails.
std::optional<durable_point> find_offset_on_disk(const std::filesystem::path& dir, offset off);

// The headers of every whole batch in a log directory, oldest first (each
// segment walked until its bytes end or stop decoding).
std::vector<schemas::batch_header> batches_on_disk(const std::filesystem::path& dir);

}  // namespace runnel::testing
