#pragma once
// log_manager: the partition logs of one data directory that one shard owns.
//
//   <data>/<topic>-<partition>/   one log per directory (see log.h)
//
// open_all() discovers the directories and opens (recovers) their logs
// concurrently on the shard's ring. A log that fails to open (corruption, an
// I/O error) is listed as offline with its error; the others serve.
// Threading: like log, everything on the owning shard's thread.

#include <expected>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>
#include <vector>

#include <asio/awaitable.hpp>

#include "broker/storage/log.h"
#include "broker/storage/waiters.h"
#include "broker/storage/types.h"

namespace runnel::storage {

class io_ring;

class log_manager {
 public:
  using config_fn = std::function<log_config(const topic_partition&)>;
  using owner_fn = std::function<bool(const topic_partition&)>;

  // `config` gives each log its settings; `owns` picks the partitions this
  // manager (shard) opens from the directory (all by default).
  log_manager(io_ring& ring, std::filesystem::path data_dir, config_fn config, owner_fn owns = {});
  ~log_manager();
  log_manager(const log_manager&) = delete;             // owns logs
  log_manager& operator=(const log_manager&) = delete;  // owns logs
  log_manager(log_manager&&) = delete;                  // coroutines hold `this`
  log_manager& operator=(log_manager&&) = delete;       // coroutines hold `this`

  // Opens every owned log found in the data directory, concurrently.
  // Returns how many opened; failures are in offline().
  asio::awaitable<std::expected<std::size_t, std::error_code>> open_all();

  // The open log of `tp`, or a new empty one.
  asio::awaitable<std::expected<log*, std::error_code>> get_or_create(const topic_partition& tp);
  [[nodiscard]] log* get(const topic_partition& tp) const;
  // Closes the log and deletes its directory. A get_or_create meanwhile
  // waits for it, then starts a new empty log.
  asio::awaitable<std::error_code> remove(const topic_partition& tp);
  // Applies retention to every log; returns segments deleted.
  asio::awaitable<std::size_t> apply_retention(timestamp_ms now);
  // flush.ms: starts the background flushes that are due (log::flush_if_due).
  void flush_due(std::chrono::steady_clock::time_point now);
  // Clean close of every log (flush, index sync, recovery point).
  asio::awaitable<std::error_code> close_all();

  [[nodiscard]] std::vector<topic_partition> partitions() const;
  [[nodiscard]] const std::map<topic_partition, std::error_code>& offline() const { return offline_; }
  [[nodiscard]] const std::filesystem::path& data_dir() const { return data_dir_; }

  // `<topic>-<partition>` and back; topic names are [a-zA-Z0-9._-]{1,249}.
  [[nodiscard]] static std::filesystem::path dir_for(const std::filesystem::path& data_dir, const topic_partition& tp);
  [[nodiscard]] static std::optional<topic_partition> parse_dir_name(std::string_view name);
  [[nodiscard]] static bool valid_topic_name(std::string_view topic);

 private:
  io_ring& ring_;
  std::filesystem::path data_dir_;
  config_fn config_;
  owner_fn owns_;
  std::map<topic_partition, std::unique_ptr<log>> logs_;
  std::map<topic_partition, std::error_code> offline_;
  std::map<topic_partition, std::vector<completion>> opening_;   // get_or_create in progress
  std::map<topic_partition, std::vector<completion>> removing_;  // remove in progress: get_or_create waits
};

}  // namespace runnel::storage
