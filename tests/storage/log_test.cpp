#include "broker/storage/log.h"

#include <doctest/doctest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sys/stat.h>

#include <cstring>
#include <sstream>
#include <thread>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include "broker/storage/errc.h"
#include "broker/storage/logger.h"
#include "broker/storage/segment.h"
#include "tests/support/log_fixture.h"

using namespace runnel;
using namespace runnel::storage;
using runnel::testing::log_fixture;
using runnel::testing::make_batch;
using runnel::testing::run;
using runnel::testing::temp_dir;

namespace {

// Captures what the storage logger says while it lives.
struct log_capture {
  std::ostringstream out;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  log_capture() { logger().sinks().push_back(sink); }
  ~log_capture() { logger().sinks().pop_back(); }
  log_capture(const log_capture&) = delete;
  log_capture& operator=(const log_capture&) = delete;
  log_capture(log_capture&&) = delete;
  log_capture& operator=(log_capture&&) = delete;
  std::string text() const { return out.str(); }
};

std::uint64_t batch_size() { return make_batch().size(); }

}  // namespace

TEST_CASE("log: appends get dense offsets and read back in order") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  CHECK(f.l->log_end_offset() == offset(0));
  CHECK(f.append(make_batch(3)) == offset(0));
  CHECK(f.append(make_batch(1)) == offset(3));
  CHECK(f.append(make_batch(5)) == offset(4));
  CHECK(f.l->log_end_offset() == offset(9));
  CHECK(f.l->next_offset() == offset(9));
  auto batches = f.read_all(offset(0));
  REQUIRE(batches.size() == 3);
  CHECK(batches[0].base_offset == offset(0));
  CHECK(batches[1].base_offset == offset(3));
  CHECK(batches[2].base_offset == offset(4));
  CHECK(batches[2].record_count == 5);
}

TEST_CASE("log: flush makes everything appended before it durable") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  f.append_n(10);
  CHECK(f.l->flushed_offset() == offset(0));
  CHECK_FALSE(f.flush());
  CHECK(f.l->flushed_offset() == offset(10));
  CHECK_FALSE(f.flush());  // nothing new: returns at once
}

TEST_CASE("log: concurrent appends and flushes all complete, in offset order") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  constexpr int writers = 32;
  constexpr int per_writer = 20;
  std::vector<std::vector<offset>> got(writers);
  int done = 0;
  for (int w = 0; w < writers; ++w) {
    asio::co_spawn(
        f.io,
        [&, w]() -> asio::awaitable<void> {
          for (int i = 0; i < per_writer; ++i) {
            auto batch = make_batch(2, 50, timestamp_ms(1000), static_cast<std::uint8_t>(w));
            auto r = co_await f.l->append(batch);
            REQUIRE(r.has_value());
            got[static_cast<std::size_t>(w)].push_back(r->base_offset);
            if (i % 3 == 0) REQUIRE_FALSE(co_await f.l->flush());
          }
          ++done;
        },
        asio::detached);
  }
  f.io.restart();
  f.io.run();
  CHECK(done == writers);
  CHECK(f.l->log_end_offset() == offset(writers * per_writer * 2));
  for (const auto& offs : got) {
    for (std::size_t i = 1; i < offs.size(); ++i) CHECK(offs[i] > offs[i - 1]);
  }
  CHECK_FALSE(f.flush());
  auto batches = f.read_all(offset(0));
  REQUIRE(batches.size() == writers * per_writer);
  for (std::size_t i = 0; i < batches.size(); ++i) CHECK(batches[i].base_offset == offset(static_cast<std::int64_t>(2 * i)));
}

