#include "broker/net/server.h"

#include <sys/statvfs.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_future.hpp>
#include <fmt/format.h>

#include "broker/net/connection.h"
#include "broker/net/groups.h"
#include "broker/net/share_partitions.h"
#include "broker/meta/topic_config.h"
#include "broker/net/logger.h"
#include "broker/net/replication.h"
#include "broker/storage/cleaner.h"
#include "broker/storage/file.h"
#include "broker/storage/logger.h"

namespace runnel::net {

namespace {
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// Whether ZooKeeper still names this broker leader of a partition that has
// another live ISR member (what a controlled shutdown moves away).
bool still_leading(broker_state& st) {
  std::set<std::int32_t> live;
  for (const auto& b : st.cluster->snapshot().brokers) live.insert(b.id);
  return !cluster::plan_handover(st.cluster->topics(), st.cfg.broker_id, live).empty();
}

// The data directory remembers the cluster and broker id it belongs to
// (`cluster.id`: "<cluster id> <broker id>", written on its first start in
// a cluster). Another cluster or broker id refuses the start: pointed at
// the wrong ZooKeeper (or an empty chroot), or reused under another id, the
// broker would otherwise take its logs for strays. Stray logs are removed
// only when the file was there and matched at this process's start (so from
// the second start on); rejoins after a session expiry only compare.
// Runs on shard 0; the file is written through its io_uring ring (no
// fsync on the shard thread).
asio::awaitable<std::optional<cluster::error>> check_cluster_id(broker_state& st, std::string id,
                                                                std::shared_ptr<bool> checked_before) {
  auto refuse = [](std::string why) { return cluster::error{cluster::errc::wrong_cluster, std::move(why)}; };
  const bool first_check = !*checked_before;
  *checked_before = true;
  const auto file = st.cfg.data_dir / "cluster.id";
  const std::string expected = fmt::format("{} {}", id, st.cfg.broker_id);
  std::error_code ec;
  const auto status = std::filesystem::status(file, ec);
  if (status.type() == std::filesystem::file_type::not_found) {
    if (!first_check) co_return refuse(fmt::format("{} disappeared while the broker ran", file.string()));
    const std::string text = expected + "\n";
    const auto bytes = std::as_bytes(std::span(text.data(), text.size()));
    if (auto wec = co_await st.controller().ring().replace_file(file, bytes)) {
      co_return cluster::error{wec, fmt::format("{}: {}", file.string(), wec.message())};
    }
    logger().info("data directory joined cluster {} as broker {} (logs not held in ZooKeeper are kept this time)", id,
                  st.cfg.broker_id);
    co_return std::nullopt;
  }
  std::ifstream in(file);
  std::string mine;
  if (ec || !in || !std::getline(in, mine) || mine.empty()) {
    co_return refuse(fmt::format("{}: cannot read it{}{}", file.string(), ec ? ": " : "", ec ? ec.message() : ""));
  }
  if (mine != expected) {
    co_return refuse(fmt::format("{} belongs to cluster and broker '{}', but ZooKeeper {} holds cluster {} and this is "
                              "broker {}: use that cluster's --zookeeper and broker id, or an empty --data-dir",
                              st.cfg.data_dir.string(), mine, st.cfg.zookeeper, id, st.cfg.broker_id));
  }
  if (first_check) st.remove_stray_logs = true;
  co_return std::nullopt;
}
}  // namespace

struct server::impl {
  broker_state state;
  std::unique_ptr<asio::ip::tcp::acceptor> acceptor;  // on shard 0
  std::uint16_t port = 0;
  // Per shard, touched on that shard's thread only.
  std::vector<std::set<std::shared_ptr<connection>>> connections;
  std::vector<std::unique_ptr<asio::steady_timer>> retention_timers;
  std::unique_ptr<storage::log_cleaner> cleaner;  // log compaction: its thread, a loop per shard
  bool stopped = false;
  std::chrono::steady_clock::time_point last_refusal_log;  // accept loop (shard 0)

