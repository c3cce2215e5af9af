#pragma once
// An in-memory __consumer_offsets partition for coordinator tests: the
// coordinator's hooks.append stores each batch (in call order, as a leader
// assigns offsets), can be told to fail, and can hold completions until the
// test releases them. Everything runs on one io_context, polled by the test.

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include "broker/group/coordinator.h"
#include "schemas/batch.h"

namespace runnel::group::testing {

class fake_log {
 public:
  explicit fake_log(asio::io_context& io) : io_(io) {}

  // Appends fail (with io_error) while set.
  bool fail = false;
  // New appends are stored but answered only once released while set.
  bool hold = false;
  std::vector<std::vector<std::byte>> batches;  // stored, in append order
  std::vector<error> failures;                   // hooks.failed calls
  topic_counts topics{{"t", 6}};

  coordinator::hooks hooks() {
    coordinator::hooks h;
    h.append = [this](std::vector<std::byte> batch) { return do_append(std::move(batch)); };
    h.topics = [this] { return topics; };
    h.failed = [this](const error& e) { failures.push_back(e); };
    return h;
  }

  // Completes held append number `i` (0: the first held).
  void release(std::size_t i) { held_.at(i)->cancel(); }
  [[nodiscard]] std::size_t held() const { return held_.size(); }

  // Every record of the stored batches, in log order, into `c` (replay).
  void replay_into(coordinator& c) const {
    for (const auto& b : batches) {
      auto view = schemas::batch_view::open(b, schemas::verify_limits{});
      if (!view) throw std::runtime_error("the coordinator wrote a batch that does not verify");
      for (std::size_t i = 0; i < view->record_count(); ++i) {
        auto r = view->record(i);
        if (!r.key) throw std::runtime_error("a record without a key");
        c.replay(*r.key, r.value);
      }
    }
  }

  static std::error_code failure_code() { return std::make_error_code(std::errc::io_error); }

 private:
  asio::awaitable<std::optional<error>> do_append(std::vector<std::byte> batch) {
    if (fail) co_return error(failure_code(), "disk gone");
    batches.push_back(std::move(batch));
    if (hold) {
      auto t = std::make_shared<asio::steady_timer>(io_, asio::steady_timer::time_point::max());
      held_.push_back(t);
      co_await t->async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }
    co_return std::nullopt;
  }

  asio::io_context& io_;
  std::vector<std::shared_ptr<asio::steady_timer>> held_;
};

// A coroutine started on `io`; done() once it returned.
template <class T>
class started {
 public:
  started(asio::io_context& io, asio::awaitable<T> aw) : out_(std::make_shared<std::optional<T>>()) {
    auto out = out_;
    asio::co_spawn(io, std::move(aw), [out](std::exception_ptr e, T v) {
      if (e) std::rethrow_exception(e);
      out->emplace(std::move(v));
    });
  }
  [[nodiscard]] bool done() const { return out_->has_value(); }
  T& get() { return out_->value(); }

 private:
  std::shared_ptr<std::optional<T>> out_;
};

// Runs every handler that is ready (held appends stay pending).
inline void settle(asio::io_context& io) {
  io.restart();
  io.poll();
}

}  // namespace runnel::group::testing
