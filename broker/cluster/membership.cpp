#include "broker/cluster/membership.h"

#include "broker/cluster/logger.h"

#include <charconv>
#include <random>
#include <set>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace runnel::cluster {

spdlog::logger& logger() {
  static auto l = [] {
    auto existing = spdlog::get("cluster");
    return existing ? existing : spdlog::stderr_color_mt("cluster");
  }();
  return *l;
}

namespace {

// /cluster/id: read it, or make it when this is the cluster's first broker
// (a racing first broker's id wins; both then read the same one).
asio::awaitable<std::expected<std::string, std::error_code>> read_or_make_cluster_id(zk::session& zk) {
  if (auto ec = co_await zk.ensure_path("/cluster")) co_return std::unexpected(ec);
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto n = co_await zk.get("/cluster/id");
    if (n) co_return n->data;
    if (n.error() != zk::make_error_code(zk::no_node)) co_return std::unexpected(n.error());
    std::random_device rd;
    const std::string id = fmt::format("{:08x}{:08x}{:08x}{:08x}", rd(), rd(), rd(), rd());
    auto made = co_await zk.create("/cluster/id", id, zk::create_mode::persistent);
    if (made) co_return id;
    if (made.error() != zk::make_error_code(zk::node_exists)) co_return std::unexpected(made.error());
  }
  co_return std::unexpected(zk::make_error_code(zk::no_node));
}

}  // namespace

membership::membership(asio::any_io_executor ex, std::string connect, std::chrono::milliseconds timeout,
                       broker_registration me, hooks h)
    : ex_(std::move(ex)), connect_(std::move(connect)), timeout_(timeout), me_(std::move(me)), hooks_(std::move(h)) {}

membership::~membership() {
  *alive_ = false;
  brokers_watch_.reset();
  topics_.reset();
  retired_topic_watches_.clear();
  election_.reset();
  retired_elections_.clear();
  session_.reset();  // closes the session: our ephemeral nodes go at once
  retired_sessions_.clear();
}

asio::awaitable<std::expected<std::unique_ptr<membership>, error>> membership::start(
    asio::any_io_executor ex, std::string connect, std::chrono::milliseconds session_timeout, broker_registration me,
    hooks h) {
  std::unique_ptr<membership> m(new membership(ex, std::move(connect), session_timeout, std::move(me), std::move(h)));
  if (auto why = co_await m->join()) co_return std::unexpected(std::move(*why));
  co_return m;
}

