#include "broker/net/share_partitions.h"

#include <algorithm>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "broker/group/coordinator.h"
#include "broker/group/dead_letter.h"
#include "broker/group/group_config.h"
#include "broker/group/records.h"
#include "broker/meta/errc.h"
#include "broker/net/append.h"
#include "broker/net/context.h"
#include "broker/net/groups.h"
#include "broker/net/logger.h"
#include "broker/net/replication.h"
#include "broker/net/shard.h"
#include "broker/net/topic_writes.h"
#include "broker/storage/io_ring.h"
#include "broker/storage/log.h"
#include "broker/storage/log_manager.h"
#include "broker/storage/segment.h"
#include "schemas/batch.h"
#include "schemas/host_port.h"

namespace runnel::net {

namespace {

using group::errc;

constexpr auto lock_tick = std::chrono::milliseconds(100);
constexpr std::size_t dead_letters_per_batch = 100;
constexpr std::size_t dead_letter_batch_bytes = 512 * 1024;
constexpr auto dead_letter_timeout = std::chrono::seconds(10);
constexpr auto dead_letter_max_pause = std::chrono::seconds(30);
constexpr auto peer_timeout = std::chrono::seconds(10);
constexpr auto refresh_interval = std::chrono::seconds(1);
constexpr auto write_retry_for = std::chrono::seconds(10);
constexpr std::int64_t dlq_window_ms = 7LL * 24 * 3600 * 1000;  // a week, as the SDK's DLQ topics

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}


// On shard 0: creates DLQ topic `name` unless it exists: `partitions`
// partitions (the source topic's), a message-id window, marked
// dead.letter.topic; cluster mode: `replication` replicas (the source
// topic's, at most the live brokers). A new topic reaches the shards a
// moment later: the caller tries again until it sees it.
asio::awaitable<std::optional<group::error>> ensure_dlq_topic(broker_state& b, std::string name, std::int32_t partitions,
                                                              std::int32_t replication) {
  if (b.controller().topics()->contains(name)) co_return std::nullopt;
  const meta::config_overrides overrides{{"dedup.window.ms", std::to_string(dlq_window_ms)},
                                         {"dead.letter.topic", "true"}};
  std::expected<void, meta::error> r;
  if (!b.cluster_mode()) {
    r = co_await create_topic_locally(b, name, partitions, 1, overrides, false);
  } else if (!b.cluster) {
    co_return group::error(errc::coordinator_not_available, "not connected to the cluster");
  } else {
    const auto live = static_cast<std::int32_t>(b.cluster->snapshot().brokers.size());
    r = co_await b.cluster->create_topic(name, partitions, std::clamp(replication, 1, std::max(1, live)), overrides);
  }
  if (!r && r.error().code != meta::errc::topic_exists) {
    co_return group::error(r.error().code, fmt::format("creating DLQ topic {}: {}", name, r.error().message));
  }
  if (r) {
    logger().info("created DLQ topic {} with {} partitions", name, partitions);
    if (!b.cluster_mode()) co_await publish_topics(b, b.store->snapshot());
  }
  co_return std::nullopt;
}

// On `tp`'s owner shard: appends the DLQ copies, acks=all.
asio::awaitable<partition_outcome> append_copies(shard& s, topic_partition tp, std::vector<std::byte> batch) {
  std::vector<std::span<std::byte>> batches{std::span<std::byte>(batch)};
  co_return co_await append_on_owner(s, std::move(tp), std::move(batches), -1,
                                     std::chrono::steady_clock::now() + dead_letter_timeout);
}

// The group error for a coordinator's wire answer (ReadShareGroupState,
// WriteShareGroupState).
std::error_code from_wire(wire::ErrorCode e) {
  switch (e) {
    case wire::ErrorCode::GROUP_ID_NOT_FOUND: return errc::group_not_found;
    case wire::ErrorCode::INCONSISTENT_GROUP_TYPE: return errc::inconsistent_group_type;
    case wire::ErrorCode::FENCED_LEADER_EPOCH: return errc::fenced_leader_epoch;
    case wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION: return errc::unknown_topic_or_partition;
    case wire::ErrorCode::INVALID_REQUEST: return errc::invalid_request;
    case wire::ErrorCode::COORDINATOR_LOAD_IN_PROGRESS: return errc::load_in_progress;
    default: return errc::coordinator_not_available;  // NOT_COORDINATOR too: it moved, the client tries again
  }
}

share_group_view view_of(const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* members,
                         const flatbuffers::Vector<flatbuffers::Offset<wire::ConfigEntry>>* configs) {
  share_group_view out;
  if (members != nullptr) {
    for (const auto* m : *members) out.members.insert(m->str());
  }
  if (configs != nullptr) {
    for (const auto* c : *configs) out.configs[c->key()->str()] = c->value()->str();
  }
  return out;
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

void share_partitions::set_group(const std::string& group_id, std::set<std::string> members,
                                 group::group_configs configs) {
  if (stopped_) return;
  const bool had_dlq = !group::dlq_topic_of(groups_[group_id].configs).empty();
  groups_[group_id].configs = std::move(configs);
  const group::share_limits limits = limits_of(group_id);
  for (auto& [k, sl] : slots_) {
    if (k.first != group_id || !sl.sp) continue;
    sl.sp->set_limits(limits);
    bool changed = false;
    if (had_dlq && !limits.dead_letter) {
      // The group no longer names a DLQ: what waited for a copy is archived as it is.
      for (const auto& [at, count] : sl.sp->dead_letters()) changed = sl.sp->dead_lettered(at) || changed;
    }
    std::size_t released = 0;
    for (const auto& holder : sl.sp->holders()) {
      if (!members.contains(holder)) released += sl.sp->release_member(holder);
    }
    if (released > 0) logger().info("[{}] share group {}: {} records of departed members released", k.second, k.first, released);
    if (released > 0 || changed) {
      asio::co_spawn(s_.io(), persist_logged(k), asio::detached);
    } else {
      dead_letter_if_due(k);
    }
  }
  groups_[group_id].members = std::move(members);
}

void share_partitions::learn(const std::string& group_id, share_group_view g) {
  if (auto it = groups_.find(group_id); it != groups_.end() && it->second == g) return;
  set_group(group_id, std::move(g.members), std::move(g.configs));
}

group::share_limits share_partitions::limits_of(const std::string& group_id) const {
  auto it = groups_.find(group_id);
  return it == groups_.end() ? b_.cfg.shares : group::share_limits_of(it->second.configs, b_.cfg.shares);
}

std::optional<group::error> share_partitions::check_member(const std::string& group_id, const std::string& member) const {
  auto it = groups_.find(group_id);
  if (it == groups_.end() || it->second.members.contains(member)) return std::nullopt;
  return group::error(errc::unknown_member, fmt::format("member '{}' of share group {}", member, group_id));
}

asio::awaitable<void> share_partitions::persist_logged(key k) {
  auto it = slots_.find(k);
  if (it == slots_.end() || !it->second.sp) co_return;
  if (auto e = co_await persist(k, it->second.sp)) {
    logger().warn("[{}] share group {}: writing its state failed: {}", k.second, k.first, e->message);
  }
}

void share_partitions::stop() {
  stopped_ = true;
  timer_.cancel();
  for (auto& [address, clients] : idle_peers_) {
    for (auto& c : clients) c->close();
  }
  for (auto* c : busy_peers_) c->close();
}

std::expected<std::int32_t, group::error> share_partitions::leader_epoch_of(const topic_partition& tp) const {
  const replica_manager* rm = s_.replicas();
  if (rm == nullptr) return -1;
  auto r = rm->find(tp);
  if (!r || !r->leader || r->truncating) {
    return std::unexpected(group::error(errc::not_leader, fmt::format("this broker does not lead {}", tp)));
  }
  return r->epoch;
}

void share_partitions::drop(std::map<key, slot>::iterator it) {
  auto waiters = std::exchange(it->second.waiters, {});
  auto writers = std::exchange(it->second.write_waiters, {});
  logger().info("[{}] share group {}: unloaded (leadership moved)", it->first.second, it->first.first);
  slots_.erase(it);
  for (auto& w : waiters) w({});
  for (auto& w : writers) w({});
}

asio::awaitable<std::expected<share_partitions::share_ptr, group::error>> share_partitions::get(const std::string& group_id,
                                                                                              const topic_partition& tp) {
  const key k{group_id, tp};
  while (true) {
    if (stopped_ || b_.stopping.load()) {
      co_return std::unexpected(group::error(errc::coordinator_not_available, "the broker is shutting down"));
    }
    auto epoch = leader_epoch_of(tp);
    auto it = slots_.find(k);
    if (it != slots_.end() && it->second.loading) {
      co_await storage::suspend_until([&](storage::completion c) { it->second.waiters.push_back(std::move(c)); });
      continue;
    }
    if (it != slots_.end() && (!epoch || it->second.leader_epoch != *epoch)) {
      drop(it);  // not the leader now, or the leader of a newer epoch: the state is the coordinator's to give again
      continue;
    }
    if (!epoch) co_return std::unexpected(epoch.error());
    if (it != slots_.end() && it->second.sp) co_return it->second.sp;
    slots_[k].loading = true;
    auto e = co_await load(k, *epoch);
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
      if (b_.cluster_mode()) asio::co_spawn(s_.io(), refresh_loop(), asio::detached);
    }
  }
}

asio::awaitable<std::optional<group::error>> share_partitions::load(key k, std::int32_t leader_epoch) {
  auto state = co_await read_state(k.first, k.second, leader_epoch);
  if (!state) co_return state.error();
  learn(k.first, std::move(state->group));
  const group::share_limits limits = limits_of(k.first);
  auto& sl = slots_[k];
  sl.leader_epoch = leader_epoch;
  if (state->state) {
    auto sp = group::share_partition::from_state(*state->state, limits);
    if (!sp) {
      co_return group::error(errc::invalid_request,
                             fmt::format("share group {}: the stored state of {} does not hold together", k.first, k.second));
    }
    sl.sp = std::make_shared<group::share_partition>(std::move(*sp));
    logger().info("[{}] share group {}: loaded, offsets {}..{} in flight ({} records){}", k.second, k.first,
                  sl.sp->start(), sl.sp->end(), sl.sp->in_flight(),
                  leader_epoch >= 0 ? fmt::format(", leader epoch {}", leader_epoch) : std::string());
  } else {
    // A share group reads a partition from its beginning (ADR 0016).
    storage::log* l = s_.logs().get(k.second);
    sl.sp = std::make_shared<group::share_partition>(l != nullptr ? l->log_start_offset() : offset(0), limits);
  }
  // Copies the broker died before writing (or recording) go now.
  dead_letter_if_due(k);
  co_return std::nullopt;
}

asio::awaitable<std::expected<share_partitions::acknowledged, group::error>> share_partitions::apply_acks(
    std::string group_id, std::string member, topic_partition tp, std::vector<share_ack> acks) {
  auto sp = co_await get(group_id, tp);
  if (!sp) co_return std::unexpected(sp.error());
  if (check_member(group_id, member)) {
    // It may have joined since this broker last heard from the coordinator.
    auto it = slots_.find(key{group_id, tp});
    const std::int32_t epoch = it != slots_.end() ? it->second.leader_epoch : -1;
    if (auto fresh = co_await read_state(group_id, tp, epoch)) learn(group_id, std::move(fresh->group));
    if (auto e = check_member(group_id, member)) co_return std::unexpected(*e);
  }
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
    if (auto e = co_await persist(key{group_id, tp}, out.sp)) co_return std::unexpected(*e);
  }
  co_return out;
}