TEST_CASE("log: rolls at segment.bytes and reads across segments") {
  log_fixture f;
  f.cfg.segment_bytes = 4 * batch_size();
  REQUIRE_FALSE(f.open());
  f.append_n(10);
  CHECK(f.l->segment_count() == 3);
  CHECK(f.l->segment_bases() == std::vector<offset>{offset(0), offset(4), offset(8)});
  CHECK(std::filesystem::file_size(f.seg(offset(0), ".log")) == 4 * batch_size());
  CHECK(std::filesystem::exists(f.seg(offset(4), ".index")));
  CHECK(std::filesystem::exists(f.seg(offset(8), ".timeindex")));
  auto batches = f.read_all(offset(0));
  REQUIRE(batches.size() == 10);
  for (int i = 0; i < 10; ++i) CHECK(batches[static_cast<std::size_t>(i)].base_offset == offset(i));
  // A read never spans two segments: it ends at the roll boundary.
  auto r = run(f.io, f.l->read(offset(2), 1 << 20));
  REQUIRE(r.has_value());
  CHECK((*r)->first_offset == offset(2));
  CHECK((*r)->next_offset == offset(4));
}

TEST_CASE("log: a batch larger than segment.bytes gets a segment of its own") {
  log_fixture f;
  f.cfg.segment_bytes = 2 * batch_size();
  REQUIRE_FALSE(f.open());
  f.append_n(1);
  f.append(make_batch(10, 200));
  f.append_n(1);
  CHECK(f.l->segment_bases() == std::vector<offset>{offset(0), offset(1), offset(11)});
  CHECK(f.read_all(offset(0)).size() == 3);
}

TEST_CASE("log: rolls at segment.ms") {
  log_fixture f;
  // Generous against slow builds (ASan): two appends take far less than 500 ms.
  f.cfg.segment_ms = std::chrono::milliseconds(500);
  REQUIRE_FALSE(f.open());
  f.append_n(2);
  CHECK(f.l->segment_count() == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  f.append_n(1);
  CHECK(f.l->segment_bases() == std::vector<offset>{offset(0), offset(2)});
}

TEST_CASE("log: read returns whole batches within max_bytes, at least one") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  f.append_n(10);
  auto bs = static_cast<std::uint32_t>(batch_size());
  auto r = run(f.io, f.l->read(offset(3), 3 * bs + bs / 2));
  REQUIRE(r.has_value());
  CHECK((*r)->first_offset == offset(3));
  CHECK((*r)->next_offset == offset(6));
  CHECK((*r)->length == 3 * bs);
  CHECK((*r)->pos == file_pos(3 * bs));
  auto one = run(f.io, f.l->read(offset(3), 1));  // smaller than one batch: still one batch
  REQUIRE(one.has_value());
  CHECK((*one)->length == bs);
  CHECK((*one)->next_offset == offset(4));
}

TEST_CASE("log: read from inside a batch starts at that batch") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  f.append(make_batch(5));
  f.append(make_batch(5));
  auto r = run(f.io, f.l->read(offset(7), 1 << 20));
  REQUIRE(r.has_value());
  CHECK((*r)->first_offset == offset(5));
  CHECK((*r)->next_offset == offset(10));
}

TEST_CASE("log: read never passes upto (the high watermark)") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  f.append_n(10);
  auto r = run(f.io, f.l->read(offset(2), 1 << 20, offset(6)));
  REQUIRE(r.has_value());
  CHECK((*r)->next_offset == offset(6));
  auto at = run(f.io, f.l->read(offset(6), 1 << 20, offset(6)));
  REQUIRE(at.has_value());
  CHECK_FALSE(at->has_value());
}

TEST_CASE("log: read below the start or past the end is offset_out_of_range") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  f.append_n(3);
  CHECK(run(f.io, f.l->read(offset(4), 100)).error() == errc::offset_out_of_range);
  CHECK(run(f.io, f.l->read(offset(-1), 100)).error() == errc::offset_out_of_range);
  auto at_end = run(f.io, f.l->read(offset(3), 100));
  REQUIRE(at_end.has_value());
  CHECK_FALSE(at_end->has_value());
}

TEST_CASE("log: append of bytes that are not one whole batch is bad_batch") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  auto batch = make_batch();
  batch.resize(batch.size() + 8);
  CHECK(run(f.io, f.l->append(batch)).error() == errc::bad_batch);
  std::vector<std::byte> tiny(10);
  CHECK(run(f.io, f.l->append(tiny)).error() == errc::bad_batch);
  CHECK(f.l->log_end_offset() == offset(0));
}