asio::awaitable<std::optional<error>> membership::join() {
  // Built in locals and swapped in whole at the end: until then the old
  // session, election and topic view stay in place (an expired session's
  // operations fail cleanly), so nothing ever finds them missing.
  const std::shared_ptr<bool> alive = alive_;
  const error gone{errc::stopping, "broker stopping"};
  auto unavailable = [](const std::string& what, std::error_code ec) {
    return error{errc::zookeeper_unavailable, "zookeeper " + what + ": " + ec.message()};
  };
  auto failed = [](const std::string& what, std::error_code ec) {
    return error{errc::zookeeper_failed, "zookeeper " + what + ": " + ec.message()};
  };
  const auto slash = connect_.find('/');
  if (slash != std::string::npos && slash + 1 < connect_.size()) {
    // A chroot must exist before a session can use it.
    zk::session root(ex_, connect_.substr(0, slash), timeout_);
    auto ec = co_await root.wait_connected(timeout_ * 3);
    if (!*alive) co_return gone;
    if (ec) co_return unavailable(connect_, ec);
    ec = co_await root.ensure_path(connect_.substr(slash));
    if (!*alive) co_return gone;
    if (ec) co_return failed("chroot", ec);
  }
  std::weak_ptr<bool> weak = alive_;
  auto session = std::make_unique<zk::session>(ex_, connect_, timeout_, [this, weak](zk::session_state st) {
    if (weak.expired() || !*weak.lock() || st != zk::session_state::expired) return;
    logger().warn("ZooKeeper session expired: registering again and re-running the election");
    spawn_if_alive(&membership::rejoin);
  });
  auto ec = co_await session->wait_connected(timeout_ * 3);
  if (!*alive) co_return gone;
  if (ec) co_return unavailable(connect_, ec);
  auto cluster_id = co_await read_or_make_cluster_id(*session);
  if (!*alive) co_return gone;
  if (!cluster_id) co_return failed("/cluster/id", cluster_id.error());
  if (hooks_.check_cluster_id) {
    auto why = co_await hooks_.check_cluster_id(*cluster_id);
    if (!*alive) co_return gone;
    if (why) co_return std::move(*why);
  }
  ec = co_await register_broker(*session, me_, timeout_ + std::chrono::seconds(1));
  if (!*alive) co_return gone;
  if (ec) {
    co_return error{ec == zk::make_error_code(zk::node_exists) ? make_error_code(errc::broker_id_in_use)
                                                               : make_error_code(errc::zookeeper_failed),
                    "broker.id " + std::to_string(me_.id) + ": cannot register (" + ec.message() + ")"};
  }
  ec = co_await session->ensure_path("/topics");
  if (!*alive) co_return gone;
  if (ec) co_return failed("/topics", ec);

  brokers_watch_.reset();
  if (topics_) retired_topic_watches_.push_back(std::move(topics_));
  if (election_) retired_elections_.push_back(std::move(election_));
  if (session_) retired_sessions_.push_back(std::move(session_));
  session_ = std::move(session);
  topics_ = std::make_unique<topic_watch>(*session_, [this](const topics_view& v, const std::set<std::string>& names) {
    // Only complete views leave: a partial one would look like deleted topics.
    published_ = v;
    published_names_ = names;
    topics_complete_ = true;
    if (hooks_.topics_changed) hooks_.topics_changed(published_);
    reconcile();
  });
  topics_->start();
  election_ = std::make_unique<controller_election>(*session_, me_.id, [this](std::int64_t epoch) {
    logger().info("broker {} is the controller (epoch {})", me_.id, epoch);
    reconcile();
  });
  election_->start();
  brokers_watch_ = session_->watch_children("/brokers/ids", [this, weak](std::optional<std::vector<std::string>>) {
    if (weak.expired() || !*weak.lock()) return;
    asio::co_spawn(
        ex_,
        [this, weak]() -> asio::awaitable<void> {
          if (weak.expired() || !*weak.lock()) co_return;
          co_await refresh_brokers();
        },
        asio::detached);
  });
  co_await refresh_brokers();
  if (!*alive) co_return gone;
  logger().info("broker {} registered in {}", me_.id, connect_);
  co_return std::nullopt;
}

asio::awaitable<void> membership::rejoin() {
  const std::shared_ptr<bool> alive = alive_;
  if (joining_) co_return;
  joining_ = true;
  asio::steady_timer t(ex_);
  while (*alive) {
    auto why = co_await join();
    if (!*alive) co_return;
    if (!why) break;
    logger().error("rejoining the cluster failed: {}; trying again in 1 s", why->message);
    t.expires_after(std::chrono::seconds(1));
    co_await t.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  }
  joining_ = false;
}

asio::awaitable<void> membership::refresh_brokers() {
  if (!session_) co_return;
  const std::shared_ptr<bool> alive = alive_;
  auto live = co_await live_brokers(*session_);
  if (!*alive) co_return;
  if (live) live_ = std::move(*live);
  if (hooks_.topics_changed && topics_ && topics_->complete()) hooks_.topics_changed(published_);  // brokers too
  reconcile();
}

const topics_view& membership::topics() const { return published_; }

void membership::spawn_if_alive(asio::awaitable<void> (membership::*fn)()) {
  // co_spawn starts the coroutine later (posted): the membership may be
  // destroyed by then (a broker stopping), so look before touching it.
  asio::co_spawn(
      ex_,
      [this, fn, alive = alive_]() -> asio::awaitable<void> {
        if (*alive) co_await (this->*fn)();
      },
      asio::detached);
}

void membership::reconcile() {
  if (!election_ || !election_->is_controller() || !topics_) return;
  if (reconciling_) {
    reconcile_again_ = true;
    return;
  }
  reconciling_ = true;
  spawn_if_alive(&membership::reconcile_loop);
}

