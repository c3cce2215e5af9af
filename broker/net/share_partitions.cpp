#include "broker/net/share_partitions.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "broker/group/coordinator.h"
#include "broker/net/context.h"
#include "broker/net/groups.h"
#include "broker/net/logger.h"
#include "broker/net/shard.h"
#include "broker/storage/io_ring.h"
#include "broker/storage/log.h"
#include "broker/storage/log_manager.h"
#include "broker/storage/segment.h"
#include "schemas/batch.h"

namespace runnel::net {

namespace {

using group::errc;

constexpr auto lock_tick = std::chrono::milliseconds(100);

// On the coordinator's shard: the state last written for (group, tp), once
// the group is known to be a share group.
struct stored_state {
  std::optional<group::share_state> state;
  std::set<std::string> members;
};

asio::awaitable<std::expected<stored_state, group::error>> read_state_on_owner(shard& s, std::int32_t partition,
                                                                              std::string group_id, topic_partition tp) {
  auto c = co_await s.groups().get(partition);
  if (!c) co_return std::unexpected(c.error());
  const group::group* g = (*c)->find(group_id);
  if (g == nullptr || (g->members.empty() && !g->has_record)) {
    co_return std::unexpected(group::error(
        errc::group_not_found, fmt::format("share group {} (members join it with ShareGroupHeartbeat)", group_id)));
  }
  if (g->type != group::group_type::share) {
    co_return std::unexpected(group::error(errc::inconsistent_group_type,
                                           fmt::format("group {} is a consumer group, not a share group", group_id)));
  }
  stored_state out;
  out.state = (*c)->share_state_of(group_id, tp);
  for (const auto& [id, m] : g->members) out.members.insert(id);
  co_return out;
}

asio::awaitable<std::optional<group::error>> write_state_on_owner(shard& s, std::int32_t partition, std::string group_id,
                                                                  topic_partition tp, group::share_state st) {
  auto c = co_await s.groups().get(partition);
  if (!c) co_return c.error();
  co_return co_await (*c)->write_share_state(std::move(group_id), std::move(tp), std::move(st));
}

// The offsets of the records in `bytes` (whole batches, as read from the
// log), as ascending ranges, and where each batch ends: (its last offset,
// the byte after it). A batch with every offset of its range is one range;
// a sparse one (compaction, the message-id window) is read record by record.
struct batch_offsets {
  std::vector<group::offset_range> records;
  std::vector<std::pair<offset, std::uint32_t>> ends;
};

batch_offsets offsets_in(std::span<const std::byte> bytes) {
  batch_offsets out;
  auto add = [&](offset first, offset last) {
    if (!out.records.empty() && out.records.back().last + 1 == first) {
      out.records.back().last = last;
    } else {
      out.records.push_back({first, last});
    }
  };
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    auto h = schemas::decode_header(bytes.subspan(pos));
    if (!h || h->length > bytes.size() - pos) break;  // the log verified every batch on its way in
    if (h->record_count == h->last_offset_delta + 1) {
      add(h->base_offset, h->last_offset());
    } else if (auto v = schemas::batch_view::open(bytes.subspan(pos, h->length), schemas::verify_limits{h->length})) {
      for (std::size_t i = 0; i < v->record_count(); ++i) {
        const offset o = v->record(i).off;
        add(o, o);
      }
    }
    pos += h->length;
    out.ends.emplace_back(h->last_offset(), static_cast<std::uint32_t>(pos));
  }
  return out;
}

}  // namespace

share_partitions::share_partitions(broker_state& b, shard& s) : b_(b), s_(s), timer_(s.io()) {}

share_partitions::~share_partitions() = default;

void share_partitions::set_members(const std::string& group_id, std::set<std::string> members) {
  if (stopped_) return;
  for (auto& [k, sl] : slots_) {
    if (k.first != group_id || !sl.sp) continue;
    std::size_t released = 0;
    for (const auto& holder : sl.sp->holders()) {
      if (!members.contains(holder)) released += sl.sp->release_member(holder);
    }
    if (released > 0) {
      logger().info("[{}] share group {}: {} records of departed members released", k.second, k.first, released);
      asio::co_spawn(s_.io(), persist_logged(k.first, k.second), asio::detached);
    }
  }
  members_[group_id] = std::move(members);
}