  // Runs `task` on shard `s` and blocks the calling (non-shard) thread.
  template <class T>
  T block_on(shard& s, asio::awaitable<T> task) {
    return asio::co_spawn(s.io(), std::move(task), asio::use_future).get();
  }

  asio::awaitable<void> accept_loop() {
    std::size_t next = 0;
    while (true) {
      shard& target = *state.shards[next++ % state.shards.size()];
      auto [ec, socket] = co_await acceptor->async_accept(target.io(), use_tuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
        logger().warn("accept: {}", ec.message());
        // Out of descriptors (EMFILE/ENFILE) or memory: the pending
        // connection stays queued and would fail again at once, so wait.
        asio::steady_timer pause(acceptor->get_executor(), std::chrono::milliseconds(100));
        co_await pause.async_wait(use_tuple);
        continue;
      }
      std::error_code peer_ec;
      std::string ip = socket.remote_endpoint(peer_ec).address().to_string();
      if (peer_ec) continue;  // already gone
      if (const char* why = admit(ip)) {
        const auto refused = state.connections_refused.fetch_add(1, std::memory_order_relaxed) + 1;
        // One line per second at most: a flood must not flood the log.
        const auto now = std::chrono::steady_clock::now();
        if (now - last_refusal_log >= std::chrono::seconds(1)) {
          last_refusal_log = now;
          logger().warn("refused a connection from {}: {} ({} refused so far)", ip, why, refused);
        }
        socket.close(peer_ec);
        continue;
      }
      asio::co_spawn(target.io(), serve(target, std::move(socket), std::move(ip)), asio::detached);
    }
  }

  // flush.ms: every 100 ms each shard starts the background flushes due.
  asio::awaitable<void> flush_loop(shard& s) {
    asio::steady_timer t(s.io());
    while (!state.stopping.load()) {
      t.expires_after(std::chrono::milliseconds(100));
      auto [ec] = co_await t.async_wait(use_tuple);
      if (ec || state.stopping.load()) co_return;
      s.logs().flush_due(std::chrono::steady_clock::now());
    }
  }

  // storage.min.free.bytes: measures the data directory's free space every
  // 100 ms (shard 0); produce stops below the bound and resumes above it.
  asio::awaitable<void> disk_watch() {
    asio::steady_timer t(state.shards[0]->io());
    bool was_full = false;
    while (!state.stopping.load()) {
      struct statvfs v {};
      if (::statvfs(state.cfg.data_dir.c_str(), &v) == 0) {
        const auto free = static_cast<std::int64_t>(v.f_bavail) * static_cast<std::int64_t>(v.f_frsize);
        state.free_bytes.store(free, std::memory_order_relaxed);
        // Blocks reserved ahead of the tails would come out of the reserve.
        storage::set_preallocation_allowed(free >= 2 * state.min_free_bytes);
        if (const bool full = free < state.min_free_bytes; full != was_full) {
          was_full = full;
          if (full) {
            logger().warn("data directory {}: {} bytes free, below storage.min.free.bytes ({}): produce answers "
                          "STORAGE_FULL until space is back",
                          state.cfg.data_dir.string(), free, state.min_free_bytes);
          } else {
            logger().info("data directory {}: {} bytes free again: produce resumes", state.cfg.data_dir.string(), free);
          }
        }
      }
      t.expires_after(std::chrono::milliseconds(100));
      auto [ec] = co_await t.async_wait(use_tuple);
      if (ec) co_return;
    }
  }

  // Counts a new connection from `ip`, or says which limit refuses it.
  const char* admit(const std::string& ip) {
    if (state.connections_open.load(std::memory_order_relaxed) >= state.cfg.max_connections) return "max.connections reached";
    std::lock_guard g(state.per_ip_mu);
    auto& n = state.connections_per_ip[ip];
    if (n >= state.cfg.max_connections_per_ip) return "max.connections.per.ip reached";
    ++n;
    state.connections_open.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }

  void release(const std::string& ip) {
    state.connections_open.fetch_sub(1, std::memory_order_relaxed);
    std::lock_guard g(state.per_ip_mu);
    auto it = state.connections_per_ip.find(ip);
    if (it != state.connections_per_ip.end() && --it->second == 0) state.connections_per_ip.erase(it);
  }