asio::awaitable<void> membership::reconcile_loop() {
  const std::shared_ptr<bool> alive = alive_;
  do {
    reconcile_again_ = false;
    if (!election_ || !election_->is_controller() || !topics_ || !topics_->complete()) break;
    std::set<std::int32_t> live;
    for (const auto& b : live_) live.insert(b.id);
    auto changes = plan_elections(topics_->view(), live, hooks_.unclean_allowed);
    for (const auto& c : changes) {
      // A session replaced meanwhile takes the election with it.
      if (!election_ || !election_->is_controller()) break;
      controller_election* election = election_.get();
      std::vector<zk::op> ops{zk::op{zk::op::kind::set, state_path(c.topic, c.partition), encode_state(c.next),
                                     zk::create_mode::persistent, c.version}};
      auto ec = co_await election->fenced_multi(std::move(ops));
      if (!*alive) co_return;
      if (ec) {
        // A newer state (a leader's ISR change) or a deposed controller:
        // the watches bring the news and the next pass decides again.
        logger().info("[{}/{}] state change not written ({}): {}", c.topic, c.partition, ec.message(), c.why);
      } else {
        logger().info("[{}/{}] {} -> {}", c.topic, c.partition, c.why, encode_state(c.next));
      }
    }
  } while (reconcile_again_);
  reconciling_ = false;
}

asio::awaitable<std::expected<void, meta::error>> membership::create_topic(const std::string& name,
                                                                           std::int32_t partitions,
                                                                           std::int32_t replication_factor,
                                                                           const meta::config_overrides& config) {
  const std::shared_ptr<bool> alive = alive_;
  auto fail = [](meta::errc e, std::string msg) { return std::unexpected(meta::error{e, std::move(msg)}); };
  auto live = co_await live_brokers(*session_);
  if (!*alive) co_return fail(meta::errc::storage_failed, "broker shutting down");
  if (!live) co_return fail(meta::errc::storage_failed, "zookeeper: " + live.error().message());
  auto replicas = assign_replicas(*live, partitions, replication_factor,
                                  static_cast<std::uint32_t>(std::hash<std::string>{}(name)));
  if (!replicas) co_return fail(meta::errc::invalid_replication, replicas.error().message);
  std::vector<zk::op> ops;
  auto create = [&](std::string path, std::string data) {
    ops.push_back(zk::op{zk::op::kind::create, std::move(path), std::move(data), zk::create_mode::persistent, -1});
  };
  create(topic_path(name), encode_topic(topic_assignment{*replicas, config}));
  create(partitions_path(name), "");
  for (std::int32_t p = 0; p < partitions; ++p) {
    const auto& r = (*replicas)[static_cast<std::size_t>(p)];
    create(partition_path(name, p), "");
    create(state_path(name, p), encode_state(leader_state{r.front(), 0, r}));
  }
  auto ec = co_await session_->multi(ops);
  if (!*alive) co_return fail(meta::errc::storage_failed, "broker shutting down");
  if (ec == zk::make_error_code(zk::node_exists)) co_return fail(meta::errc::topic_exists, "topic " + name + " already exists");
  if (ec) co_return fail(meta::errc::storage_failed, "zookeeper: " + ec.message());
  co_return std::expected<void, meta::error>{};
}

asio::awaitable<std::expected<void, meta::error>> membership::delete_topic(const std::string& name) {
  const std::shared_ptr<bool> alive = alive_;
  auto fail = [](meta::errc e, std::string msg) { return std::unexpected(meta::error{e, std::move(msg)}); };
  auto node = co_await session_->get(topic_path(name));
  if (!*alive) co_return fail(meta::errc::storage_failed, "broker shutting down");
  if (!node && node.error() == zk::make_error_code(zk::no_node)) co_return fail(meta::errc::unknown_topic, "unknown topic " + name);
  if (!node) co_return fail(meta::errc::storage_failed, "zookeeper: " + node.error().message());
  auto parts = co_await session_->children(partitions_path(name));
  if (!*alive) co_return fail(meta::errc::storage_failed, "broker shutting down");
  std::vector<zk::op> ops;
  auto remove = [&](std::string path) {
    ops.push_back(zk::op{zk::op::kind::remove, std::move(path), "", zk::create_mode::persistent, -1});
  };
  if (parts) {
    for (const auto& p : *parts) {
      remove(partitions_path(name) + "/" + p + "/state");
      remove(partitions_path(name) + "/" + p);
    }
    remove(partitions_path(name));
  }
  ops.push_back(zk::op{zk::op::kind::remove, topic_path(name), "", zk::create_mode::persistent, node->stat.version});
  auto ec = co_await session_->multi(ops);
  if (!*alive) co_return fail(meta::errc::storage_failed, "broker shutting down");
  if (ec == zk::make_error_code(zk::no_node)) co_return fail(meta::errc::unknown_topic, "unknown topic " + name);
  if (ec) co_return fail(meta::errc::storage_failed, "zookeeper: " + ec.message());
  co_return std::expected<void, meta::error>{};
}

