#pragma once
// log_fixture: a temp directory, an io_context and an io_ring, and short
// synchronous wrappers around the log's coroutines for tests.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include "broker/storage/io_ring.h"
#include "broker/storage/log.h"
#include "tests/support/batches.h"
#include "tests/support/run.h"
#include "tests/support/temp_dir.h"

namespace runnel::testing {

struct log_fixture {
  log_fixture() = default;
  ~log_fixture();
  log_fixture(const log_fixture&) = delete;
  log_fixture& operator=(const log_fixture&) = delete;
  log_fixture(log_fixture&&) = delete;
  log_fixture& operator=(log_fixture&&) = delete;

  temp_dir tmp;
  asio::io_context io;
  storage::io_ring ring{io};
  storage::log_config cfg;
  std::filesystem::path dir = tmp / "t-0";
  std::unique_ptr<storage::log> l;

  // Opens (recovers) the log in `dir`; returns the error instead on failure.
  std::error_code open();
  // Open that must succeed.
  storage::log& reopen();
  // Appends a batch (copied, so the caller's stays as made) and returns its base offset.
  offset append(std::vector<std::byte> batch);
  // Appends `n` batches of `records` records each; returns the last base offset.
  offset append_n(int n, int records = 1, std::size_t value_size = 16);
  std::error_code flush();
  std::error_code close();
  // Drops the log as a crash would: no flush, no index sync, no recovery point.
  void crash();
  // The batches read through log::read from `from` to the end, each checked
  // (whole, CRC-valid, dense offsets); `bytes` receives their bytes if given.
  std::vector<schemas::batch_header> read_all(offset from, std::vector<std::vector<std::byte>>* bytes = nullptr);
  // offset -> value of every record from the log start to its end (read_all).
  std::map<std::int64_t, std::string> values();
  std::filesystem::path seg(offset base, const char* ext) const;
};

}  // namespace runnel::testing