std::optional<group::error> share_partitions::check_member(const std::string& group_id, const std::string& member) const {
  auto it = members_.find(group_id);
  if (it == members_.end() || it->second.contains(member)) return std::nullopt;
  return group::error(errc::unknown_member, fmt::format("member '{}' of share group {}", member, group_id));
}

asio::awaitable<void> share_partitions::persist_logged(std::string group_id, topic_partition tp) {
  if (auto e = co_await persist(group_id, tp)) {
    logger().warn("[{}] share group {}: writing its state failed: {}", tp, group_id, e->message);
  }
}

void share_partitions::stop() {
  stopped_ = true;
  timer_.cancel();
}

asio::awaitable<std::expected<group::share_partition*, group::error>> share_partitions::get(const std::string& group_id,
                                                                                            const topic_partition& tp) {
  const key k{group_id, tp};
  while (true) {
    if (stopped_ || b_.stopping.load()) {
      co_return std::unexpected(group::error(errc::coordinator_not_available, "the broker is shutting down"));
    }
    auto it = slots_.find(k);
    if (it != slots_.end() && it->second.sp) co_return &*it->second.sp;
    if (it != slots_.end() && it->second.loading) {
      co_await storage::suspend_until([&](storage::completion c) { it->second.waiters.push_back(std::move(c)); });
      continue;
    }
    slots_[k].loading = true;
    auto e = co_await load(k);
    auto done = slots_.find(k);
    auto waiters = std::exchange(done->second.waiters, {});
    done->second.loading = false;
    for (auto& w : waiters) w({});
    if (e) {
      if (!done->second.sp) slots_.erase(done);
      co_return std::unexpected(*e);
    }
    if (!timer_running_) {
      timer_running_ = true;
      asio::co_spawn(s_.io(), lock_loop(), asio::detached);
    }
  }
}

asio::awaitable<std::optional<group::error>> share_partitions::load(key k) {
  auto where = co_await locate_group(b_, s_, k.first, false);
  if (!where) co_return where.error();
  if (!*where) co_return group::error(errc::group_not_found, fmt::format("share group {}", k.first));
  shard& owner = b_.owner(**where);
  auto state = co_await run_on(owner, read_state_on_owner(owner, (*where)->partition.value(), k.first, k.second));
  if (!state) co_return state.error();
  const group::share_limits limits = b_.cfg.shares;
  members_.try_emplace(k.first, state->members);  // the coordinator's hook may have told newer already
  auto& sl = slots_[k];
  if (state->state) {
    auto sp = group::share_partition::from_state(*state->state, limits);
    if (!sp) {
      co_return group::error(errc::invalid_request,
                             fmt::format("share group {}: the stored state of {} does not hold together", k.first, k.second));
    }
    sl.sp = std::move(*sp);
    logger().info("[{}] share group {}: loaded, offsets {}..{} in flight ({} records)", k.second, k.first,
                  sl.sp->start(), sl.sp->end(), sl.sp->in_flight());
  } else {
    // A share group reads a partition from its beginning (ADR 0016).
    storage::log* l = s_.logs().get(k.second);
    sl.sp.emplace(l != nullptr ? l->log_start_offset() : offset(0), limits);
  }
  co_return std::nullopt;
}

asio::awaitable<std::expected<share_partitions::acknowledged, group::error>> share_partitions::apply_acks(
    std::string group_id, std::string member, topic_partition tp, std::vector<share_ack> acks) {
  if (b_.cluster_mode()) {
    co_return std::unexpected(
        group::error(errc::invalid_request, "share groups are served in standalone mode only so far"));
  }
  auto sp = co_await get(group_id, tp);
  if (!sp) co_return std::unexpected(sp.error());
  if (auto e = check_member(group_id, member)) co_return std::unexpected(*e);
  acknowledged out{*sp, std::nullopt};
  bool changed = false;
  const auto now = group::clock_type::now();
  for (const auto& a : acks) {
    out.refused = out.sp->acknowledge(member, a.first, a.last, a.kind, now);
    if (out.refused) break;
    changed = true;
  }
  // What the acknowledgements changed is durable before anything is answered.
  if (changed) {
    if (auto e = co_await persist(group_id, tp)) co_return std::unexpected(*e);
  }
  co_return out;
}