asio::awaitable<std::optional<group::error>> share_partitions::persist(key k, share_ptr sp) {
  auto current = [&]() -> slot* {
    auto it = slots_.find(k);
    return it != slots_.end() && it->second.sp == sp ? &it->second : nullptr;
  };
  auto moved = [&] {
    return group::error(errc::not_leader, fmt::format("{}: the leadership moved before the share state was written", k.second));
  };
  slot* sl = current();
  if (sl == nullptr) co_return moved();
  const std::uint64_t want = ++sl->wanted;
  // A coordinator that moves (its broker died) is waited for, this long.
  const auto deadline = std::chrono::steady_clock::now() + write_retry_for;
  while (true) {
    sl = current();
    if (sl == nullptr) co_return moved();
    if (sl->durable >= want) co_return std::nullopt;
    if (sl->writing) {
      co_await storage::suspend_until([&](storage::completion c) { sl->write_waiters.push_back(std::move(c)); });
      continue;
    }
    sl->writing = true;
    const std::uint64_t covers = sl->wanted;
    group::share_state st = sp->state();
    st.leader_epoch = sl->leader_epoch;
    auto r = co_await write_state(k.first, k.second, std::move(st));
    sl = current();
    if (sl == nullptr) co_return moved();
    if (r) {
      sl->writing = false;
      sl->durable = std::max(sl->durable, covers);
    }
    if (!r) {
      const bool moving = r.error().code == errc::coordinator_not_available || r.error().code == errc::not_coordinator ||
                          r.error().code == errc::load_in_progress;
      if (moving && std::chrono::steady_clock::now() < deadline && !stopped_ && !b_.stopping.load()) {
        asio::steady_timer pause(s_.io());
        pause.expires_after(lock_tick);
        co_await pause.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        sl = current();
        if (sl == nullptr) co_return moved();
        sl->writing = false;
        auto writers = std::exchange(sl->write_waiters, {});
        for (auto& w : writers) w({});
        continue;
      }
      // What is in memory is ahead of what is durable: forgotten, so the
      // next use loads the durable state again (what was acquired since is
      // handed out again; nothing acknowledged-but-not-written stays).
      logger().warn("[{}] share group {}: writing its state failed ({}); unloading it", k.second, k.first, r.error().message);
      drop(slots_.find(k));
      co_return r.error();
    }
    auto writers = std::exchange(sl->write_waiters, {});
    for (auto& w : writers) w({});
    learn(k.first, std::move(*r));
    // Archived records get their DLQ copy only once the archive is durable.
    dead_letter_if_due(k);
  }
}

