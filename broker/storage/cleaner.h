#pragma once
// log_cleaner: log compaction for cleanup.policy=compact logs (Kafka's
// LogCleaner), one per broker, with one thread of its own.
//
//   shard thread                          cleaner thread
//   run(logs): every log.cleaner.backoff.ms, for each log:
//     log::plan_clean --clean_job-->      run_clean_pass: offset map, copy to
//                                         <base>.*.cleaned, fsync
//     log::finish_clean <--clean_output-- (posted back to the shard)
//       checkpoint, .cleaned -> .swap -> final names, new segment objects
//
// The shard thread never blocks on the copy: it awaits the result. The
// cleaner thread never touches a log: it reads the job's immutable files
// and writes `.cleaned` files; the swap (renames, the segment list) runs on
// the shard that owns the log. See docs/adr/0008-log-cleaner.md.
//
// stop() (before the logs close) cancels the timers and the pass in
// progress and joins the thread; every job posted before it still
// completes (cancelled), so no shard waits forever.

#include <atomic>
#include <cstdint>
#include <expected>
#include <map>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "broker/storage/clean_pass.h"
#include "broker/storage/offset_map.h"
#include "broker/storage/types.h"

namespace runnel::storage {

class log;
class log_manager;

class log_cleaner {
 public:
  explicit log_cleaner(cleaner_config cfg);
  ~log_cleaner();
  log_cleaner(const log_cleaner&) = delete;             // owns a thread
  log_cleaner& operator=(const log_cleaner&) = delete;  // owns a thread
  log_cleaner(log_cleaner&&) = delete;                  // coroutines hold `this`
  log_cleaner& operator=(log_cleaner&&) = delete;       // coroutines hold `this`

  // The periodic job of one shard (spawn it on the shard of `logs`): every
  // backoff, one pass over each of its compacted logs. Returns after stop().
  asio::awaitable<void> run(log_manager& logs);

  // One pass over `l`, on l's shard: nullopt when the log needs none (not
  // compacted, dirty ratio below min.cleanable.dirty.ratio, nothing sealed).
  asio::awaitable<std::optional<std::expected<clean_output, std::error_code>>> clean(log& l, timestamp_ms now);

  // Idempotent; call from a thread that is not a shard's.
  void stop();

  [[nodiscard]] const cleaner_config& config() const { return cfg_; }

 private:
  cleaner_config cfg_;
  asio::io_context io_;  // the cleaner thread's: one pass at a time
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  offset_map map_;  // used by the cleaner thread only

  std::mutex mu_;  // guards stopping_ transitions, posting, and timers_
  std::atomic<bool> stopping_{false};
  std::map<std::uint64_t, asio::steady_timer*> timers_;  // run() loops' timers, by id
  std::uint64_t next_timer_ = 0;
};

}  // namespace runnel::storage