asio::awaitable<std::optional<group::error>> share_partitions::persist(std::string group_id, topic_partition tp) {
  auto where = co_await locate_group(b_, s_, group_id, false);
  if (!where) co_return where.error();
  if (!*where) co_return group::error(errc::group_not_found, fmt::format("share group {}", group_id));
  auto it = slots_.find(key{group_id, tp});
  if (it == slots_.end() || !it->second.sp) co_return std::nullopt;
  // Taken right before the hop: writes reach the coordinator, and its log,
  // in the order their states were taken.
  group::share_state st = it->second.sp->state();
  shard& owner = b_.owner(**where);
  co_return co_await run_on(owner, write_state_on_owner(owner, (*where)->partition.value(), std::move(group_id),
                                                        std::move(tp), std::move(st)));
}

asio::awaitable<std::expected<share_fetched, group::error>> share_partitions::fetch(std::string group_id,
                                                                                    std::string member,
                                                                                    topic_partition tp,
                                                                                    std::vector<share_ack> acks,
                                                                                    std::size_t max_records,
                                                                                    std::uint32_t max_bytes) {
  auto acked = co_await apply_acks(group_id, member, tp, std::move(acks));
  if (!acked) co_return std::unexpected(acked.error());
  group::share_partition* sp = acked->sp;
  share_fetched out;
  out.ack_error = std::move(acked->refused);
  storage::log* l = s_.logs().get(tp);
  if (l == nullptr) co_return out;
  out.log_end = l->log_end_offset();
  sp->move_start(l->log_start_offset());
  const offset from = sp->next_read();
  if (from >= l->log_end_offset()) co_return out;
  auto r = co_await l->read(from, max_bytes);
  if (!r) co_return std::unexpected(group::error(r.error(), fmt::format("{}: {}", tp, r.error().message())));
  if (!*r) co_return out;
  storage::file_range range = std::move(**r);
  std::vector<std::byte> bytes(range.length);
  if (auto ec = co_await s_.ring().read_exact(range.file->fd(), bytes, range.pos.value())) {
    co_return std::unexpected(group::error(ec, fmt::format("{}: {}", tp, ec.message())));
  }
  const auto found = offsets_in(bytes);
  out.acquired = sp->acquire(member, max_records, found.records, range.next_offset, group::clock_type::now());
  if (out.acquired.empty()) co_return out;
  // Only the batches up to the one holding the last acquired record.
  for (const auto& [last, end] : found.ends) {
    if (last < out.acquired.back().last) continue;
    range.length = end;
    range.next_offset = last + 1;
    break;
  }
  out.range = std::move(range);
  co_return out;
}

asio::awaitable<std::optional<group::error>> share_partitions::acknowledge(std::string group_id, std::string member,
                                                                           topic_partition tp,
                                                                           std::vector<share_ack> acks) {
  auto acked = co_await apply_acks(std::move(group_id), std::move(member), std::move(tp), std::move(acks));
  if (!acked) co_return acked.error();
  co_return std::move(acked->refused);
}

asio::awaitable<void> share_partitions::lock_loop() {
  while (!stopped_) {
    timer_.expires_after(lock_tick);
    co_await timer_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    if (stopped_) break;
    const auto now = group::clock_type::now();
    std::vector<key> expired;
    for (auto& [k, sl] : slots_) {
      if (sl.sp && sl.sp->expire_locks(now) > 0) expired.push_back(k);
    }
    for (auto& k : expired) co_await persist_logged(k.first, k.second);
  }
}

}  // namespace runnel::net
