#include "broker/cluster/controller.h"

#include <algorithm>
#include <charconv>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

namespace runnel::cluster {

namespace {

constexpr const char* ids_path = "/brokers/ids";
constexpr const char* controller_path = "/controller";
constexpr const char* epoch_path = "/controller_epoch";

std::optional<std::int64_t> parse_i64(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

std::string encode_registration(const broker_registration& r) {
  std::string s = r.host + ":" + std::to_string(r.port);
  if (!r.rack.empty()) s += " " + r.rack;
  return s;
}

std::optional<broker_registration> decode_registration(std::int32_t id, const std::string& data) {
  const auto space = data.find(' ');
  const std::string addr = data.substr(0, space);
  const auto colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  auto port = parse_i64(std::string_view(addr).substr(colon + 1));
  if (!port || *port <= 0 || *port > 65535) return std::nullopt;
  broker_registration r;
  r.id = id;
  r.host = addr.substr(0, colon);
  r.port = static_cast<std::uint16_t>(*port);
  if (space != std::string::npos) r.rack = data.substr(space + 1);
  return r;
}

asio::awaitable<std::error_code> register_broker(zk::session& zk, const broker_registration& me,
                                                 std::chrono::milliseconds patience) {
  if (auto ec = co_await zk.ensure_path(ids_path)) co_return ec;
  const std::string path = std::string(ids_path) + "/" + std::to_string(me.id);
  const std::string data = encode_registration(me);
  asio::steady_timer t(co_await asio::this_coro::executor);
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (true) {
    auto r = co_await zk.create(path, data, zk::create_mode::ephemeral);
    if (r) co_return std::error_code{};
    // A node of our previous session lingers until that session expires;
    // another live broker with our id never goes away: give up at the deadline.
    if (r.error() != zk::make_error_code(zk::node_exists) || std::chrono::steady_clock::now() >= deadline) {
      co_return r.error();
    }
    t.expires_after(std::chrono::milliseconds(200));
    co_await t.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<std::expected<std::vector<broker_registration>, std::error_code>> live_brokers(zk::session& zk) {
  auto ids = co_await zk.children(ids_path);
  if (!ids) co_return std::unexpected(ids.error());
  std::vector<broker_registration> out;
  for (const auto& name : *ids) {
    auto id = parse_i64(name);
    if (!id) continue;
    auto n = co_await zk.get(std::string(ids_path) + "/" + name);
    if (!n) continue;  // went away meanwhile
    if (auto r = decode_registration(static_cast<std::int32_t>(*id), n->data)) out.push_back(std::move(*r));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  co_return out;
}

controller_election::controller_election(zk::session& zk, std::int32_t broker_id, elected_fn on_elected)
    : zk_(zk), id_(broker_id), on_elected_(std::move(on_elected)) {}

void controller_election::start() {
  // The watch follows /controller: who leads, and when to try again.
  watch_ = zk_.watch_data(controller_path, [this](std::optional<zk::node> n) {
    if (n) {
      auto id = parse_i64(n->data);
      controller_id_ = id ? static_cast<std::int32_t>(*id) : -1;
      if (controller_id_ != id_) epoch_.reset();  // someone else leads now
      return;
    }
    controller_id_ = -1;
    epoch_.reset();
    if (!campaigning_) {
      campaigning_ = true;
      // co_spawn starts the coroutine later (posted): by then this election
      // (and its session) may be gone, so look before touching them.
      asio::co_spawn(
          zk_.executor(),
          [this, alive = alive_]() -> asio::awaitable<void> {
            if (*alive) co_await campaign();
          },
          asio::detached);
    }
  });
}

asio::awaitable<void> controller_election::campaign() {
  const std::shared_ptr<bool> alive = alive_;  // in the frame: checked after every wait
  auto created = co_await zk_.create(controller_path, std::to_string(id_), zk::create_mode::ephemeral);
  if (!*alive) co_return;
  campaigning_ = false;
  if (!created) co_return;  // someone else won (node_exists) or ZooKeeper is away: the watch retries
  controller_id_ = id_;
  // Bump the epoch by compare-and-set; create it on a fresh cluster.
  while (true) {
    auto cur = co_await zk_.get(epoch_path);
    if (!*alive) co_return;
    if (!cur && cur.error() == zk::make_error_code(zk::no_node)) {
      auto c = co_await zk_.create(epoch_path, "1");
      if (!*alive) co_return;
      if (c) {
        epoch_ = 1;
        epoch_version_ = 0;
        break;
      }
      continue;  // raced with another creator: read again
    }
    if (!cur) co_return;
    const std::int64_t next = parse_i64(cur->data).value_or(0) + 1;
    auto st = co_await zk_.set(epoch_path, std::to_string(next), cur->stat.version);
    if (!*alive) co_return;
    if (st) {
      epoch_ = next;
      epoch_version_ = st->version;
      break;
    }
    if (st.error() != zk::make_error_code(zk::bad_version)) co_return;
  }
  if (on_elected_) on_elected_(*epoch_);
}

asio::awaitable<std::error_code> controller_election::fenced_multi(std::vector<zk::op> ops) {
  if (!epoch_) co_return zk::make_error_code(zk::bad_version);
  ops.insert(ops.begin(), zk::op{zk::op::kind::check, epoch_path, "", zk::create_mode::persistent, epoch_version_});
  co_return co_await zk_.multi(ops);
}

}  // namespace runnel::cluster
