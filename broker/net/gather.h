#pragma once
// gather: runs tasks on their owning shards concurrently and resumes the
// caller, on its own executor, with every result in the order given. A
// request touching partitions of several shards is split this way.

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "broker/net/shard.h"

namespace runnel::net {

template <class T>
struct shard_task {
  shard* where;
  asio::awaitable<T> task;
};

template <class T>
asio::awaitable<std::vector<T>> gather(std::vector<shard_task<T>> tasks) {
  struct state {
    explicit state(asio::any_io_executor ex, std::size_t n) : done(std::move(ex)), results(n), remaining(n) {}
    asio::steady_timer done;  // cancelled when the last result arrives
    std::vector<std::optional<T>> results;
    std::size_t remaining;
    std::exception_ptr error;
  };
  auto ex = co_await asio::this_coro::executor;
  auto st = std::make_shared<state>(ex, tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    asio::co_spawn(tasks[i].where->io(), std::move(tasks[i].task), [st, i, ex](std::exception_ptr e, T v) mutable {
      // Results are stored on the caller's executor: no locking.
      asio::post(ex, [st, i, e, v = std::move(v)]() mutable {
        if (e) {
          st->error = e;
        } else {
          st->results[i] = std::move(v);
        }
        if (--st->remaining == 0) st->done.cancel();
      });
    });
  }
  if (st->remaining > 0) {
    st->done.expires_at(asio::steady_timer::time_point::max());
    co_await st->done.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  }
  if (st->error) std::rethrow_exception(st->error);
  std::vector<T> out;
  out.reserve(st->results.size());
  for (auto& r : st->results) out.push_back(std::move(*r));
  co_return out;
}

}  // namespace runnel::net
