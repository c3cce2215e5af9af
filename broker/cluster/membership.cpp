#include "broker/cluster/membership.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace runnel::cluster {

namespace {

spdlog::logger& logger() {
  static auto l = [] {
    auto existing = spdlog::get("cluster");
    return existing ? existing : spdlog::stderr_color_mt("cluster");
  }();
  return *l;
}

}  // namespace

membership::membership(asio::any_io_executor ex, std::string connect, std::chrono::milliseconds timeout,
                       broker_registration me)
    : ex_(std::move(ex)), connect_(std::move(connect)), timeout_(timeout), me_(std::move(me)) {}

membership::~membership() {
  *alive_ = false;
  brokers_watch_.reset();
  election_.reset();
  retired_elections_.clear();
  session_.reset();  // closes the session: our ephemeral nodes go at once
  retired_sessions_.clear();
}

asio::awaitable<std::expected<std::unique_ptr<membership>, std::string>> membership::start(
    asio::any_io_executor ex, std::string connect, std::chrono::milliseconds session_timeout, broker_registration me) {
  std::unique_ptr<membership> m(new membership(ex, std::move(connect), session_timeout, std::move(me)));
  if (auto why = co_await m->join(); !why.empty()) co_return std::unexpected(why);
  co_return m;
}

asio::awaitable<std::string> membership::join() {
  brokers_watch_.reset();
  if (election_) retired_elections_.push_back(std::move(election_));
  if (session_) retired_sessions_.push_back(std::move(session_));
  // A chroot must exist before a session can use it.
  const auto slash = connect_.find('/');
  if (slash != std::string::npos && slash + 1 < connect_.size()) {
    zk::session root(ex_, connect_.substr(0, slash), timeout_);
    if (auto ec = co_await root.wait_connected(timeout_ * 3)) co_return "zookeeper " + connect_ + ": " + ec.message();
    if (auto ec = co_await root.ensure_path(connect_.substr(slash))) co_return "zookeeper chroot: " + ec.message();
  }
  std::weak_ptr<bool> alive = alive_;
  session_ = std::make_unique<zk::session>(ex_, connect_, timeout_, [this, alive](zk::session_state s) {
    if (alive.expired() || !*alive.lock() || s != zk::session_state::expired) return;
    logger().warn("ZooKeeper session expired: registering again and re-running the election");
    asio::co_spawn(
        ex_,
        [this, alive]() -> asio::awaitable<void> {
          if (alive.expired() || !*alive.lock()) co_return;
          if (auto why = co_await join(); !why.empty()) logger().error("rejoining the cluster failed: {}", why);
        },
        asio::detached);
  });
  if (auto ec = co_await session_->wait_connected(timeout_ * 3)) co_return "zookeeper " + connect_ + ": " + ec.message();
  if (auto ec = co_await register_broker(*session_, me_, timeout_ + std::chrono::seconds(1))) {
    co_return "broker.id " + std::to_string(me_.id) + ": cannot register (" + ec.message() + ")";
  }
  election_ = std::make_unique<controller_election>(*session_, me_.id, [this](std::int64_t epoch) {
    logger().info("broker {} is the controller (epoch {})", me_.id, epoch);
  });
  election_->start();
  brokers_watch_ = session_->watch_children("/brokers/ids", [this, alive](std::optional<std::vector<std::string>>) {
    if (alive.expired() || !*alive.lock()) return;
    asio::co_spawn(
        ex_,
        [this, alive]() -> asio::awaitable<void> {
          if (alive.expired() || !*alive.lock()) co_return;
          co_await refresh_brokers();
        },
        asio::detached);
  });
  co_await refresh_brokers();
  logger().info("broker {} registered in {}", me_.id, connect_);
  co_return std::string();
}

asio::awaitable<void> membership::refresh_brokers() {
  if (!session_) co_return;
  const std::shared_ptr<bool> alive = alive_;
  auto live = co_await live_brokers(*session_);
  if (!*alive) co_return;
  if (live) live_ = std::move(*live);
}

membership::view membership::snapshot() const {
  return view{live_, election_ ? election_->controller_id() : -1};
}

}  // namespace runnel::cluster