TEST_CASE("log: wait_for_data resumes when an append lands") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  bool woke = false;
  asio::co_spawn(
      f.io,
      [&]() -> asio::awaitable<void> {
        REQUIRE_FALSE(co_await f.l->wait_for_data(offset(-1) + 1));
        woke = true;
      },
      asio::detached);
  asio::co_spawn(
      f.io,
      [&]() -> asio::awaitable<void> {
        auto b = make_batch();
        CHECK_FALSE(woke);
        REQUIRE((co_await f.l->append(b)).has_value());
      },
      asio::detached);
  f.io.restart();
  f.io.run();
  CHECK(woke);
}

TEST_CASE("log: reopen after a clean close keeps every batch and the recovery point") {
  log_fixture f;
  f.cfg.segment_bytes = 3 * batch_size();
  REQUIRE_FALSE(f.open());
  f.append_n(8);
  REQUIRE_FALSE(f.close());
  auto& l = f.reopen();
  CHECK(l.log_end_offset() == offset(8));
  CHECK(l.flushed_offset() == offset(8));
  CHECK(l.recovery_point() == offset(8));
  CHECK(l.segment_count() == 3);
  CHECK(f.read_all(offset(0)).size() == 8);
  CHECK(f.append(make_batch()) == offset(8));
}

TEST_CASE("log: a torn header at the tail is truncated and appends continue") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  f.append_n(5);
  REQUIRE_FALSE(f.flush());
  f.crash();
  testing::truncate_file(f.seg(offset(0), ".log"), 4 * batch_size() + 20);
  log_capture cap;
  auto& l = f.reopen();
  CHECK(l.log_end_offset() == offset(4));
  CHECK(std::filesystem::file_size(f.seg(offset(0), ".log")) == 4 * batch_size());
  CHECK(cap.text().find("torn write") != std::string::npos);
  CHECK(f.append(make_batch()) == offset(4));
  CHECK(f.read_all(offset(0)).size() == 5);
}

TEST_CASE("log: a torn payload at the tail is truncated") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  f.append_n(5);
  f.crash();
  testing::truncate_file(f.seg(offset(0), ".log"), 5 * batch_size() - 8);
  auto& l = f.reopen();
  CHECK(l.log_end_offset() == offset(4));
  CHECK(f.read_all(offset(0)).size() == 4);
}

TEST_CASE("log: a CRC mismatch at the tail (above the recovery point) is a torn write") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  f.append_n(5);
  REQUIRE_FALSE(f.flush());
  f.crash();
  testing::flip_byte(f.seg(offset(0), ".log"), 4 * batch_size() + 100);
  log_capture cap;
  auto& l = f.reopen();
  CHECK(l.log_end_offset() == offset(4));
  CHECK(cap.text().find("CRC-32C mismatch") != std::string::npos);
}

TEST_CASE("log: zeroed pages at the tail (lost writeback) are a torn write") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  f.append_n(6);
  f.crash();
  auto path = f.seg(offset(0), ".log");
  auto bytes = testing::read_file(path);
  std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(3 * batch_size()), bytes.end(), std::byte{0});
  testing::write_file(path, bytes);
  CHECK(f.reopen().log_end_offset() == offset(3));
}

TEST_CASE("log: a CRC mismatch in a sealed segment below the recovery point fails open naming file and position") {
  log_fixture f;
  f.cfg.segment_bytes = 4 * batch_size();
  REQUIRE_FALSE(f.open());
  f.append_n(10);
  REQUIRE_FALSE(f.flush());  // seals segments 0 and 4 durably: recovery point moves to 8
  CHECK(f.l->recovery_point() == offset(8));
  f.crash();
  auto pos = 3 * batch_size();
  testing::flip_byte(f.seg(offset(0), ".log"), pos + 70);
  log_capture cap;
  CHECK(f.open() == errc::corrupt_log);
  auto text = cap.text();
  CHECK(text.find("corrupt log") != std::string::npos);
  CHECK(text.find(f.seg(offset(0), ".log").string()) != std::string::npos);
  CHECK(text.find(fmt::format("position {}", pos)) != std::string::npos);
  // Nothing was changed on disk.
  CHECK(std::filesystem::file_size(f.seg(offset(0), ".log")) == 4 * batch_size());
  CHECK(std::filesystem::exists(f.seg(offset(8), ".log")));
}

