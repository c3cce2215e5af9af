#include "broker/net/share_partitions.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "broker/group/coordinator.h"
#include "broker/group/dead_letter.h"
#include "broker/group/group_config.h"
#include "broker/meta/errc.h"
#include "broker/net/append.h"
#include "broker/net/context.h"
#include "broker/net/groups.h"
#include "broker/net/logger.h"
#include "broker/net/shard.h"
#include "broker/net/topic_writes.h"
#include "broker/storage/io_ring.h"
#include "broker/storage/log.h"
#include "broker/storage/log_manager.h"
#include "broker/storage/segment.h"
#include "schemas/batch.h"

namespace runnel::net {

namespace {

using group::errc;

constexpr auto lock_tick = std::chrono::milliseconds(100);
constexpr std::size_t dead_letters_per_batch = 100;
constexpr std::size_t dead_letter_batch_bytes = 512 * 1024;
constexpr auto dead_letter_timeout = std::chrono::seconds(10);
constexpr auto dead_letter_max_pause = std::chrono::seconds(30);
constexpr std::int64_t dlq_window_ms = 7LL * 24 * 3600 * 1000;  // a week, as the SDK's DLQ topics

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// On shard 0: creates DLQ topic `name` unless it exists: `partitions`
// partitions (the source topic's), a message-id window, marked
// dead.letter.topic (standalone mode).
asio::awaitable<std::optional<group::error>> ensure_dlq_topic(broker_state& b, std::string name, std::int32_t partitions) {
  if (b.controller().topics()->contains(name)) co_return std::nullopt;
  const meta::config_overrides overrides{{"dedup.window.ms", std::to_string(dlq_window_ms)},
                                         {"dead.letter.topic", "true"}};
  auto r = co_await create_topic_locally(b, name, partitions, 1, overrides, false);
  if (!r && r.error().code != meta::errc::topic_exists) {
    co_return group::error(r.error().code, fmt::format("creating DLQ topic {}: {}", name, r.error().message));
  }
  if (r) {
    logger().info("created DLQ topic {} with {} partitions", name, partitions);
    co_await publish_topics(b, b.store->snapshot());
  }
  co_return std::nullopt;
}

// On `tp`'s owner shard: appends the DLQ copies, acks=all.
asio::awaitable<partition_outcome> append_copies(shard& s, topic_partition tp, std::vector<std::byte> batch) {
  std::vector<std::span<std::byte>> batches{std::span<std::byte>(batch)};
  co_return co_await append_on_owner(s, std::move(tp), std::move(batches), -1,
                                     std::chrono::steady_clock::now() + dead_letter_timeout);
}

// On the coordinator's shard: the state last written for (group, tp), once
// the group is known to be a share group.
struct stored_state {
  std::optional<group::share_state> state;
  std::set<std::string> members;
  group::group_configs configs;
};

asio::awaitable<std::expected<stored_state, group::error>> read_state_on_owner(shard& s, std::int32_t partition,
                                                                              std::string group_id, topic_partition tp) {
  auto c = co_await s.groups().get(partition);
  if (!c) co_return std::unexpected(c.error());
  auto found = (*c)->find_share_group(group_id);
  if (!found) co_return std::unexpected(found.error());
  const group::group* g = *found;
  stored_state out;
  out.state = (*c)->share_state_of(group_id, tp);
  for (const auto& [id, m] : g->members) out.members.insert(id);
  out.configs = g->configs;
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
      asio::co_spawn(s_.io(), persist_logged(k.first, k.second), asio::detached);
    } else {
      dead_letter_if_due(k);
    }
  }
  groups_[group_id].members = std::move(members);
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
  groups_.try_emplace(k.first, known_group{state->members, state->configs});  // the hook may have told newer already
  const group::share_limits limits = limits_of(k.first);
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
  // Copies the broker died before writing (or recording) go now.
  dead_letter_if_due(k);
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
  auto e = co_await run_on(owner, write_state_on_owner(owner, (*where)->partition.value(), group_id, tp, std::move(st)));
  // Archived records get their DLQ copy only once the archive is durable.
  if (!e) dead_letter_if_due(key{std::move(group_id), std::move(tp)});
  co_return e;
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
  while (!stopped_ && !b_.stopping.load()) {
    auto it = slots_.find(k);
    if (it == slots_.end() || !it->second.sp) co_return;  // unloaded: its flag went with it
    const std::string dlq = group::dlq_topic_of(groups_[k.first].configs);
    auto pending = it->second.sp->dead_letters();
    if (dlq.empty() || pending.empty()) break;
    auto done = co_await write_dead_letters(k, dlq, std::move(pending));
    if (done) {
      auto again = slots_.find(k);
      if (again == slots_.end() || !again->second.sp) co_return;
      for (offset at : *done) again->second.sp->dead_lettered(at);
      logger().info("[{}] share group {}: {} archived records copied to DLQ topic {}", k.second, k.first, done->size(), dlq);
      // Not written: the next start copies them again and the DLQ's window drops the copies.
      auto e = co_await persist(k.first, k.second);
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
  if (auto it = slots_.find(k); it != slots_.end()) it->second.dead_lettering = false;
}

asio::awaitable<std::expected<std::vector<offset>, group::error>> share_partitions::write_dead_letters(
    key k, std::string dlq, std::vector<std::pair<offset, std::uint16_t>> pending) {
  const topic_partition& src = k.second;
  auto topics = s_.topics();
  auto t = topics->find(dlq);
  if (t == topics->end()) {
    auto source = topics->find(src.topic);
    const std::int32_t n = source == topics->end() ? 1 : source->second.partitions;
    if (auto e = co_await run_on(b_.controller(), ensure_dlq_topic(b_, dlq, n))) co_return std::unexpected(*e);
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
    shard& owner = b_.owner(dest);
    auto out = co_await run_on(owner, append_copies(owner, dest, b.finish()));
    if (out.error != wire::ErrorCode::NONE) {
      co_return std::unexpected(group::error(errc::coordinator_not_available,
                                             fmt::format("{}: {} ({})", dest, out.message, wire::EnumNameErrorCode(out.error))));
    }
  }
  co_return done;
}

}  // namespace runnel::net