asio::awaitable<std::expected<share_partitions::coordinator_at, group::error>> share_partitions::coordinator_of(
    const std::string& group_id) {
  auto where = co_await locate_group(b_, s_, group_id, false);
  if (!where) co_return std::unexpected(where.error());
  if (!*where) co_return std::unexpected(group::error(errc::group_not_found, fmt::format("share group {}", group_id)));
  coordinator_at out{**where, std::nullopt};
  const replica_manager* rm = s_.replicas();
  if (rm == nullptr) co_return out;
  auto topics = s_.topics();
  auto t = topics->find(out.offsets.topic);
  const auto p = static_cast<std::size_t>(out.offsets.partition.value());
  const std::int32_t leader = t == topics->end() || p >= t->second.leadership.size() ? -1 : t->second.leadership[p].leader;
  if (leader < 0) {
    co_return std::unexpected(group::error(errc::coordinator_not_available, fmt::format("{} has no leader", out.offsets)));
  }
  if (leader == rm->me()) co_return out;
  out.remote = rm->address_of(leader);
  if (!out.remote) {
    co_return std::unexpected(group::error(errc::coordinator_not_available,
                                           fmt::format("{} is led by broker {}, which is not live", out.offsets, leader)));
  }
  co_return out;
}

asio::awaitable<std::expected<stored_share_state, group::error>> share_partitions::read_state(std::string group_id,
                                                                                              topic_partition tp,
                                                                                              std::int32_t leader_epoch) {
  auto at = co_await coordinator_of(group_id);
  if (!at) co_return std::unexpected(at.error());
  if (!at->remote) {
    shard& owner = b_.owner(at->offsets);
    co_return co_await run_on(owner, read_share_state_on_owner(owner, at->offsets.partition.value(), std::move(group_id),
                                                               std::move(tp), leader_epoch));
  }
  flatbuffers::FlatBufferBuilder fbb;
  auto body = wire::CreateReadShareGroupStateRequestDirect(fbb, group_id.c_str(), tp.topic.c_str(), tp.partition.value(),
                                                           leader_epoch);
  auto r = co_await call_peer(*at->remote, fbb, wire::Request::ReadShareGroupStateRequest, body.Union());
  const wire::ReadShareGroupStateResponse* a = nullptr;
  if (r && r->envelope != nullptr) a = r->envelope->body_as_ReadShareGroupStateResponse();
  if (a == nullptr) {
    co_return std::unexpected(group::error(errc::coordinator_not_available,
                                           fmt::format("share group {}: its coordinator at {} did not answer ({})", group_id,
                                                       *at->remote, r ? "no answer body" : r.error().message())));
  }
  if (a->error() != wire::ErrorCode::NONE) {
    co_return std::unexpected(group::error(from_wire(a->error()), a->message() != nullptr ? a->message()->str() : std::string()));
  }
  stored_share_state out;
  out.group = view_of(a->members(), a->configs());
  if (a->state() != nullptr) {
    out.state = group::decode_share_state_value(std::as_bytes(std::span(a->state()->data(), a->state()->size())));
    if (!out.state) {
      co_return std::unexpected(group::error(errc::invalid_request,
                                             fmt::format("share group {}: the state of {} from {} does not decode", group_id,
                                                         tp, *at->remote)));
    }
  }
  co_return out;
}