TEST_CASE("log: after a clean close a damaged last batch is corruption, not a torn write") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  f.append_n(3);
  REQUIRE_FALSE(f.close());
  testing::flip_byte(f.seg(offset(0), ".log"), 2 * batch_size() + 90);
  CHECK(f.open() == errc::corrupt_log);
}

TEST_CASE("log: verify_on_open finds corruption the index would skip") {
  log_fixture f;
  f.cfg.index_interval_bytes = static_cast<std::uint32_t>(batch_size());
  REQUIRE_FALSE(f.open());
  f.append_n(10);
  REQUIRE_FALSE(f.close());
  testing::flip_byte(f.seg(offset(0), ".log"), batch_size() + 90);  // batch 1, well before the last index entry
  CHECK(f.reopen().log_end_offset() == offset(10));  // trusted by the index: opens
  REQUIRE_FALSE(f.close());
  f.cfg.verify_on_open = true;
  CHECK(f.open() == errc::corrupt_log);
}

TEST_CASE("log: a missing index is rebuilt from the log") {
  log_fixture f;
  f.cfg.index_interval_bytes = 2 * static_cast<std::uint32_t>(batch_size());
  REQUIRE_FALSE(f.open());
  f.append_n(20);
  REQUIRE_FALSE(f.close());
  auto good_index = testing::read_file(f.seg(offset(0), ".index"));
  CHECK(good_index.size() > 0);
  std::filesystem::remove(f.seg(offset(0), ".index"));
  auto& l = f.reopen();
  CHECK(l.log_end_offset() == offset(20));
  CHECK(f.read_all(offset(7)).size() == 13);
  REQUIRE_FALSE(f.close());
  CHECK(testing::read_file(f.seg(offset(0), ".index")) == good_index);
}

TEST_CASE("log: a truncated index (torn entry) is rebuilt") {
  log_fixture f;
  f.cfg.index_interval_bytes = 2 * static_cast<std::uint32_t>(batch_size());
  REQUIRE_FALSE(f.open());
  f.append_n(20);
  REQUIRE_FALSE(f.close());
  auto good_index = testing::read_file(f.seg(offset(0), ".index"));
  testing::truncate_file(f.seg(offset(0), ".index"), good_index.size() / 2 + 3);
  f.reopen();
  REQUIRE_FALSE(f.close());
  CHECK(testing::read_file(f.seg(offset(0), ".index")) == good_index);
}

TEST_CASE("log: a stale index that disagrees with the log is rebuilt") {
  log_fixture f;
  f.cfg.index_interval_bytes = 2 * static_cast<std::uint32_t>(batch_size());
  REQUIRE_FALSE(f.open());
  f.append_n(20);
  REQUIRE_FALSE(f.close());
  auto good_index = testing::read_file(f.seg(offset(0), ".index"));
  auto stale = good_index;
  stale[stale.size() - 4] ^= std::byte{0x08};  // last entry points at the wrong position
  testing::write_file(f.seg(offset(0), ".index"), stale);
  log_capture cap;
  auto& l = f.reopen();
  CHECK(cap.text().find("rebuilding") != std::string::npos);
  CHECK(l.log_end_offset() == offset(20));
  CHECK(f.read_all(offset(0)).size() == 20);
  REQUIRE_FALSE(f.close());
  CHECK(testing::read_file(f.seg(offset(0), ".index")) == good_index);
}

