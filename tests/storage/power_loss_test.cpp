// The log on runnel-powerfs (tests/support/powerfs/model.h): a power loss
// keeps only what was fsynced, file data and directory entries alike, so
// these tests see a missing fsync that kill -9 (page cache kept) cannot.

#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>

#include "tests/support/log_fixture.h"
#include "tests/support/powerfs.h"

using namespace runnel;
using namespace runnel::testing;

namespace {

std::size_t one_batch() { return make_batch().size(); }

// A log of 3-batch segments opened on a fresh powerfs mount (declared
// after the fixture, so it unmounts before the fixture's directory goes).
struct powerfs_log {
  log_fixture f;
  powerfs_mount m{f.tmp / "mnt"};
  powerfs_log() {
    f.dir = m.path() / "t-0";
    f.cfg.segment_bytes = 3 * one_batch();
    REQUIRE_FALSE(f.open());
  }
};

// Appends `batches` (one after another, without letting the log's
// background work run out in between, as under a broker's traffic), then
// flushes and cuts the power in the flush's completion handler: the loss
// comes the moment the flush is answered, before anything the log does after
// answering (index and recovery-point writes) has run. Then lets whatever is
// left run out against the dead mount and drops the log.
asio::awaitable<std::error_code> append_and_flush(storage::log& l, std::vector<std::vector<std::byte>> batches) {
  for (auto& b : batches) {
    auto r = co_await l.append(b);
    if (!r) co_return r.error();
  }
  co_return co_await l.flush();
}

void append_flush_lose_power(log_fixture& f, powerfs_mount& m, int batches, const std::filesystem::path& to) {
  std::vector<std::vector<std::byte>> made;
  for (int i = 0; i < batches; ++i) made.push_back(make_batch(1, 16, timestamp_ms(2000 + i)));
  bool flushed = false;
  asio::co_spawn(f.io, append_and_flush(*f.l, std::move(made)), [&](std::exception_ptr e, std::error_code ec) {
    REQUIRE_FALSE(e);
    REQUIRE_FALSE(ec);
    m.lose_power(to);
    flushed = true;
  });
  f.io.restart();
  f.io.run();
  REQUIRE(flushed);
  f.crash();
}

}  // namespace

// A roll creates a segment file; a flush that returned counts the batches in
// it as durable only if the directory entry is durable too (log.cpp's
// sync_loop fsyncs the directory before it tells the waiters; the recovery
// point written after that is too late). Without that fsync, the segments a
// roll made vanish at a power loss and the flushed batches in them too.
TEST_CASE("log power loss: batches flushed into a segment a roll created survive a loss at the flush's answer") {
  powerfs_log p;
  auto& [f, m] = p;
  f.append_n(9);  // rolls at offsets 3 and 6
  REQUIRE_FALSE(f.flush());  // and the recovery point moves to 6: the directory is synced, quiet
  REQUIRE(f.l->segment_count() == 3);
  // The roll at 9 creates a file; the flush after it must not be answered
  // before that file's directory entry is durable.
  append_flush_lose_power(f, m, 2, f.tmp / "after");

  f.dir = f.tmp / "after" / "t-0";
  auto& l = f.reopen();
  CHECK(l.log_end_offset() == offset(11));
  auto batches = f.read_all(offset(0));
  REQUIRE(batches.size() == 11);
  for (int i = 0; i < 11; ++i) CHECK(batches[static_cast<std::size_t>(i)].base_offset == offset(i));
  CHECK(l.segment_bases() == std::vector<offset>{offset(0), offset(3), offset(6), offset(9)});
  // The log accepts appends where the durable data ends.
  CHECK(f.append(make_batch()) == offset(11));
}

// The negative control: what was appended after the last flush is gone
// (the check above would pass a filesystem that kept everything).
TEST_CASE("log power loss: a batch appended after the last flush is lost") {
  powerfs_log p;
  auto& [f, m] = p;
  f.append_n(2);
  REQUIRE_FALSE(f.flush());
  f.append_n(1);  // no roll (a roll flushes the segment it seals)
  m.lose_power(f.tmp / "after");
  f.crash();

  f.dir = f.tmp / "after" / "t-0";
  CHECK(f.reopen().log_end_offset() == offset(2));
  CHECK(f.read_all(offset(0)).size() == 2);
}