asio::awaitable<std::expected<share_group_view, group::error>> share_partitions::write_state(std::string group_id,
                                                                                             topic_partition tp,
                                                                                             group::share_state st) {
  auto at = co_await coordinator_of(group_id);
  if (!at) co_return std::unexpected(at.error());
  if (!at->remote) {
    shard& owner = b_.owner(at->offsets);
    co_return co_await run_on(owner, write_share_state_on_owner(owner, at->offsets.partition.value(), std::move(group_id),
                                                                std::move(tp), std::move(st)));
  }
  const auto bytes = group::encode_share_state_value(st);
  flatbuffers::FlatBufferBuilder fbb;
  auto state = fbb.CreateVector(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  auto body = wire::CreateWriteShareGroupStateRequest(fbb, fbb.CreateString(group_id), fbb.CreateString(tp.topic),
                                                      tp.partition.value(), st.leader_epoch, state);
  auto r = co_await call_peer(*at->remote, fbb, wire::Request::WriteShareGroupStateRequest, body.Union());
  const wire::WriteShareGroupStateResponse* a = nullptr;
  if (r && r->envelope != nullptr) a = r->envelope->body_as_WriteShareGroupStateResponse();
  if (a == nullptr) {
    // Maybe written, maybe not: the caller answers an error, and the next write carries the state again.
    co_return std::unexpected(group::error(errc::coordinator_not_available,
                                           fmt::format("share group {}: its coordinator at {} did not answer ({})", group_id,
                                                       *at->remote, r ? "no answer body" : r.error().message())));
  }
  if (a->error() != wire::ErrorCode::NONE) {
    co_return std::unexpected(group::error(from_wire(a->error()), a->message() != nullptr ? a->message()->str() : std::string()));
  }
  co_return view_of(a->members(), a->configs());
}

asio::awaitable<std::expected<peer_response, std::error_code>> share_partitions::call_peer(
    std::string address, flatbuffers::FlatBufferBuilder& fbb, wire::Request type, flatbuffers::Offset<void> body,
    std::span<const std::byte> payload) {
  if (stopped_) co_return std::unexpected(make_error_code(asio::error::operation_aborted));
  std::unique_ptr<peer_client> c;
  auto& idle = idle_peers_[address];
  if (!idle.empty()) {
    c = std::move(idle.back());
    idle.pop_back();
  } else {
    auto hp = schemas::parse_host_port(address);
    if (!hp) co_return std::unexpected(make_error_code(std::errc::invalid_argument));
    c = std::make_unique<peer_client>(s_.io().get_executor(), hp->first, hp->second,
                                      fmt::format("share-{}", s_.replicas() != nullptr ? s_.replicas()->me() : 0),
                                      peer_timeout);
  }
  busy_peers_.insert(c.get());
  auto r = co_await c->call(fbb, type, body, payload);
  busy_peers_.erase(c.get());
  // A failed call dropped its connection; the client connects again on its next call.
  if (!stopped_) idle_peers_[address].push_back(std::move(c));
  co_return r;
}

asio::awaitable<std::expected<share_fetched, group::error>> share_partitions::fetch(std::string group_id,
                                                                                    std::string member,
                                                                                    topic_partition tp,
                                                                                    std::vector<share_ack> acks,
                                                                                    std::size_t max_records,
                                                                                    std::uint32_t max_bytes) {
  auto acked = co_await apply_acks(group_id, member, tp, std::move(acks));
  if (!acked) co_return std::unexpected(acked.error());
  share_ptr sp = acked->sp;
  share_fetched out;
  out.ack_error = std::move(acked->refused);
  storage::log* l = s_.logs().get(tp);
  if (l == nullptr) co_return out;
  // Cluster mode: what every ISR member holds, and no further.
  offset visible = l->log_end_offset();
  if (const replica_manager* rm = s_.replicas()) {
    if (auto r = rm->find(tp)) visible = std::min(visible, r->hw);
  }
  out.log_end = visible;
  sp->move_start(l->log_start_offset());
  const offset from = sp->next_read();
  if (from >= visible) co_return out;
  auto r = co_await l->read(from, max_bytes, visible);
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

asio::awaitable<std::expected<group::share_stats, group::error>> share_partitions::describe(std::string group_id,
                                                                                           topic_partition tp) {
  auto sp = co_await get(group_id, tp);
  if (!sp) co_return std::unexpected(sp.error());
  co_return (*sp)->stats(group::clock_type::now());
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
    // Each on its own: a write that waits for a moving coordinator holds up no other partition.
    for (auto& k : expired) asio::co_spawn(s_.io(), persist_logged(k), asio::detached);
  }
}

asio::awaitable<void> share_partitions::refresh_loop() {
  asio::steady_timer pause(s_.io());
  while (!stopped_) {
    pause.expires_after(refresh_interval);
    co_await pause.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    std::map<std::string, key> one_each;  // a loaded share partition of each group
    for (const auto& [k, sl] : slots_) {
      if (sl.sp) one_each.try_emplace(k.first, k);
    }
    for (auto& [group_id, k] : one_each) {
      if (stopped_) break;
      auto it = slots_.find(k);
      if (it == slots_.end() || !it->second.sp) continue;
      if (auto fresh = co_await read_state(group_id, k.second, it->second.leader_epoch)) learn(group_id, std::move(fresh->group));
    }
  }
}

void share_partitions::dead_letter_if_due(const key& k) {
  if (stopped_) return;
  auto it = slots_.find(k);
  if (it == slots_.end() || !it->second.sp || it->second.dead_lettering) return;
  if (!limits_of(k.first).dead_letter || it->second.sp->dead_letters().empty()) return;
  it->second.dead_lettering = true;
  asio::co_spawn(s_.io(), dead_letter_loop(k), asio::detached);
}

asio::awaitable<void> share_partitions::dead_letter_loop(key k) {
  asio::steady_timer pause(s_.io());
  int failures = 0;
  auto wait = [&](std::chrono::milliseconds d) -> asio::awaitable<void> {
    // In short steps, so that a stopping broker is not held up.
    for (auto left = d; left.count() > 0 && !stopped_; left -= lock_tick) {
      pause.expires_after(lock_tick);
      co_await pause.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }
  };
  const share_ptr sp = slots_.at(k).sp;  // the loop is this one's: a reload starts its own
  auto mine = [&]() -> slot* {
    auto it = slots_.find(k);
    return it != slots_.end() && it->second.sp == sp ? &it->second : nullptr;
  };
  while (!stopped_ && !b_.stopping.load()) {
    if (mine() == nullptr) co_return;  // unloaded: its flag went with it
    const std::string dlq = group::dlq_topic_of(groups_[k.first].configs);
    auto pending = sp->dead_letters();
    if (dlq.empty() || pending.empty()) break;
    auto done = co_await write_dead_letters(k, dlq, std::move(pending));
    if (done) {
      if (mine() == nullptr) co_return;
      for (offset at : *done) sp->dead_lettered(at);
      logger().info("[{}] share group {}: {} archived records copied to DLQ topic {}", k.second, k.first, done->size(), dlq);
      // Not written: the next start copies them again and the DLQ's window drops the copies.
      auto e = co_await persist(k, sp);
      if (!e) {
        failures = 0;
        continue;
      }
      done = std::unexpected(*e);
    }
    ++failures;
    const auto d = std::min<std::chrono::milliseconds>(dead_letter_max_pause, lock_tick * (1 << std::min(failures, 9)));
    logger().warn("[{}] share group {}: DLQ copy to {} failed ({}); again in {} ms", k.second, k.first, dlq,
                  done.error().message, d.count());
    co_await wait(d);
  }
  if (slot* sl = mine()) sl->dead_lettering = false;
}

asio::awaitable<std::expected<std::vector<offset>, group::error>> share_partitions::write_dead_letters(
    key k, std::string dlq, std::vector<std::pair<offset, std::uint16_t>> pending) {
  const topic_partition& src = k.second;
  auto topics = s_.topics();
  auto t = topics->find(dlq);
  if (t == topics->end()) {
    auto source = topics->find(src.topic);
    const std::int32_t n = source == topics->end() ? 1 : source->second.partitions;
    const std::int32_t replication =
        source == topics->end() || source->second.leadership.empty()
            ? 1
            : static_cast<std::int32_t>(source->second.leadership.front().replicas.size());
    if (auto e = co_await run_on(b_.controller(), ensure_dlq_topic(b_, dlq, n, replication))) co_return std::unexpected(*e);
    topics = s_.topics();
    t = topics->find(dlq);
    if (t == topics->end()) {
      co_return std::unexpected(group::error(errc::coordinator_not_available, fmt::format("DLQ topic {} is being created", dlq)));
    }
  }
  if (t->second.config.log.dedup_window.count() <= 0) {
    co_return std::unexpected(group::error(
        errc::invalid_config, fmt::format("DLQ topic {} has no message-id window (dedup.window.ms): a copy written "
                                          "again after a failure would stay twice; set one",
                                          dlq)));
  }
  const topic_partition dest(dlq, partition_id(src.partition.value() % t->second.partitions));
  storage::log* l = s_.logs().get(src);
  if (l == nullptr) co_return std::unexpected(group::error(errc::unknown_topic_or_partition, fmt::format("{}", src)));
  const std::uint16_t max_attempts = limits_of(k.first).max_delivery_attempts;
  const timestamp_ms now(wall_ms());
  schemas::batch_builder b;
  std::vector<offset> done;
  std::vector<std::byte> bytes;
  for (const auto& [at, count] : pending) {
    if (done.size() >= dead_letters_per_batch || b.size_estimate() >= dead_letter_batch_bytes) break;
    if (at < l->log_start_offset()) {  // retention took it: nothing to copy
      done.push_back(at);
      continue;
    }
    // The one batch that holds `at`.
    auto r = co_await l->read(at, 1);
    if (!r) co_return std::unexpected(group::error(r.error(), fmt::format("{}: {}", src, r.error().message())));
    if (!*r) co_return std::unexpected(group::error(errc::invalid_request, fmt::format("{}: no record at {}", src, at)));
    const storage::file_range range = std::move(**r);
    bytes.resize(range.length);
    if (auto ec = co_await s_.ring().read_exact(range.file->fd(), bytes, range.pos.value())) {
      co_return std::unexpected(group::error(ec, fmt::format("{}: {}", src, ec.message())));
    }
    auto h = schemas::decode_header(bytes);
    if (!h || h->length > bytes.size()) {
      co_return std::unexpected(group::error(errc::invalid_request, fmt::format("{}: unreadable batch at {}", src, at)));
    }
    auto v = schemas::batch_view::open(std::span<const std::byte>(bytes).first(h->length), schemas::verify_limits{h->length});
    if (!v) co_return std::unexpected(group::error(v.error(), fmt::format("{}: batch at {}: {}", src, at, v.error().message())));
    for (std::size_t i = 0; i < v->record_count(); ++i) {
      const schemas::record_view rec = v->record(i);
      if (rec.off != at) continue;
      if (!group::add_dead_letter(b, rec, k.first, src, count, group::dead_letter_reason(count, max_attempts), now)) {
        co_return std::unexpected(group::error(
            errc::invalid_request, fmt::format("the DLQ message id of {} at {} would be over {} bytes", src, at,
                                               group::max_msg_id_bytes)));
      }
      break;
    }
    done.push_back(at);  // a copy in `b`, or not a record (never acquired, so never here)
  }
  if (!b.empty()) {
    if (auto e = co_await append_dead_letters(dest, b.finish())) co_return std::unexpected(*e);
  }
  co_return done;
}

asio::awaitable<std::optional<group::error>> share_partitions::append_dead_letters(topic_partition dest,
                                                                                   std::vector<std::byte> batch) {
  auto failed = [&](wire::ErrorCode e, std::string_view message) {
    return group::error(errc::coordinator_not_available, fmt::format("{}: {} ({})", dest, message, wire::EnumNameErrorCode(e)));
  };
  std::optional<std::string> remote;  // the address of dest's leader, when that is another broker
  if (const replica_manager* rm = s_.replicas()) {
    auto topics = s_.topics();
    auto t = topics->find(dest.topic);
    const auto p = static_cast<std::size_t>(dest.partition.value());
    const std::int32_t leader = t == topics->end() || p >= t->second.leadership.size() ? -1 : t->second.leadership[p].leader;
    if (leader < 0) co_return failed(wire::ErrorCode::NOT_LEADER, "no leader");
    if (leader != rm->me()) {
      remote = rm->address_of(leader);
      if (!remote) co_return failed(wire::ErrorCode::NOT_LEADER, fmt::format("its leader {} is not live", leader));
    }
  }
  if (!remote) {
    shard& owner = b_.owner(dest);
    auto out = co_await run_on(owner, append_copies(owner, dest, std::move(batch)));
    if (out.error != wire::ErrorCode::NONE) co_return failed(out.error, out.message);
    co_return std::nullopt;
  }
  flatbuffers::FlatBufferBuilder fbb;
  const wire::PayloadRef ref(0, static_cast<std::uint32_t>(batch.size()));
  std::vector<flatbuffers::Offset<wire::ProducePartition>> parts{wire::CreateProducePartition(fbb, dest.partition.value(), &ref)};
  std::vector<flatbuffers::Offset<wire::ProduceTopic>> topics{wire::CreateProduceTopicDirect(fbb, dest.topic.c_str(), &parts)};
  auto body = wire::CreateProduceRequestDirect(fbb, -1, static_cast<std::int32_t>(dead_letter_timeout.count() * 1000), &topics);
  auto r = co_await call_peer(*remote, fbb, wire::Request::ProduceRequest, body.Union(), batch);
  if (!r) co_return failed(wire::ErrorCode::REQUEST_TIMED_OUT, fmt::format("its leader at {}: {}", *remote, r.error().message()));
  const auto* resp = r->envelope != nullptr ? r->envelope->body_as_ProduceResponse() : nullptr;
  if (resp == nullptr || resp->topics() == nullptr || resp->topics()->size() != 1 ||
      resp->topics()->Get(0)->partitions() == nullptr || resp->topics()->Get(0)->partitions()->size() != 1) {
    co_return failed(r->envelope != nullptr ? r->envelope->error() : wire::ErrorCode::UNKNOWN,
                     fmt::format("no produce answer from {}", *remote));
  }
  const auto* p = resp->topics()->Get(0)->partitions()->Get(0);
  if (p->error() != wire::ErrorCode::NONE) {
    co_return failed(p->error(), p->message() != nullptr ? p->message()->string_view() : std::string_view());
  }
  co_return std::nullopt;
}

}  // namespace runnel::net
