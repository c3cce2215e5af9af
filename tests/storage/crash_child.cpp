// log_crash_child DIR SEGMENT_BYTES MAX_SECONDS: appends deterministic
// batches (tests/support/crash_batches.h) from 4 concurrent writers, each
// append followed by flush(), and after every flush writes "D <offset>\n"
// to stdout: every batch below <offset> is durable. Stops by itself after
// MAX_SECONDS (the test normally SIGKILLs it first).

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <fmt/format.h>

#include "broker/storage/io_ring.h"
#include "broker/storage/log.h"
#include "tests/support/crash_batches.h"

using namespace runnel;

namespace {

struct shared_state {
  std::unique_ptr<storage::log> log;
  offset reported{0};
  int status = 0;
  std::chrono::steady_clock::time_point deadline;
};

void report(offset durable) {
  auto line = fmt::format("D {}\n", durable.value());
  (void)!::write(1, line.data(), line.size());
}

// One writer: append, flush, report the new durable offset. A free function
// so its frame holds only what it was given (the state lives in main).
asio::awaitable<void> writer(shared_state& st) {
  while (std::chrono::steady_clock::now() < st.deadline && st.status == 0) {
    // Built for the offset it will get: nothing suspends in between.
    auto batch = testing::crash_batch(st.log->next_offset());
    if (auto r = co_await st.log->append(batch); !r) {
      st.status = 1;
      co_return;
    }
    if (auto ec = co_await st.log->flush()) {
      st.status = 1;
      co_return;
    }
    if (st.log->flushed_offset() > st.reported) {
      st.reported = st.log->flushed_offset();
      report(st.reported);
    }
  }
}

asio::awaitable<void> start(asio::io_context& io, shared_state& st, std::filesystem::path dir, storage::io_ring& ring,
                            storage::log_config cfg) {
  topic_partition tp{"crash", partition_id(0)};
  auto opened = co_await storage::log::open(ring, dir, tp, cfg);
  if (!opened) {
    std::fprintf(stderr, "open failed: %s\n", opened.error().message().c_str());
    st.status = 1;
    co_return;
  }
  st.log = std::move(*opened);
  st.reported = st.log->flushed_offset();
  report(st.reported);
  for (int w = 0; w < 4; ++w) asio::co_spawn(io, writer(st), asio::detached);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: log_crash_child DIR SEGMENT_BYTES MAX_SECONDS\n");
    return 2;
  }
  std::filesystem::path dir = argv[1];
  storage::log_config cfg;
  cfg.segment_bytes = std::strtoull(argv[2], nullptr, 10);
  cfg.index_interval_bytes = 1024;
  shared_state st;
  st.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(std::atoi(argv[3]));

  asio::io_context io;
  storage::io_ring ring(io);
  asio::co_spawn(io, start(io, st, dir, ring, cfg), asio::detached);
  io.run();
  if (st.log) {
    asio::co_spawn(io, [&st]() -> asio::awaitable<void> { co_await st.log->close(); }, asio::detached);
    io.restart();
    io.run();
  }
  return st.status;
}
