#include "broker/net/groups.h"

#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <fmt/format.h>

#include "broker/group/logger.h"
#include "broker/meta/errc.h"
#include "broker/net/append.h"
#include "broker/net/context.h"
#include "broker/net/replication.h"
#include "broker/net/shard.h"
#include "broker/net/share_partitions.h"
#include "broker/storage/segment.h"
#include "broker/net/topic_writes.h"
#include "schemas/batch.h"

namespace runnel::net {

namespace {

using group::errc;

constexpr auto write_timeout = std::chrono::seconds(10);

topic_partition offsets_tp(std::int32_t p) { return {std::string(group::offsets_topic), partition_id(p)}; }

group::error not_available(std::string why) { return {errc::coordinator_not_available, std::move(why)}; }

// Appends one batch of group records to offsets partition `p` on its
// owner shard `s`, acks=all.
asio::awaitable<std::optional<group::error>> append_records(shard& s, std::int32_t p, std::vector<std::byte> batch) {
  std::vector<std::span<std::byte>> batches{std::span<std::byte>(batch)};
  auto out = co_await append_on_owner(s, offsets_tp(p), std::move(batches), -1,
                                      std::chrono::steady_clock::now() + write_timeout);
  if (out.error == wire::ErrorCode::NONE) co_return std::nullopt;
  const auto code = out.error == wire::ErrorCode::NOT_LEADER || out.error == wire::ErrorCode::FENCED_LEADER_EPOCH
                        ? errc::not_coordinator
                        : errc::coordinator_not_available;
  co_return group::error(code, fmt::format("__consumer_offsets/{}: {} ({})", p, out.message,
                                           wire::EnumNameErrorCode(out.error)));
}

group::topic_counts topic_counts_of(const shard& s) {
  group::topic_counts out;
  for (const auto& [name, t] : *s.topics()) out.emplace(name, t.partitions);
  return out;
}

std::int32_t offsets_partitions(const shard& s) {
  auto it = s.topics()->find(group::offsets_topic);
  return it == s.topics()->end() ? 0 : it->second.partitions;
}

// On shard 0: creates __consumer_offsets unless it exists (compacted,
// offsets.topic.* settings, replication min(factor, live brokers)).
asio::awaitable<std::optional<group::error>> ensure_offsets_topic(broker_state& b) {
  const std::string name(group::offsets_topic);
  if (b.controller().topics()->contains(name)) co_return std::nullopt;
  const meta::config_overrides overrides{{"cleanup.policy", "compact"},
                                         {"segment.bytes", std::to_string(b.cfg.offsets_topic_segment_bytes)}};
  const std::int32_t partitions = b.cfg.offsets_topic_partitions;
  if (!b.cluster_mode()) {
    auto r = co_await create_topic_locally(b, name, partitions, 1, overrides, false);
    if (!r && r.error().code != meta::errc::topic_exists) co_return not_available(r.error().message);
    if (r) {
      group::logger().info("created {} with {} partitions", name, partitions);
      co_await publish_topics(b, b.store->snapshot());
    }
    co_return std::nullopt;
  }
  if (!b.cluster) co_return not_available("not connected to the cluster");
  const auto live = static_cast<std::int32_t>(b.cluster->snapshot().brokers.size());
  const std::int32_t factor = std::min<std::int32_t>(b.cfg.offsets_topic_replication, live);
  if (factor < 1) co_return not_available("no live brokers");
  auto r = co_await b.cluster->create_topic(name, partitions, factor, overrides);
  if (!r && r.error().code != meta::errc::topic_exists) co_return not_available(r.error().message);
  if (r) group::logger().info("created {} with {} partitions, replication factor {}", name, partitions, factor);
  asio::steady_timer wait(co_await asio::this_coro::executor);
  for (int i = 0; i < 250 && !topic_visible(b, name); ++i) {
    wait.expires_after(std::chrono::milliseconds(20));
    co_await wait.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  }
  co_return std::nullopt;
}

}  // namespace

std::optional<group::error> check_group_id(std::string_view group_id) {
  if (group_id.empty()) return group::error(errc::invalid_group_id, "the group id is empty");
  if (group_id.size() > group::max_group_id_length) {
    return group::error(errc::invalid_group_id, fmt::format("a group id of {} bytes is over the limit of {}",
                                                            group_id.size(), group::max_group_id_length));
  }
  return std::nullopt;
}

asio::awaitable<std::expected<std::optional<topic_partition>, group::error>> locate_group(broker_state& b, shard& home,
                                                                                          std::string_view group_id,
                                                                                          bool create) {
  if (auto e = check_group_id(group_id)) co_return std::unexpected(*e);
  std::int32_t n = offsets_partitions(home);
  if (n == 0) {
    if (!create) co_return std::optional<topic_partition>();
    if (auto e = co_await run_on(b.controller(), ensure_offsets_topic(b))) co_return std::unexpected(*e);
    n = offsets_partitions(home);
    // Cluster mode: the new topic reaches this shard a moment later.
    if (n == 0) co_return std::unexpected(not_available("__consumer_offsets is being created"));
  }
  co_return std::optional<topic_partition>(offsets_tp(group::offsets_partition_for(group_id, n)));
}

group_coordinators::group_coordinators(broker_state& b, shard& s) : b_(b), s_(s) {}

group_coordinators::~group_coordinators() { stop_all(); }

void group_coordinators::stop_all() {
  stopped_ = true;
  for (auto& [p, sl] : slots_) {
    if (sl.c) sl.c->stop();
  }
}

void group_coordinators::unload(std::int32_t partition, const std::shared_ptr<group::coordinator>& c) {
  auto it = slots_.find(partition);
  if (it == slots_.end() || it->second.c != c) return;
  c->stop();
  slots_.erase(it);
  group::logger().info("__consumer_offsets/{}: coordinator unloaded", partition);
}

asio::awaitable<std::expected<std::shared_ptr<group::coordinator>, group::error>> group_coordinators::get(
    std::int32_t partition) {
  const topic_partition tp = offsets_tp(partition);
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (stopped_ || b_.stopping.load()) {
      co_return std::unexpected(group::error(errc::not_coordinator, "the broker is shutting down"));
    }
    std::int32_t epoch = -1;
    if (auto* rm = s_.replicas()) {
      auto r = rm->find(tp);
      if (!r || !r->leader) {
        if (auto it = slots_.find(partition); it != slots_.end() && it->second.c) unload(partition, it->second.c);
        if (r && r->leader_id < 0) co_return std::unexpected(not_available(fmt::format("{} has no leader", tp)));
        co_return std::unexpected(group::error(errc::not_coordinator, fmt::format("this broker does not lead {}", tp)));
      }
      if (r->truncating) co_return std::unexpected(group::error(errc::load_in_progress, fmt::format("{} is truncating", tp)));
      epoch = r->epoch;
    }
    auto it = slots_.find(partition);
    if (it != slots_.end() && !it->second.loading) {
      auto& sl = it->second;
      if (sl.c && !sl.c->stopped() && sl.leader_epoch == epoch) co_return sl.c;
      // Leadership came back with a new epoch (another leader wrote in
      // between) or a write failed: load again.
      if (sl.c) sl.c->stop();
      slots_.erase(it);
      it = slots_.end();
    }
    if (it != slots_.end()) {
      co_await storage::suspend_until([&](storage::completion c) { it->second.waiters.push_back(std::move(c)); });
      continue;
    }
    auto& sl = slots_[partition];
    sl.loading = true;
    sl.leader_epoch = epoch;
    auto e = co_await load(partition, epoch);
    auto done = slots_.find(partition);
    if (done == slots_.end()) continue;
    auto waiters = std::exchange(done->second.waiters, {});
    done->second.loading = false;
    for (auto& w : waiters) w({});
    if (e) {
      slots_.erase(done);
      co_return std::unexpected(*e);
    }
  }
  co_return std::unexpected(group::error(errc::load_in_progress, fmt::format("{} is loading", tp)));
}

