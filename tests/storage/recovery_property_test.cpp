// Recovery under random damage past the durable point: random truncation
// points, zeroed ranges and byte flips in what was not fsynced never crash
// open, never lose a durable batch, never return a corrupt batch.

#include <doctest/doctest.h>

#include <random>

#include "broker/storage/logger.h"
#include "tests/support/crash_batches.h"
#include "tests/support/log_files.h"
#include "tests/support/log_fixture.h"

using namespace runnel;
using runnel::testing::log_fixture;

TEST_CASE("recovery property: random tail damage never loses a durable batch nor returns a corrupt one") {
  storage::logger().set_level(spdlog::level::off);
  std::mt19937 rng(20261124);
  for (int iter = 0; iter < 60; ++iter) {
    CAPTURE(iter);
    log_fixture f;
    f.cfg.segment_bytes = 8 << 10;
    f.cfg.index_interval_bytes = 512;
    REQUIRE_FALSE(f.open());
    int durable_batches = 1 + static_cast<int>(rng() % 20);
    int more = static_cast<int>(rng() % 20);
    for (int i = 0; i < durable_batches; ++i) f.append(testing::crash_batch(f.l->next_offset()));
    REQUIRE_FALSE(f.flush());
    for (int i = 0; i < more; ++i) f.append(testing::crash_batch(f.l->next_offset()));
    // What is durable at the crash: the flush, and the segments a roll
    // fsynced in the background since.
    const offset durable = f.l->flushed_offset();
    f.crash();

    // Damage only bytes past the durable point.
    auto at = testing::find_offset_on_disk(f.dir, durable);
    REQUIRE(at.has_value());
    auto segs = testing::segments_on_disk(f.dir);
    int damages = 1 + static_cast<int>(rng() % 4);
    for (int d = 0; d < damages; ++d) {
      auto s = at->segment_index + rng() % (segs.size() - at->segment_index);
      if (!std::filesystem::exists(segs[s].log)) continue;
      auto size = std::filesystem::file_size(segs[s].log);
      std::uint64_t from = s == at->segment_index ? at->pos : 0;
      if (size <= from) continue;
      auto pos = from + rng() % (size - from);
      switch (rng() % 3) {
        case 0: testing::truncate_file(segs[s].log, pos); break;
        case 1: testing::flip_byte(segs[s].log, pos); break;
        default: {
          auto bytes = testing::read_file(segs[s].log);
          auto len = std::min<std::uint64_t>(size - pos, 1 + rng() % 4096);
          std::fill_n(bytes.begin() + static_cast<std::ptrdiff_t>(pos), len, std::byte{0});
          testing::write_file(segs[s].log, bytes);
        }
      }
    }

    REQUIRE_FALSE(f.open());
    CHECK(f.l->log_end_offset() >= durable);
    std::vector<std::vector<std::byte>> bytes;
    auto batches = f.read_all(offset(0), &bytes);
    for (const auto& b : bytes) REQUIRE(testing::is_crash_batch(b));
    auto next = f.l->log_end_offset();
    CHECK(f.append(testing::crash_batch(next)) == next);
  }
  storage::logger().set_level(spdlog::level::info);
}
