// A write that meets a full disk (ENOSPC on a tmpfs the test mounts and
// fills): the append answers storage_full, the log takes back every offset
// it handed out past what was written (bytes partly written, producer
// sequences, message ids) and, once space is back, takes the same batch
// again as if it had never been tried. Before, the log went offline until
// restart and kept the failed batch's sequence and ids.

#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <string>

#include "broker/storage/errc.h"
#include "broker/storage/log.h"
#include "schemas/batch.h"
#include "tests/support/log_fixture.h"
#include "tests/support/small_filesystem.h"

using namespace runnel;
using namespace runnel::storage;
using runnel::testing::log_fixture;
using runnel::testing::run;
using runnel::testing::small_filesystem;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// `n` records with ids "<prefix><i>" and values of `value_bytes`, from
// idempotent producer 7 (epoch 0) at `sequence`.
std::vector<std::byte> batch_of(const std::string& prefix, int n, std::size_t value_bytes, std::int32_t sequence) {
  schemas::batch_builder b;
  for (int i = 0; i < n; ++i) {
    const std::string id = prefix + std::to_string(i);
    std::string value = id + ":";
    value.resize(value_bytes, 'v');
    const schemas::header_in h{msg_id_header, std::as_bytes(std::span(id.data(), id.size()))};
    b.add(std::nullopt, std::as_bytes(std::span(value.data(), value.size())), timestamp_ms(now_ms()), {&h, 1});
  }
  b.set_producer(producer_id(7), 0, sequence);
  return b.finish();
}

std::expected<append_result, std::error_code> append(log_fixture& f, std::vector<std::byte> b) {
  return run(f.io, f.l->append(std::span(b)));
}

}  // namespace

TEST_CASE("full disk: a write that meets ENOSPC answers storage_full, takes its offsets, sequence and ids back, and the same batch is taken once space is back") {
  log_fixture f;
  small_filesystem fs(f.tmp / "mnt", 8ULL << 20);
  REQUIRE_MESSAGE(fs.mounted(), "cannot mount a tmpfs (this test needs root, as ../shared/MACHINE.md says)");
  f.dir = f.tmp / "mnt" / "t-0";
  f.cfg.dedup_window = std::chrono::minutes(10);
  f.cfg.dedup_max_ids = 10'000;
  f.reopen();

  // Written and flushed before the disk fills: 20 records at sequence 0.
  auto first = append(f, batch_of("a", 20, 1000, 0));
  REQUIRE(first.has_value());
  REQUIRE(!f.flush());

  // 100 KiB left, a 240 KiB batch: part of it reaches the file, then ENOSPC.
  fs.fill(100 * 1024);
  auto refused = append(f, batch_of("b", 40, 6000, 20));
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error() == make_error_code(errc::storage_full));
  // The log still serves, and still holds exactly what was written.
  CHECK(f.l->log_end_offset() == offset(20));
  CHECK(f.l->next_offset() == offset(20));
  CHECK(f.values().size() == 20);
  // Still full: refused again, the same way (not offline).
  auto again = append(f, batch_of("b", 40, 6000, 20));
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error() == make_error_code(errc::storage_full));

  // Space back: the same batch (same sequence, same ids) is new to the log,
  // not a duplicate of something that was never written.
  fs.unfill();
  auto taken = append(f, batch_of("b", 40, 6000, 20));
  REQUIRE_MESSAGE(taken.has_value(), (taken ? "" : taken.error().message()));
  CHECK_FALSE(taken->duplicate);
  CHECK(taken->dropped.empty());
  CHECK(taken->base_offset == offset(20));
  // And its ids are in the window now: a third copy is dropped.
  auto third = append(f, batch_of("b", 40, 6000, 21 + 39));
  REQUIRE(third.has_value());
  CHECK(third->dropped.size() == 40);
  REQUIRE(!f.flush());

  // Dense offsets, every value whole, and the same after a crash: no bytes
  // of the refused write were left between the batches.
  auto held = f.values();
  CHECK(held.size() == 60);
  CHECK(held.begin()->first == 0);
  CHECK(held.rbegin()->first == 59);
  CHECK(held.at(20).starts_with("b0:"));
  CHECK(held.at(59).size() == 6000);
  f.crash();
  f.reopen();
  CHECK(f.values() == held);
  auto after = append(f, batch_of("c", 5, 100, 60));
  REQUIRE(after.has_value());
  CHECK(after->base_offset == offset(60));
  CHECK(!f.close());  // while the filesystem is still mounted
}

TEST_CASE("full disk: a roll that cannot create its segment takes the batch's sequence and ids back, and the same batch is taken once space is back") {
  log_fixture f;
  small_filesystem fs(f.tmp / "mnt", 8ULL << 20, 64);
  REQUIRE_MESSAGE(fs.mounted(), "cannot mount a tmpfs (this test needs root, as ../shared/MACHINE.md says)");
  f.dir = f.tmp / "mnt" / "t-0";
  f.cfg.dedup_window = std::chrono::minutes(10);
  f.cfg.dedup_max_ids = 10'000;
  f.cfg.segment_bytes = 64 * 1024;
  f.reopen();
  auto first = append(f, batch_of("a", 10, 6000, 0));  // 60 KB: the next batch rolls
  REQUIRE(first.has_value());

  // No inode left for the new segment's files.
  REQUIRE(fs.fill_inodes() > 0);
  auto refused = append(f, batch_of("b", 5, 1000, 10));
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error() == make_error_code(errc::storage_full));
  CHECK(f.l->next_offset() == offset(10));

  fs.unfill();
  auto taken = append(f, batch_of("b", 5, 1000, 10));
  REQUIRE_MESSAGE(taken.has_value(), (taken ? "" : taken.error().message()));
  CHECK_FALSE(taken->duplicate);
  CHECK(taken->dropped.empty());
  CHECK(taken->base_offset == offset(10));
  CHECK(f.l->segment_bases().size() == 2);
  REQUIRE(!f.flush());
  CHECK(f.values().size() == 15);
  CHECK(!f.close());
}