TEST_CASE("log: time index finds the first batch at or after a timestamp") {
  log_fixture f;
  f.cfg.index_interval_bytes = static_cast<std::uint32_t>(batch_size());
  f.cfg.segment_bytes = 6 * batch_size();
  REQUIRE_FALSE(f.open());
  for (int i = 0; i < 15; ++i) f.append(make_batch(1, 16, timestamp_ms(1000 + 10 * i)));
  auto at = [&](std::int64_t t) { return run(f.io, f.l->offset_for_timestamp(timestamp_ms(t))); };
  CHECK(*at(0) == offset(0));
  CHECK(*at(1000) == offset(0));
  CHECK(*at(1001) == offset(1));
  CHECK(*at(1050) == offset(5));
  CHECK(*at(1065) == offset(7));
  CHECK(*at(1140) == offset(14));
  CHECK_FALSE(at(1141)->has_value());
  // The same answers after a reopen with the time index files removed.
  REQUIRE_FALSE(f.close());
  for (auto base : {0, 6, 12}) std::filesystem::remove(f.seg(offset(base), ".timeindex"));
  f.reopen();
  CHECK(*at(1065) == offset(7));
  CHECK(*at(1131) == offset(14));
}

TEST_CASE("log: time index tolerates out-of-order timestamps") {
  log_fixture f;
  f.cfg.index_interval_bytes = static_cast<std::uint32_t>(batch_size());
  REQUIRE_FALSE(f.open());
  for (std::int64_t t : {100, 300, 200, 250, 400, 350}) f.append(make_batch(1, 16, timestamp_ms(t)));
  auto at = [&](std::int64_t t) { return *run(f.io, f.l->offset_for_timestamp(timestamp_ms(t))); };
  CHECK(at(150) == offset(1));
  CHECK(at(300) == offset(1));
  CHECK(at(301) == offset(4));
  CHECK(at(400) == offset(4));
}

TEST_CASE("log: truncate removes everything at and after an offset, across segments") {
  log_fixture f;
  f.cfg.segment_bytes = 4 * batch_size();
  REQUIRE_FALSE(f.open());
  f.append_n(10);
  REQUIRE_FALSE(f.flush());
  REQUIRE_FALSE(run(f.io, f.l->truncate(offset(3))));
  CHECK(f.l->log_end_offset() == offset(3));
  CHECK(f.l->flushed_offset() == offset(3));
  CHECK(f.l->segment_bases() == std::vector<offset>{offset(0)});
  CHECK_FALSE(std::filesystem::exists(f.seg(offset(4), ".log")));
  CHECK(std::filesystem::file_size(f.seg(offset(0), ".log")) == 3 * batch_size());
  CHECK(f.append(make_batch()) == offset(3));
  CHECK(f.read_all(offset(0)).size() == 4);
  REQUIRE_FALSE(f.close());
  CHECK(f.reopen().log_end_offset() == offset(4));
}

TEST_CASE("log: truncate inside a batch removes that whole batch") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  f.append(make_batch(4));
  f.append(make_batch(4));
  REQUIRE_FALSE(run(f.io, f.l->truncate(offset(6))));
  CHECK(f.l->log_end_offset() == offset(4));
}

TEST_CASE("log: truncate then crash recovers to the truncated log") {
  log_fixture f;
  f.cfg.segment_bytes = 4 * batch_size();
  REQUIRE_FALSE(f.open());
  f.append_n(10);
  REQUIRE_FALSE(f.close());
  f.reopen();
  REQUIRE_FALSE(run(f.io, f.l->truncate(offset(5))));
  f.append_n(2);
  f.crash();
  auto& l = f.reopen();
  CHECK(l.log_end_offset() == offset(7));
  CHECK(f.read_all(offset(0)).size() == 7);
}