asio::awaitable<std::expected<void, meta::error>> membership::alter_topic(
    const std::string& name, const std::function<std::expected<void, meta::error>(meta::config_overrides&)>& edit) {
  const std::shared_ptr<bool> alive = alive_;
  auto fail = [](meta::errc e, std::string msg) { return std::unexpected(meta::error{e, std::move(msg)}); };
  for (int attempt = 0; attempt < 10; ++attempt) {
    auto node = co_await session_->get(topic_path(name));
    if (!*alive) co_return fail(meta::errc::storage_failed, "broker shutting down");
    if (!node && node.error() == zk::make_error_code(zk::no_node)) co_return fail(meta::errc::unknown_topic, "unknown topic " + name);
    if (!node) co_return fail(meta::errc::storage_failed, "zookeeper: " + node.error().message());
    auto a = decode_topic(node->data);
    if (!a) co_return fail(meta::errc::storage_failed, topic_path(name) + " is malformed: " + a.error().message);
    if (auto r = edit(a->config); !r) co_return std::unexpected(r.error());
    auto st = co_await session_->set(topic_path(name), encode_topic(*a), node->stat.version);
    if (!*alive) co_return fail(meta::errc::storage_failed, "broker shutting down");
    if (st) co_return std::expected<void, meta::error>{};
    if (st.error() != zk::make_error_code(zk::bad_version)) co_return fail(meta::errc::storage_failed, "zookeeper: " + st.error().message());
  }
  co_return fail(meta::errc::storage_failed, "topic " + name + " keeps changing; try again");
}

asio::awaitable<std::error_code> membership::write_state(const state_change& c) {
  const std::shared_ptr<bool> alive = alive_;
  auto st = co_await session_->set(state_path(c.topic, c.partition), encode_state(c.next), c.version);
  if (!*alive) co_return zk::make_error_code(zk::session_expired);
  if (!st) co_return st.error();
  logger().info("[{}/{}] {} -> {}", c.topic, c.partition, c.why, encode_state(c.next));
  co_return std::error_code{};
}

asio::awaitable<std::size_t> membership::hand_over_leadership() {
  const std::shared_ptr<bool> alive = alive_;
  std::set<std::int32_t> live;
  for (const auto& b : live_) live.insert(b.id);
  std::size_t moved = 0;
  for (const auto& c : plan_handover(topics(), me_.id, live)) {
    auto ec = co_await write_state(c);
    if (!*alive) co_return moved;
    if (ec) {
      logger().warn("[{}/{}] leadership not handed over: {}", c.topic, c.partition, ec.message());
    } else {
      ++moved;
    }
  }
  co_return moved;
}

membership::view membership::snapshot() const {
  return view{live_, election_ ? election_->controller_id() : -1};
}

asio::awaitable<std::expected<std::int64_t, std::error_code>> membership::reserve_producer_ids(std::int64_t count) {
  const std::string path = "/producer_ids";
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto n = co_await session_->get(path);
    if (!n && n.error() == zk::make_error_code(zk::no_node)) {
      auto c = co_await session_->create(path, std::to_string(count));
      if (c) co_return std::int64_t{0};
      if (c.error() == zk::make_error_code(zk::node_exists)) continue;  // another broker made it first
      co_return std::unexpected(c.error());
    }
    if (!n) co_return std::unexpected(n.error());
    std::int64_t first = 0;
    auto [ptr, ec] = std::from_chars(n->data.data(), n->data.data() + n->data.size(), first);
    if (ec != std::errc{} || ptr != n->data.data() + n->data.size() || first < 0) {
      co_return std::unexpected(std::make_error_code(std::errc::bad_message));
    }
    auto s = co_await session_->set(path, std::to_string(first + count), n->stat.version);
    if (s) co_return first;
    if (s.error() != zk::make_error_code(zk::bad_version)) co_return std::unexpected(s.error());
  }
  co_return std::unexpected(std::make_error_code(std::errc::resource_unavailable_try_again));
}

}  // namespace runnel::cluster
