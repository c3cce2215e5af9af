#include "broker/storage/cleaner.h"

#include <chrono>

#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "broker/storage/log.h"
#include "broker/storage/log_manager.h"
#include "broker/storage/logger.h"
#include "broker/storage/waiters.h"

namespace runnel::storage {

log_cleaner::log_cleaner(cleaner_config cfg)
    : cfg_(cfg), work_(asio::make_work_guard(io_)), map_(cfg.dedupe_buffer_bytes) {
  thread_ = std::thread([this] { io_.run(); });
  logger().info("log cleaner started: offset map of {} keys ({} bytes), backoff {} ms", map_.capacity(),
                cfg_.dedupe_buffer_bytes, cfg_.backoff.count());
}

log_cleaner::~log_cleaner() { stop(); }

void log_cleaner::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_.exchange(true)) return;
    // Wake every run() loop on its own shard; a loop that already left
    // took its timer out of the map (same thread), so none is touched twice.
    for (const auto& [id, timer] : timers_) {
      asio::post(timer->get_executor(), [this, id = id] {
        std::lock_guard l(mu_);
        if (auto it = timers_.find(id); it != timers_.end()) it->second->cancel();
      });
    }
  }
  work_.reset();
  if (thread_.joinable()) thread_.join();  // runs (cancelled) every job already posted
  logger().info("log cleaner stopped");
}

asio::awaitable<std::optional<std::expected<clean_output, std::error_code>>> log_cleaner::clean(log& l,
                                                                                               timestamp_ms now) {
  auto job = l.plan_clean(now);
  if (!job) co_return std::nullopt;
  auto shard = co_await asio::this_coro::executor;
  std::expected<clean_output, std::error_code> result = std::unexpected(make_error_code(std::errc::operation_canceled));
  (void)co_await suspend_until([&](completion done) {
    std::lock_guard lock(mu_);
    if (stopping_) {
      done({});
      return;
    }
    // The shard's io_context keeps running while its coroutine waits here.
    asio::post(io_, [this, &job, &result, done = std::move(done), work = asio::make_work_guard(shard)]() mutable {
      result = run_clean_pass(*job, map_, [this, &job] { return stopping_.load() || job->cancel->load(); });
      done({});  // posts the resumption to the shard
      work.reset();
    });
  });
  // After finish_clean `l` may be gone (a close was waiting for it): not touched again.
  auto ec = co_await l.finish_clean(*job, result);
  if (ec) co_return std::unexpected(ec);
  co_return result;
}

asio::awaitable<void> log_cleaner::run(log_manager& logs) {
  constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mu_);
    if (stopping_) co_return;
    id = next_timer_++;
    timers_[id] = &timer;
  }
  while (!stopping_) {
    timer.expires_after(cfg_.backoff);
    (void)co_await timer.async_wait(use_tuple);  // cancelled by stop()
    if (stopping_) break;
    for (const auto& tp : logs.partitions()) {
      if (stopping_) break;
      log* l = logs.get(tp);  // looked up again: a log may go while we wait
      if (l == nullptr || !l->config().cleanup_compact) continue;
      const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch());
      (void)co_await clean(*l, timestamp_ms(now.count()));
    }
  }
  std::lock_guard lock(mu_);
  timers_.erase(id);
}

}  // namespace runnel::storage