TEST_CASE("log: retention by size deletes the oldest sealed segments, never the active one") {
  log_fixture f;
  f.cfg.segment_bytes = 2 * batch_size();
  f.cfg.retention_bytes = static_cast<std::int64_t>(5 * batch_size());
  REQUIRE_FALSE(f.open());
  f.append_n(9);  // segments 0,2,4,6 sealed (2 batches each), 8 active (1)
  auto deleted = run(f.io, f.l->apply_retention(timestamp_ms(0)));
  REQUIRE(deleted.has_value());
  CHECK(*deleted == 2);
  CHECK(f.l->log_start_offset() == offset(4));
  CHECK(f.l->size_bytes() == 5 * batch_size());
  CHECK_FALSE(std::filesystem::exists(f.seg(offset(0), ".log")));
  CHECK(run(f.io, f.l->read(offset(1), 100)).error() == errc::offset_out_of_range);
  f.cfg.retention_bytes = 0;
  REQUIRE_FALSE(f.close());
  f.reopen();
  CHECK(*run(f.io, f.l->apply_retention(timestamp_ms(0))) == 2);
  CHECK(f.l->segment_bases() == std::vector<offset>{offset(8)});
  CHECK(f.l->log_start_offset() == offset(8));
}

TEST_CASE("log: retention by time deletes sealed segments whose newest record is too old") {
  log_fixture f;
  f.cfg.segment_bytes = 2 * batch_size();
  f.cfg.retention_ms = std::chrono::milliseconds(100);
  REQUIRE_FALSE(f.open());
  for (int i = 0; i < 6; ++i) f.append(make_batch(1, 16, timestamp_ms(1000 * (i + 1))));
  // Segments: [1000,2000] [3000,4000] [5000,6000]; now = 4050 keeps [3000,4000].
  CHECK(*run(f.io, f.l->apply_retention(timestamp_ms(4050))) == 1);
  CHECK(f.l->log_start_offset() == offset(2));
  CHECK(*run(f.io, f.l->apply_retention(timestamp_ms(1'000'000))) == 1);
  CHECK(f.l->segment_bases() == std::vector<offset>{offset(4)});  // the active segment stays
}

TEST_CASE("log: operations after close fail with log_closed") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  f.append_n(1);
  REQUIRE_FALSE(run(f.io, f.l->close()));
  auto b = make_batch();
  CHECK(run(f.io, f.l->append(b)).error() == errc::log_closed);
  CHECK(run(f.io, f.l->read(offset(0), 100)).error() == errc::log_closed);
  CHECK(run(f.io, f.l->flush()) == errc::log_closed);
}

TEST_CASE("log: a segment that does not continue the log above the recovery point is dropped") {
  log_fixture f;
  f.cfg.segment_bytes = 2 * batch_size();
  REQUIRE_FALSE(f.open());
  f.append_n(3);  // segments 0 and 2
  f.crash();
  // A stray segment far ahead (e.g. from a rename gone wrong).
  std::filesystem::copy_file(f.seg(offset(2), ".log"), f.seg(offset(50), ".log"));
  log_capture cap;
  auto& l = f.reopen();
  CHECK(l.log_end_offset() == offset(3));
  CHECK_FALSE(std::filesystem::exists(f.seg(offset(50), ".log")));
  CHECK(cap.text().find("does not continue the log") != std::string::npos);
}

TEST_CASE("log: without a readable recovery-point, damage in a sealed segment fails the open instead of truncating the log") {
  for (const bool garbage : {false, true}) {
    CAPTURE(garbage);
    log_fixture f;
    f.cfg.segment_bytes = 4 * batch_size();
    REQUIRE_FALSE(f.open());
    f.append_n(10);
    REQUIRE_FALSE(f.close());
    const auto rp = f.dir / "recovery-point";
    if (garbage) {
      testing::write_file(rp, std::vector<std::byte>(16, std::byte{0x5a}));
    } else {
      std::filesystem::remove(rp);
    }
    testing::flip_byte(f.seg(offset(0), ".log"), 2 * batch_size() + 70);
    log_capture cap;
    CHECK(f.open() == errc::corrupt_log);
    CHECK(cap.text().find(garbage ? "is unreadable" : "is missing") != std::string::npos);
    // Nothing was cut: the damaged segment and the later ones are all there.
    CHECK(std::filesystem::file_size(f.seg(offset(0), ".log")) == 4 * batch_size());
    CHECK(std::filesystem::exists(f.seg(offset(8), ".log")));
  }
}

