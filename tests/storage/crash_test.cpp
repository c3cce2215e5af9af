// A real process appends and flushes; the test SIGKILLs it at a random
// moment (and sometimes also drops what was not fsynced, as a power loss
// would), reopens the log and checks that every batch reported durable is
// present, intact and in order, and that the log takes new appends.

#include <doctest/doctest.h>

#include <cstring>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>
#include <string>

#include "broker/storage/logger.h"
#include "tests/support/batches.h"
#include "tests/support/crash_batches.h"
#include "tests/support/log_files.h"
#include "tests/support/log_fixture.h"

extern char** environ;

using namespace runnel;
using runnel::testing::log_fixture;

namespace {

struct child {
  pid_t pid = -1;
  int out = -1;
  std::string pending;

  child(const std::filesystem::path& dir, std::uint64_t segment_bytes) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    std::string seg = std::to_string(segment_bytes);
    std::string d = dir.string();
    const char* argv[] = {RUNNEL_CRASH_CHILD, d.c_str(), seg.c_str(), "20", nullptr};
    REQUIRE(::posix_spawn(&pid, RUNNEL_CRASH_CHILD, &fa, nullptr, const_cast<char**>(argv), environ) == 0);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    out = fds[0];
  }
  ~child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (out >= 0) ::close(out);
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  child(child&&) = delete;
  child& operator=(child&&) = delete;

  // Reads "D <offset>" lines for `ms` milliseconds, and on (at most 10 s
  // more) until one is above `above` (a slow start, e.g. under ASan on a
  // busy machine, must not look like no progress); returns the highest.
  std::int64_t read_durable_for(int ms, std::int64_t above) {
    std::int64_t durable = 0;
    const auto start = std::chrono::steady_clock::now();
    auto until = start + std::chrono::milliseconds(ms);
    const auto limit = until + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until || (durable <= above && std::chrono::steady_clock::now() < limit)) {
      timeval tv{0, 10000};
      fd_set set;
      FD_ZERO(&set);
      FD_SET(out, &set);
      if (::select(out + 1, &set, nullptr, nullptr, &tv) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(out, buf, sizeof buf);
      if (n <= 0) break;
      pending.append(buf, static_cast<std::size_t>(n));
      std::size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        auto line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        if (line.rfind("D ", 0) == 0) durable = std::max(durable, static_cast<std::int64_t>(std::stoll(line.substr(2))));
      }
    }
    return durable;
  }

  void kill9() {
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    // Still running when killed: a child that died on its own (a crash in
    // the log) would make the round meaningless.
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(WTERMSIG(status) == SIGKILL);
  }
};

// The offset in the log's recovery-point file (docs/storage_format.md:
// u32 magic, i64 offset, u32 crc); 0 without one.
offset recovery_point_on_disk(const std::filesystem::path& dir) {
  if (!std::filesystem::exists(dir / "recovery-point")) return offset(0);
  auto bytes = testing::read_file(dir / "recovery-point");
  if (bytes.size() < 12) return offset(0);
  std::int64_t v = 0;
  std::memcpy(&v, bytes.data() + 4, sizeof v);
  return offset(v);
}

// Drops everything past the durable point at random, as a power loss that
// kept only what was fsynced (plus some of what was not) would. The durable
// point is what the child reported, or the recovery point it persisted if
// that is further: the child may have fsynced (and recorded) more than it
// got to report before the kill, and a power loss keeps that too.
void lose_unsynced(const std::filesystem::path& dir, offset reported, std::mt19937& rng) {
  const offset durable = std::max(reported, recovery_point_on_disk(dir));
  auto at = testing::find_offset_on_disk(dir, durable);
  REQUIRE(at.has_value());
  auto size = std::filesystem::file_size(at->file);
  auto keep = at->pos + (size > at->pos ? rng() % (size - at->pos + 1) : 0);
  testing::truncate_file(at->file, keep);
  auto segs = testing::segments_on_disk(dir);
  for (std::size_t i = at->segment_index + 1; i < segs.size(); ++i) {
    if (rng() % 2 == 0) std::filesystem::remove(segs[i].log);
  }
}

}  // namespace

TEST_CASE("crash: SIGKILL of a process appending and flushing loses no durable batch") {
  log_fixture f;
  f.cfg.segment_bytes = 256 << 10;
  f.cfg.index_interval_bytes = 1024;
  storage::logger().set_level(spdlog::level::err);
  std::mt19937 rng(std::random_device{}());
  std::int64_t expected_at_least = 0;
  for (int round = 0; round < 6; ++round) {
    CAPTURE(round);
    std::int64_t durable = 0;
    {
      child c(f.dir, f.cfg.segment_bytes);
      durable = c.read_durable_for(100 + static_cast<int>(rng() % 400), expected_at_least);
      c.kill9();
    }
    // The child made progress: it flushed past what the previous round left.
    REQUIRE(durable > expected_at_least);
    bool power_loss = round % 2 == 1;
    if (power_loss) lose_unsynced(f.dir, offset(durable), rng);

    auto& l = f.reopen();
    CHECK(l.log_end_offset() >= offset(durable));
    std::vector<std::vector<std::byte>> bytes;
    auto batches = f.read_all(l.log_start_offset(), &bytes);
    REQUIRE_FALSE(batches.empty());
    CHECK(batches.front().base_offset == offset(0));
    CHECK(batches.back().next_offset() == l.log_end_offset());
    for (const auto& b : bytes) REQUIRE(testing::is_crash_batch(b));
    // The log takes new appends where it ends.
    auto next = l.log_end_offset();
    CHECK(f.append(testing::crash_batch(next)) == next);
    REQUIRE_FALSE(f.close());
    expected_at_least = next.value() + 1;
  }
  storage::logger().set_level(spdlog::level::info);
}
