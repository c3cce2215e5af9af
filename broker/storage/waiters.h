#pragma once
// Single-threaded async waiting for the storage subsystem.
//
// suspend_until(register): suspends the calling coroutine and hands
// `register` a completion; calling the completion (once, from the same
// io_context thread) resumes the coroutine with the error_code. Resumption
// is posted, never inline, so the caller of a completion is never re-entered.
//
// offset_waiters: coroutines waiting until a watermark (log end, durable
// offset) reaches their target. advance() completes every waiter at or
// below the new value; fail_all() completes all with an error.

#include <functional>
#include <map>
#include <system_error>
#include <utility>

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include "schemas/types.h"

namespace runnel::storage {

using completion = std::move_only_function<void(std::error_code)>;

template <class Register>
asio::awaitable<std::error_code> suspend_until(Register reg) {
  // as_tuple: the error_code comes back as a value, not as an exception.
  constexpr auto token = asio::experimental::as_tuple(asio::use_awaitable);
  auto [ec] = co_await asio::async_initiate<decltype(token), void(std::error_code)>(
      [&reg](auto handler) {
        auto ex = asio::get_associated_executor(handler);
        reg(completion([h = std::move(handler), ex](std::error_code e) mutable {
          asio::post(ex, [h = std::move(h), e]() mutable { h(e); });
        }));
      },
      token);
  co_return ec;
}

class offset_waiters {
 public:
  // `c` is called when advance(v) is called with v >= target (or fail_all).
  void add(offset target, completion c) { waiters_.emplace(target, std::move(c)); }
  void advance(offset value) {
    auto end = waiters_.upper_bound(value);
    for (auto it = waiters_.begin(); it != end;) {
      auto c = std::move(it->second);
      it = waiters_.erase(it);
      c({});
    }
  }
  void fail_all(std::error_code ec) {
    auto all = std::exchange(waiters_, {});
    for (auto& [_, c] : all) c(ec);
  }
  // Waiters for more than `value` wait for `value` instead (the offsets
  // above it were taken back: a write that failed on a full disk).
  void lower_to(offset value) {
    for (auto it = waiters_.upper_bound(value); it != waiters_.end();) {
      auto c = std::move(it->second);
      it = waiters_.erase(it);
      waiters_.emplace(value, std::move(c));
    }
  }
  [[nodiscard]] bool empty() const { return waiters_.empty(); }
  [[nodiscard]] offset lowest_target() const { return waiters_.begin()->first; }

 private:
  std::multimap<offset, completion> waiters_;
};

}  // namespace runnel::storage