TEST_CASE("log: without a recovery-point, a torn tail of the last segment is still cut and the log opens") {
  log_fixture f;
  f.cfg.segment_bytes = 4 * batch_size();
  REQUIRE_FALSE(f.open());
  f.append_n(10);
  f.crash();
  std::filesystem::remove(f.dir / "recovery-point");
  auto path = f.seg(offset(8), ".log");
  auto bytes = testing::read_file(path);
  bytes.resize(batch_size() + batch_size() / 2);  // offset 9 half written
  testing::write_file(path, bytes);
  CHECK(f.reopen().log_end_offset() == offset(9));
  CHECK(f.l->recovery_point() == offset(9));  // the open fsynced what it kept and wrote the file again
  CHECK(std::filesystem::exists(f.dir / "recovery-point"));
}

namespace {

// Bytes a directory's files occupy on disk (st_blocks) and their
// apparent size.
std::pair<std::uint64_t, std::uint64_t> disk_use(const std::filesystem::path& dir) {
  std::uint64_t used = 0, apparent = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    struct stat st {};
    if (!e.is_regular_file() || ::stat(e.path().c_str(), &st) != 0) continue;
    used += static_cast<std::uint64_t>(st.st_blocks) * 512;
    apparent += static_cast<std::uint64_t>(st.st_size);
  }
  return {used, apparent};
}

}  // namespace

TEST_CASE("log: quiet partitions reserve little disk: preallocation follows each segment's growth") {
  // 100 partitions of about 12 KiB each (the shape that took 1.6 GB for
  // 25 MB with a fixed 16 MiB step), and one busy partition whose steps
  // grow to the configured one but never past segment.bytes.
  temp_dir tmp;
  asio::io_context io;
  io_ring ring{io};
  log_config cfg;  // defaults: 16 MiB preallocation steps
  std::uint64_t data = 0;
  for (int p = 0; p < 100; ++p) {
    auto opened = run(io, storage::log::open(ring, tmp / ("q-" + std::to_string(p)), topic_partition("q", partition_id(p)), cfg));
    REQUIRE(opened.has_value());
    auto& l = *opened;
    for (int i = 0; i < 12; ++i) {
      auto b = make_batch(1, 1000);
      data += b.size();
      REQUIRE(run(io, l->append(std::span(b))).has_value());
    }
    REQUIRE_FALSE(run(io, l->close()));
  }
  const auto [used, apparent] = disk_use(tmp.path());
  MESSAGE("100 quiet partitions: " << data << " bytes of batches, " << apparent << " apparent, " << used << " on disk");
  // Each segment reserves about as much again as it holds (a 16 MiB step
  // each took 1.6 GiB here); indexes and metadata files are small.
  CHECK(used < 2 * data + 100 * (32 * 1024));
  // A busy partition: steps capped by segment.bytes (2 MiB here).
  log_config busy = cfg;
  busy.segment_bytes = 2 << 20;
  auto opened = run(io, storage::log::open(ring, tmp / "busy-0", topic_partition("busy", partition_id(0)), busy));
  REQUIRE(opened.has_value());
  auto& l = *opened;
  for (int i = 0; i < 3000; ++i) {
    auto b = make_batch(1, 1000);
    REQUIRE(run(io, l->append(std::span(b))).has_value());
  }
  REQUIRE_FALSE(run(io, l->close()));
  for (const auto& e : std::filesystem::directory_iterator(tmp / "busy-0")) {
    if (e.path().extension() != ".log") continue;
    struct stat st {};
    REQUIRE(::stat(e.path().c_str(), &st) == 0);
    CHECK(static_cast<std::uint64_t>(st.st_blocks) * 512 <= busy.segment_bytes + (1 << 20));
  }
}

