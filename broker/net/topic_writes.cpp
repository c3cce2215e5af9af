#include "broker/net/topic_writes.h"

#include <memory>
#include <optional>
#include <utility>

#include <asio/experimental/as_tuple.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "broker/net/context.h"

namespace runnel::net {

namespace {

// Takes the store's turn (shard 0): a change waits for the one before it
// to be written, so each is prepared from the state the previous one left.
// Released when the returned guard goes; the next waiter is handed the
// turn directly.
class store_turn {
 public:
  explicit store_turn(topic_store_queue& q) : q_(&q) {}
  store_turn(store_turn&& o) noexcept : q_(std::exchange(o.q_, nullptr)) {}
  store_turn(const store_turn&) = delete;             // one turn, one owner
  store_turn& operator=(const store_turn&) = delete;  // one turn, one owner
  store_turn& operator=(store_turn&&) = delete;       // one turn, one owner
  ~store_turn() {
    if (q_ == nullptr) return;
    if (q_->waiting.empty()) {
      q_->busy = false;
      return;
    }
    auto next = std::move(q_->waiting.front());
    q_->waiting.pop_front();
    next->cancel();  // its owner wakes holding the turn (busy stays set)
  }

 private:
  topic_store_queue* q_;
};

asio::awaitable<store_turn> take_turn(topic_store_queue& q) {
  if (q.busy) {
    auto ex = co_await asio::this_coro::executor;
    auto t = std::make_shared<asio::steady_timer>(ex, asio::steady_timer::time_point::max());
    q.waiting.push_back(t);
    co_await t->async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  } else {
    q.busy = true;
  }
  co_return store_turn(q);
}

// Writes a prepared change through shard 0's ring and commits it.
asio::awaitable<std::expected<void, meta::error>> write_change(broker_state& b, std::optional<meta::topic_change> c) {
  if (!c) co_return std::expected<void, meta::error>{};
  const auto bytes = std::as_bytes(std::span(c->text.data(), c->text.size()));
  if (auto ec = co_await b.controller().ring().replace_file(b.store->file(), bytes)) {
    co_return std::unexpected(b.store->write_failed(ec));
  }
  b.store->commit(std::move(*c));
  co_return std::expected<void, meta::error>{};
}

}  // namespace

asio::awaitable<std::expected<void, meta::error>> create_topic_locally(broker_state& b, std::string name,
                                                                       std::int32_t partitions,
                                                                       std::int32_t replication,
                                                                       meta::config_overrides overrides,
                                                                       bool validate_only) {
  auto turn = co_await take_turn(b.store_queue);
  auto c = b.store->prepare_create(name, partitions, replication, overrides, validate_only);
  if (!c) co_return std::unexpected(std::move(c.error()));
  co_return co_await write_change(b, std::move(*c));
}

asio::awaitable<std::expected<std::int32_t, meta::error>> delete_topic_locally(broker_state& b, std::string name) {
  auto turn = co_await take_turn(b.store_queue);
  auto c = b.store->prepare_remove(name);
  if (!c) co_return std::unexpected(std::move(c.error()));
  const std::int32_t partitions = b.store->snapshot()->at(name).partitions;
  auto r = co_await write_change(b, std::move(*c));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return partitions;
}

asio::awaitable<std::expected<void, meta::error>> alter_topic_locally(broker_state& b, std::string name,
                                                                      meta::config_overrides changes,
                                                                      bool validate_only) {
  auto turn = co_await take_turn(b.store_queue);
  auto c = b.store->prepare_alter(name, changes, validate_only);
  if (!c) co_return std::unexpected(std::move(c.error()));
  co_return co_await write_change(b, std::move(*c));
}

}  // namespace runnel::net
