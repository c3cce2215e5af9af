#pragma once
// metadata_cache: topics (partition count, leader and leader epoch of each
// partition) and the broker id -> address map, from Metadata answers.
// A topic is fetched on first use and again on demand: after a leader
// change, a lost connection or a fenced epoch, its users refresh it.
// Metadata goes to any broker: the one that answered last, then the
// bootstrap list, then the brokers metadata named (connection_pool).
// Thread-safe; the blocking calls must not run on the pool's I/O thread.

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "client/src/cluster_view.h"
#include "client/src/connection_pool.h"

namespace runnel::client {

class metadata_cache {
 public:
  explicit metadata_cache(connection_pool& pool) : pool_(pool) {}

  // Blocking: fetch the topic when it is not cached; with `max_wait`, for
  // at most that long (then errc::timed_out; the fetch goes on and fills
  // the cache when it is answered). Without it, as long as the brokers
  // take to answer or fail.
  result<std::int32_t> partitions(const std::string& topic,
                                  std::optional<std::chrono::milliseconds> max_wait = std::nullopt);
  result<leader_route> leader(const std::string& topic, std::int32_t partition);

  // Never blocks: what the cache holds (find_leader's errors; an uncached
  // topic is errc::unknown_topic_or_partition).
  [[nodiscard]] result<leader_route> cached_leader(std::string_view topic,
                                                   std::int32_t partition) const;
  [[nodiscard]] routes route(std::span<const topic_partition_ref> partitions) const;

  // Blocking: fetch the topics again. Fails when no broker answers; a topic
  // the broker reports an error for is the caller's to look up.
  result<void> refresh(const std::vector<std::string>& topics);

  // Asynchronous refresh of one topic, unless one is in flight (then
  // `done` waits for that one) or the last ended less than `min_interval`
  // ago (returns false; `done` is dropped). `done` runs on the I/O thread.
  bool maybe_refresh(const std::string& topic, std::chrono::milliseconds min_interval,
                     std::move_only_function<void()> done);

  // Drops the topic: its next use fetches it.
  void forget(const std::string& topic);

 private:
  using fetched_fn = std::move_only_function<void(result<cluster_view>)>;
  // Metadata for `topics` from candidates[next...]; a candidate that cannot
  // be reached passes the request on to the next. `done` on the I/O thread.
  void fetch(std::vector<std::string> topics, std::vector<host_port> candidates, std::size_t next,
             std::string failures, fetched_fn done);
  // Blocking fetch, applied to the cache (also when it is answered after
  // `max_wait`).
  result<cluster_view> fetch_sync(const std::vector<std::string>& topics,
                                  std::optional<std::chrono::milliseconds> max_wait = std::nullopt);
  void apply(cluster_view view);

  struct refresh_state {
    bool in_flight = false;
    std::chrono::steady_clock::time_point ended{};
    std::vector<std::move_only_function<void()>> waiting;
  };

  connection_pool& pool_;
  mutable std::mutex mu_;  // guards what follows
  cluster_view view_;
  std::map<std::string, refresh_state, std::less<>> refreshes_;
};

}  // namespace runnel::client