TEST_CASE("log: a sealed segment gives back the blocks preallocated past its end") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  f.append_n(200, 1, 1000);  // about 210 KB, 270 KB reserved
  struct stat st {};
  REQUIRE(::stat(f.seg(offset(0), ".log").c_str(), &st) == 0);
  const auto reserved = static_cast<std::uint64_t>(st.st_blocks) * 512;
  f.cfg.segment_ms = std::chrono::milliseconds(1);
  f.l->set_config(f.cfg);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  f.append_n(1);  // rolls by age
  REQUIRE_FALSE(f.flush());
  REQUIRE(f.l->segment_bases().size() == 2);
  REQUIRE(::stat(f.seg(offset(0), ".log").c_str(), &st) == 0);
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const auto used = static_cast<std::uint64_t>(st.st_blocks) * 512;
  MESSAGE("sealed segment: " << size << " bytes, " << reserved << " on disk before the roll, " << used << " after");
  CHECK(reserved > size + 16384);  // the control: it had reserved well past its end
  CHECK(used <= (size + 4095) / 4096 * 4096 + 4096);  // its blocks, and at most one ext4 keeps
}

TEST_CASE("log: a roll fsyncs the sealed segment in the background and moves the recovery point, without any flush") {
  log_fixture f;
  f.cfg.segment_bytes = 4 * batch_size();
  REQUIRE_FALSE(f.open());
  f.append_n(10);  // segments 0, 4 and 8; no flush (acks=1 traffic)
  for (int i = 0; i < 200 && f.l->recovery_point() < offset(8); ++i) {
    f.io.restart();
    f.io.run_for(std::chrono::milliseconds(10));
  }
  CHECK(f.l->recovery_point() == offset(8));
  f.crash();
  // The file says so too: a restart trusts everything below 8.
  auto bytes = testing::read_file(f.dir / "recovery-point");
  REQUIRE(bytes.size() == 16);
  std::int64_t on_disk = 0;
  std::memcpy(&on_disk, bytes.data() + 4, sizeof on_disk);
  CHECK(on_disk == 8);
  CHECK(f.reopen().log_end_offset() == offset(10));
}

namespace {

// Runs the fixture's io until `done` holds (bounded: 2 s).
template <class F>
void run_until(log_fixture& f, F done) {
  for (int i = 0; i < 200 && !done(); ++i) {
    f.io.restart();
    f.io.run_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

TEST_CASE("log: flush.messages starts a background flush every that many records, and the indexes reach the disk") {
  log_fixture f;
  f.cfg.flush_messages = 10;
  f.cfg.index_interval_bytes = 1;  // an index entry per batch
  REQUIRE_FALSE(f.open());
  f.append_n(25);  // no flush() (acks=1 traffic)
  run_until(f, [&] { return f.l->flushed_offset() >= offset(20); });
  CHECK(f.l->flushed_offset() >= offset(20));
  CHECK(f.l->flushed_offset() < offset(25));  // by count: the last 5 wait for the next 10
  CHECK(std::filesystem::file_size(f.seg(offset(0), ".index")) > 0);
  // Without it nothing moves (today's default): the control.
  log_fixture off;
  REQUIRE_FALSE(off.open());
  off.append_n(25);
  off.io.restart();
  off.io.run_for(std::chrono::milliseconds(200));
  CHECK(off.l->flushed_offset() == offset(0));
}

TEST_CASE("log: flush.ms flushes data once its oldest unflushed write is that old, and not before") {
  log_fixture f;
  f.cfg.flush_ms = std::chrono::milliseconds(60'000);
  REQUIRE_FALSE(f.open());
  f.append_n(5);
  const auto now = std::chrono::steady_clock::now();
  f.l->flush_if_due(now);  // a minute early
  f.io.restart();
  f.io.run_for(std::chrono::milliseconds(200));
  CHECK(f.l->flushed_offset() == offset(0));
  f.l->flush_if_due(now + std::chrono::milliseconds(61'000));
  run_until(f, [&] { return f.l->flushed_offset() == offset(5); });
  CHECK(f.l->flushed_offset() == offset(5));
  f.append_n(3);  // the clock starts again with the next write
  f.l->flush_if_due(std::chrono::steady_clock::now() + std::chrono::milliseconds(1'000));
  f.io.restart();
  f.io.run_for(std::chrono::milliseconds(200));
  CHECK(f.l->flushed_offset() == offset(5));
}