  asio::awaitable<void> serve(shard& s, asio::ip::tcp::socket socket, std::string ip) {
    if (!state.stopping.load()) {
      auto c = std::make_shared<connection>(state, s, std::move(socket));
      connections[s.id()].insert(c);
      try {
        co_await c->run();
      } catch (const std::exception& e) {
        logger().error("shard {}: connection failed: {}", s.id(), e.what());
      }
      connections[s.id()].erase(c);
    }
    release(ip);
  }

  asio::awaitable<void> retention_loop(shard& s) {
    auto& timer = *retention_timers[s.id()];
    while (!state.stopping.load()) {
      timer.expires_after(state.cfg.retention_check_interval);
      auto [ec] = co_await timer.async_wait(use_tuple);
      if (ec || state.stopping.load()) co_return;
      const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch());
      co_await s.logs().apply_retention(timestamp_ms(now.count()));
    }
  }

  // Stops reading on every connection of `s` and waits until they are gone
  // (bounded: 10 s, then the sockets are closed under them).
  asio::awaitable<int> drain_connections(shard& s) {
    for (const auto& c : connections[s.id()]) c->drain();
    asio::steady_timer t(s.io());
    for (int i = 0; i < 1000 && !connections[s.id()].empty(); ++i) {
      t.expires_after(std::chrono::milliseconds(10));
      co_await t.async_wait(use_tuple);
    }
    for (const auto& c : connections[s.id()]) c->force_close();
    retention_timers[s.id()]->cancel();
    co_return 0;
  }

  asio::awaitable<int> close_logs(shard& s) {
    if (auto ec = co_await s.logs().close_all()) logger().error("shard {}: closing logs: {}", s.id(), ec.message());
    co_return 0;
  }
};