asio::awaitable<std::optional<group::error>> group_coordinators::load(std::int32_t partition, std::int32_t leader_epoch) {
  const topic_partition tp = offsets_tp(partition);
  const auto t0 = std::chrono::steady_clock::now();
  auto l = co_await s_.logs().get_or_create(tp);
  if (!l) co_return not_available(fmt::format("{}: {}", tp, l.error().message()));
  storage::log& log = **l;
  group::coordinator::hooks hooks;
  hooks.append = [&s = s_, partition](std::vector<std::byte> batch) { return append_records(s, partition, std::move(batch)); };
  hooks.topics = [&s = s_] { return topic_counts_of(s); };
  hooks.share_group = [&b = b_](const std::string& group_id, std::set<std::string> members,
                                group::group_configs configs) {
    for (auto& sh : b.shards) {
      asio::post(sh->io(), [&s = *sh, group_id, members, configs] { s.shares().set_group(group_id, members, configs); });
    }
  };
  auto c = std::make_shared<group::coordinator>(s_.io().get_executor(), partition, b_.cfg.groups, std::move(hooks));
  std::weak_ptr<group::coordinator> weak = c;
  // hooks.failed is set here: it needs the coordinator's own pointer.
  const offset end = log.log_end_offset();
  offset pos = log.log_start_offset();
  std::vector<std::byte> buf;
  std::size_t records = 0;
  std::uint64_t bytes = 0;
  while (pos < end) {
    auto r = co_await log.read(pos, 4U << 20, end);
    if (!r) co_return not_available(fmt::format("{}: reading at {}: {}", tp, pos, r.error().message()));
    if (!*r || (*r)->length == 0) break;
    const auto& range = **r;
    buf.resize(range.length);
    if (auto ec = co_await s_.ring().read_exact(range.file->fd(), buf, range.pos.value())) {
      co_return not_available(fmt::format("{}: reading at {}: {}", tp, pos, ec.message()));
    }
    bytes += range.length;
    std::span<const std::byte> rest(buf);
    while (!rest.empty()) {
      auto h = schemas::decode_header(rest);
      if (!h || h->length > rest.size()) co_return not_available(fmt::format("{}: a torn batch at {}", tp, pos));
      auto view = schemas::batch_view::open(rest.first(h->length), schemas::verify_limits{h->length});
      if (!view) {
        co_return not_available(fmt::format("{}: batch at {}: {}", tp, h->base_offset, view.error().message()));
      }
      for (std::size_t i = 0; i < view->record_count(); ++i) {
        auto rec = view->record(i);
        if (!rec.key) continue;
        c->replay(*rec.key, rec.value);
        ++records;
      }
      rest = rest.subspan(h->length);
    }
    pos = range.next_offset;
  }
  auto it = slots_.find(partition);
  if (stopped_ || it == slots_.end()) co_return group::error(errc::not_coordinator, "the broker is shutting down");
  it->second.c = c;
  it->second.leader_epoch = leader_epoch;
  c->set_failed([this, partition, weak](const group::error&) {
    if (auto sp = weak.lock()) unload(partition, sp);
  });
  c->start();
  const auto ms = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count() / 1000.0;
  group::logger().info("__consumer_offsets/{}: coordinator loaded {} groups from {} records ({} bytes) in {:.1f} ms{}",
                       partition, c->groups().size(), records, bytes, ms,
                       leader_epoch >= 0 ? fmt::format(", leader epoch {}", leader_epoch) : std::string());
  co_return std::nullopt;
}

asio::awaitable<std::vector<std::shared_ptr<group::coordinator>>> group_coordinators::all(std::int32_t partitions) {
  std::vector<std::shared_ptr<group::coordinator>> out;
  for (std::int32_t p = 0; p < partitions; ++p) {
    const auto tp = offsets_tp(p);
    if (!s_.owns(tp)) continue;
    if (auto* rm = s_.replicas()) {
      auto r = rm->find(tp);
      if (!r || !r->leader) continue;
    }
    auto c = co_await get(p);
    if (c) out.push_back(std::move(*c));
  }
  co_return out;
}

}  // namespace runnel::net
