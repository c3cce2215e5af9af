#include "broker/net/shard.h"

#include <pthread.h>

#include <csignal>

#include <asio/post.hpp>

#include "broker/net/groups.h"
#include "broker/net/share_partitions.h"
#include "broker/net/logger.h"
#include "broker/net/replication.h"

namespace runnel::net {

shard::shard(unsigned id, unsigned count, const std::filesystem::path& data_dir)
    : id_(id), count_(count), guard_(io_.get_executor()), topics_(std::make_shared<const meta::topic_map>()) {
  ring_ = std::make_unique<storage::io_ring>(io_);
  logs_ = std::make_unique<storage::log_manager>(
      *ring_, data_dir,
      [this](const topic_partition& tp) {
        auto it = topics_->find(tp.topic);
        return it == topics_->end() ? storage::log_config{} : it->second.config.log;
      },
      [this](const topic_partition& tp) { return owns(tp); });
}

shard::~shard() { join(); }

void shard::set_replicas(std::unique_ptr<replica_manager> r) { replicas_ = std::move(r); }

void shard::set_groups(std::unique_ptr<group_coordinators> g) { groups_ = std::move(g); }

void shard::set_shares(std::unique_ptr<share_partitions> p) { shares_ = std::move(p); }

unsigned shard::owner_of(const topic_partition& tp, unsigned shard_count) {
  return static_cast<unsigned>(std::hash<topic_partition>{}(tp) % shard_count);
}

void shard::set_topics(meta::topics_snapshot t) {
  topics_ = std::move(t);
  // Altered configs reach the open logs.
  for (const auto& tp : logs_->partitions()) {
    auto it = topics_->find(tp.topic);
    if (it == topics_->end()) continue;
    if (auto* l = logs_->get(tp)) l->set_config(it->second.config.log);
  }
}

void shard::watch(const topic_partition& tp, offset after, const std::shared_ptr<fetch_wakeup>& w) {
  auto& list = watchers_[tp];
  // Drop watchers of fetches that already finished, so an idle partition's
  // list stays bounded by the fetches really waiting on it.
  std::erase_if(list, [](const watcher& x) { return x.wakeup.expired(); });
  list.push_back(watcher{after, w, w->timer.get_executor()});
}

void shard::notify(const topic_partition& tp, offset log_end, std::uint64_t bytes) {
  auto it = watchers_.find(tp);
  if (it == watchers_.end()) return;
  auto& list = it->second;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < list.size(); ++i) {
    auto& x = list[i];
    auto w = x.wakeup.lock();
    if (!w) continue;  // its fetch finished
    if (log_end > x.after) {
      // Not enough yet for its min_bytes: it waits for the next append.
      const bool short_of_need =
          bytes != unknown_bytes && w->arrived.fetch_add(bytes, std::memory_order_relaxed) + bytes < w->need;
      if (!short_of_need) {
        asio::post(x.ex, [w] {
          w->woken = true;
          w->timer.cancel();
        });
        continue;
      }
      // `after` stays: every later append past it counts its bytes too
      // (appends written together notify with one log end), and a high
      // watermark reaching the log end still wakes it.
    }
    // Never a self-move: libstdc++'s weak_ptr move assignment empties a
    // weak_ptr moved onto itself, and the watcher it kept lost its wake-up
    // (a follower's long poll then slept out its 500 ms while data came;
    // acks=all waited for that follower: W7 acks=all ran at 43 k rec/s).
    if (kept != i) list[kept] = std::move(x);
    ++kept;
  }
  list.resize(kept);
  if (list.empty()) watchers_.erase(it);
}

void shard::wake_all() {
  for (auto& [tp, list] : watchers_) {
    for (const auto& x : list) {
      if (auto w = x.wakeup.lock()) {
        asio::post(x.ex, [w] {
          w->woken = true;
          w->timer.cancel();
        });
      }
    }
  }
  watchers_.clear();
}

void shard::start() {
  thread_ = std::thread([this] {
    // A client that leaves mid-answer makes sendfile(2) raise SIGPIPE,
    // which would end the whole process (an embedded broker's host too):
    // blocked here, the write fails with EPIPE and the connection closes.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    try {
      io_.run();
    } catch (const std::exception& e) {
      logger().critical("shard {} stopped by an exception: {}", id_, e.what());
      std::abort();
    }
    exited_.set_value();
  });
}

void shard::stop() { guard_.reset(); }

void shard::join() {
  if (thread_.joinable()) thread_.join();
}

bool shard::join_for(std::chrono::milliseconds limit) {
  if (!thread_.joinable()) return true;
  if (exited_future_.wait_for(limit) != std::future_status::ready) return false;
  thread_.join();
  return true;
}

}  // namespace runnel::net