server::server(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

server::~server() { stop(); }

std::uint16_t server::port() const { return impl_->port; }

std::expected<std::unique_ptr<server>, error> server::start(broker_config cfg) {
  auto i = std::make_unique<impl>();
  auto& st = i->state;
  if (cfg.shards == 0) cfg.shards = std::max(1U, std::thread::hardware_concurrency());
  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  if (ec) return std::unexpected(error{ec, fmt::format("data.dir {}: {}", cfg.data_dir.string(), ec.message())});
  auto store = meta::topic_store::load(cfg.data_dir, cfg.topic_defaults);
  if (!store) return std::unexpected(error{store.error().code, std::move(store.error().message)});
  st.cfg = cfg;
  st.store.emplace(std::move(*store));
  st.min_free_bytes = cfg.storage_min_free_bytes;
  if (struct statvfs v {}; st.min_free_bytes < 0) {
    const std::int64_t volume = ::statvfs(cfg.data_dir.c_str(), &v) == 0
                                    ? static_cast<std::int64_t>(v.f_blocks) * static_cast<std::int64_t>(v.f_frsize)
                                    : 0;
    st.min_free_bytes = std::min<std::int64_t>(1LL << 30, volume / 20);
  }
  for (unsigned s = 0; s < cfg.shards; ++s) {
    st.shards.push_back(std::make_unique<shard>(s, cfg.shards, cfg.data_dir));
    st.shards.back()->set_topics(st.store->snapshot());  // before its thread starts
    st.shards.back()->set_groups(std::make_unique<group_coordinators>(st, *st.shards.back()));
    st.shards.back()->set_shares(std::make_unique<share_partitions>(st, *st.shards.back()));
    i->retention_timers.push_back(std::make_unique<asio::steady_timer>(st.shards.back()->io()));
  }
  i->connections.resize(cfg.shards);
  for (auto& s : st.shards) s->start();

  // Every shard opens its own partitions, all shards at once.
  std::vector<std::future<std::expected<std::size_t, std::error_code>>> opening;
  for (auto& s : st.shards) opening.push_back(asio::co_spawn(s->io(), s->logs().open_all(), asio::use_future));
  std::size_t opened = 0;
  for (std::size_t s = 0; s < opening.size(); ++s) {
    auto r = opening[s].get();
    if (!r) {
      i->stopped = true;
      for (auto& sh : st.shards) sh->stop();
      for (auto& sh : st.shards) sh->join();
      return std::unexpected(
          error{r.error(), fmt::format("{}: cannot open logs: {}", cfg.data_dir.string(), r.error().message())});
    }
    opened += *r;
    for (const auto& [tp, why] : st.shards[s]->logs().offline()) {
      logger().error("[{}] offline: {} (the partition answers STORAGE_ERROR)", tp, why.message());
    }
  }

  try {
    auto& io0 = st.shards[0]->io();
    asio::ip::tcp::endpoint ep(asio::ip::make_address(cfg.listen_host), cfg.listen_port);
    i->acceptor = std::make_unique<asio::ip::tcp::acceptor>(io0);
    i->acceptor->open(ep.protocol());
    i->acceptor->set_option(asio::socket_base::reuse_address(true));
    i->acceptor->bind(ep);
    i->acceptor->listen(asio::socket_base::max_listen_connections);
    i->port = i->acceptor->local_endpoint().port();
    st.cfg.listen_port = i->port;  // Metadata advertises the bound port
  } catch (const std::system_error& e) {
    auto self = std::unique_ptr<server>(new server(std::move(i)));
    self->stop();
    return std::unexpected(
        error{e.code(), fmt::format("listen {}:{}: {}", cfg.listen_host, cfg.listen_port, e.code().message())});
  }
  if (!cfg.zookeeper.empty()) {
    // Partition roles on every shard, then membership (registration,
    // controller election, topic watches) on shard 0.
    for (auto& s : st.shards) {
      s->set_replicas(std::make_unique<replica_manager>(st, *s));
      s->replicas()->start();
    }
    cluster::broker_registration me{cfg.broker_id, st.cfg.advertise_host(), st.cfg.advertise_port(), cfg.rack};
    cluster::membership::hooks hooks;
    hooks.topics_changed = [&st](const cluster::topics_view&) { publish_cluster(st); };
    hooks.check_cluster_id = [&st, checked = std::make_shared<bool>(false)](std::string id) {
      return check_cluster_id(st, std::move(id), checked);
    };
    hooks.unclean_allowed = [&st](const cluster::topic_view& t) {
      auto c = meta::resolve(st.cfg.topic_defaults, t.assignment.config);
      return c ? c->unclean_leader_election : st.cfg.topic_defaults.unclean_leader_election;
    };
    auto joined = i->block_on(*st.shards[0], cluster::membership::start(st.shards[0]->io().get_executor(), cfg.zookeeper,
                                                                        cfg.zookeeper_session_timeout, me, std::move(hooks)));
    if (!joined) {
      auto self = std::unique_ptr<server>(new server(std::move(i)));
      self->stop();
      return std::unexpected(error{joined.error().code, std::move(joined.error().message)});
    }
    i->block_on(*st.shards[0], [](broker_state& b, std::unique_ptr<cluster::membership> m) -> asio::awaitable<int> {
      b.cluster = std::move(m);
      publish_cluster(b);
      co_return 0;
    }(st, std::move(*joined)));
  }
  logger().info("{} broker {} on {}:{} (advertised as {}:{}), {} shards, {} partition logs in {}",
                st.cluster ? "cluster" : "standalone", cfg.broker_id, cfg.listen_host, i->port, st.cfg.advertise_host(),
                st.cfg.advertise_port(), cfg.shards, opened, cfg.data_dir.string());
  auto* raw = i.get();
  asio::co_spawn(st.shards[0]->io(), raw->accept_loop(), asio::detached);
  asio::co_spawn(st.shards[0]->io(), raw->disk_watch(), asio::detached);
  for (auto& s : st.shards) asio::co_spawn(s->io(), raw->flush_loop(*s), asio::detached);
  for (auto& s : st.shards) asio::co_spawn(s->io(), raw->retention_loop(*s), asio::detached);
  if (cfg.cleaner.enable) {
    raw->cleaner = std::make_unique<storage::log_cleaner>(cfg.cleaner);
    for (auto& s : st.shards) asio::co_spawn(s->io(), raw->cleaner->run(s->logs()), asio::detached);
  }
  return std::unique_ptr<server>(new server(std::move(i)));
}

void server::set_response_delay(std::chrono::milliseconds ms) {
  impl_->state.response_delay_ms.store(static_cast<std::int32_t>(ms.count()));
}

void server::stop() {
  auto& i = *impl_;
  if (i.stopped) return;
  i.stopped = true;
  i.state.stopping = true;
  logger().info("stopping: draining connections, closing logs");
  if (i.state.cluster_mode()) {
    // Controlled shutdown: hand leadership to other ISR members and wait
    // (bounded) until this broker's shards follow, so producers move on
    // before the connections close.
    // Bounded: with ZooKeeper away the writes would wait for it; the broker
    // then leaves without handing over (the controller moves its leaders
    // when its session ends).
    auto handover = asio::co_spawn(i.state.shards[0]->io(), [](broker_state& st) -> asio::awaitable<int> {
      if (!st.cluster) co_return 0;
      const std::size_t moved = co_await st.cluster->hand_over_leadership();
      asio::steady_timer t(co_await asio::this_coro::executor);
      for (int k = 0; moved > 0 && k < 150 && st.cluster && still_leading(st); ++k) {
        t.expires_after(std::chrono::milliseconds(20));
        co_await t.async_wait(use_tuple);
      }
      if (moved > 0) logger().info("controlled shutdown: handed over {} partition leaders", moved);
      co_return 0;
    }(i.state), asio::use_future);
    if (handover.wait_for(i.state.cfg.zookeeper_session_timeout + std::chrono::seconds(1)) != std::future_status::ready) {
      logger().warn("controlled shutdown: ZooKeeper did not answer; leaving without handing over");
    }
    for (auto& s : i.state.shards) {
      i.block_on(*s, [](shard& sh) -> asio::awaitable<int> {
        if (sh.replicas() != nullptr) sh.replicas()->stop();
        co_return 0;
      }(*s));
    }
    // Leave the cluster: the registration and, if held, /controller go
    // with the session, so another broker takes over at once.
    i.block_on(*i.state.shards[0], [](broker_state& st) -> asio::awaitable<int> {
      st.cluster.reset();
      co_return 0;
    }(i.state));
  }
  if (i.acceptor) {
    i.block_on(*i.state.shards[0], [](asio::ip::tcp::acceptor& a) -> asio::awaitable<int> {
      std::error_code ec;
      a.close(ec);
      co_return 0;
    }(*i.acceptor));
  }
  // Long polls answer now instead of at their deadline.
  for (auto& s : i.state.shards) {
    i.block_on(*s, [](shard& sh) -> asio::awaitable<int> {
      sh.wake_all();
      co_return 0;
    }(*s));
  }
  // Group coordinators and share partitions stop writing (their timers)
  // before the logs close.
  for (auto& s : i.state.shards) {
    i.block_on(*s, [](shard& sh) -> asio::awaitable<int> {
      sh.shares().stop();
      sh.groups().stop_all();
      co_return 0;
    }(*s));
  }
  // Every shard stops serving before any shard closes its logs: a request
  // on one shard may touch partitions of all of them.
  for (auto& s : i.state.shards) i.block_on(*s, i.drain_connections(*s));
  if (i.cleaner) i.cleaner->stop();  // before the logs close: a pass in progress ends first
  for (auto& s : i.state.shards) i.block_on(*s, i.close_logs(*s));
  for (auto& s : i.state.shards) s->stop();
  // Logs are closed and connections gone: a shard that still has work
  // after this is waiting on something that will not come. Seen once in
  // cluster mode, SIGTERM right after start: ZooKeeper operations whose
  // completions the C client dropped at close (zk::session now finishes
  // those). Kept as a bound: a stop never hangs.
  for (auto& s : i.state.shards) {
    if (s->join_for(std::chrono::seconds(2))) continue;
    logger().warn("shard {}: work still pending 2 s after its logs closed; stopping it", s->id());
    s->force_stop();
    s->join();
  }
  logger().info("stopped");
}

}  // namespace runnel::net
