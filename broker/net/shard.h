#pragma once
// shard: one thread, one io_context, one io_uring ring, and the partitions
// it owns (owner = hash(topic, partition) % shard count). Everything a shard
// owns is touched only on its thread: other shards post work to it
// (run_on) and get the result back on their own executor. No mutex on the
// produce/fetch path.

#include <atomic>
#include <map>
#include <memory>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include "broker/meta/types.h"
#include "broker/storage/io_ring.h"
#include "broker/storage/log_manager.h"

namespace runnel::net {

class replica_manager;
class group_coordinators;
class share_partitions;

// A fetch waiting for data: appends on any watched partition expire its
// timer early (posted to the fetch's own shard).
struct fetch_wakeup {
  explicit fetch_wakeup(asio::any_io_executor ex) : timer(ex) {}
  asio::steady_timer timer;
  bool woken = false;  // touched on the fetch's shard only
  // Fetch min_bytes: the bytes still missing when the fetch went to sleep,
  // and those appended since to its partitions (counted on their shards).
  std::uint64_t need = 0;
  std::atomic<std::uint64_t> arrived{0};
};

// notify(): the bytes appended are not known (a high watermark moved).
inline constexpr std::uint64_t unknown_bytes = ~std::uint64_t{0};

class shard {
 public:
  shard(unsigned id, unsigned count, const std::filesystem::path& data_dir);
  ~shard();
  shard(const shard&) = delete;             // owns a thread and a ring
  shard& operator=(const shard&) = delete;  // owns a thread and a ring
  shard(shard&&) = delete;                  // the thread captures `this`
  shard& operator=(shard&&) = delete;       // the thread captures `this`

  [[nodiscard]] unsigned id() const { return id_; }
  [[nodiscard]] asio::io_context& io() { return io_; }
  [[nodiscard]] storage::log_manager& logs() { return *logs_; }
  [[nodiscard]] storage::io_ring& ring() { return *ring_; }
  [[nodiscard]] bool owns(const topic_partition& tp) const { return owner_of(tp, count_) == id_; }
  [[nodiscard]] static unsigned owner_of(const topic_partition& tp, unsigned shard_count);

  // This shard's view of the topics (set on its thread).
  [[nodiscard]] const meta::topics_snapshot& topics() const { return topics_; }
  void set_topics(meta::topics_snapshot t);

  // Cluster mode: the partition roles of this shard (null in standalone mode).
  [[nodiscard]] replica_manager* replicas() const { return replicas_.get(); }
  void set_replicas(std::unique_ptr<replica_manager> r);

  // The group coordinators of the __consumer_offsets partitions it owns.
  [[nodiscard]] group_coordinators& groups() const { return *groups_; }
  void set_groups(std::unique_ptr<group_coordinators> g);

  // The share groups' state of the partitions it owns (share_partitions.h).
  [[nodiscard]] share_partitions& shares() const { return *shares_; }
  void set_shares(std::unique_ptr<share_partitions> p);

  // Long poll: wake `w` when tp's log end passes `after`.
  void watch(const topic_partition& tp, offset after, const std::shared_ptr<fetch_wakeup>& w);
  // Called after appends to tp: wakes the watchers whose target was passed.
  // `bytes`: appended to tp since the last notify; a watcher wakes once its
  // fetch's partitions got the bytes it still needs (or when unknown).
  void notify(const topic_partition& tp, offset log_end, std::uint64_t bytes = unknown_bytes);
  // Wakes every watcher (the broker is stopping: long polls answer now).
  void wake_all();

  void start();  // runs the thread
  void stop();   // lets run() return once the work guard is gone and no work is left
  void join();
  // join(), waiting at most `limit`; false if the thread still runs.
  bool join_for(std::chrono::milliseconds limit);
  // Ends run() with handlers still pending (they are destroyed, never run).
  void force_stop() { io_.stop(); }

 private:
  struct watcher {
    offset after;
    std::weak_ptr<fetch_wakeup> wakeup;
    asio::any_io_executor ex;
  };

  unsigned id_;
  unsigned count_;
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::unique_ptr<storage::io_ring> ring_;
  std::unique_ptr<storage::log_manager> logs_;
  meta::topics_snapshot topics_;
  std::unique_ptr<replica_manager> replicas_;
  std::unique_ptr<group_coordinators> groups_;
  std::unique_ptr<share_partitions> shares_;
  std::map<topic_partition, std::vector<watcher>> watchers_;
  std::thread thread_;
  std::promise<void> exited_;  // set when the thread's run() returned
  std::future<void> exited_future_ = exited_.get_future();
};

// Runs `task` on shard `s` and resumes the caller on its own executor.
template <class T>
asio::awaitable<T> run_on(shard& s, asio::awaitable<T> task) {
  co_return co_await asio::co_spawn(s.io(), std::move(task), asio::use_awaitable);
}

}  // namespace runnel::net
