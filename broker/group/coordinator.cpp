#include "broker/group/coordinator.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "broker/group/group_config.h"
#include "broker/group/logger.h"
#include "broker/group/records.h"
#include "schemas/batch.h"

namespace runnel::group {

namespace {

constexpr auto tick = std::chrono::milliseconds(100);

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

error stopped_error(std::int32_t p) {
  return error(errc::not_coordinator, fmt::format("the coordinator of __consumer_offsets/{} moved", p));
}

// A group with no record of any kind left in the log is gone.
bool holds_nothing(const group& g) { return !g.has_record && g.offsets.empty() && g.share_states.empty(); }

}  // namespace

coordinator::coordinator(asio::any_io_executor ex, std::int32_t partition, group_limits limits, hooks h)
    : ex_(ex), partition_(partition), limits_(std::move(limits)), hooks_(std::move(h)), timer_(ex) {}

coordinator::~coordinator() = default;

void coordinator::replay(std::span<const std::byte> key, std::optional<std::span<const std::byte>> value) {
  auto k = decode_key(key);
  if (!k) {
    logger().warn("__consumer_offsets/{}: skipping a record whose key is not a group record ({} bytes)", partition_,
                  key.size());
    return;
  }
  if (auto* ok = std::get_if<offset_key>(&*k)) {
    auto& g = groups_[ok->group];
    g.id = ok->group;
    if (!value) {
      g.offsets.erase(ok->tp);
    } else if (auto v = decode_offset_value(*value)) {
      g.offsets[ok->tp] = std::move(*v);
    } else {
      logger().warn("__consumer_offsets/{}: group {}: an offset of {} does not decode; skipped", partition_, ok->group,
                    ok->tp);
    }
    if (holds_nothing(g)) groups_.erase(ok->group);
    return;
  }
  if (auto* sk = std::get_if<share_state_key>(&*k)) {
    auto& g = groups_[sk->group];
    g.id = sk->group;
    if (!value) {
      g.share_states.erase(sk->tp);
    } else if (auto v = decode_share_state_value(*value)) {
      g.share_states[sk->tp] = std::move(*v);
    } else {
      logger().warn("__consumer_offsets/{}: group {}: the share state of {} does not decode; skipped", partition_,
                    sk->group, sk->tp);
    }
    if (holds_nothing(g)) groups_.erase(sk->group);
    return;
  }
  const auto& gk = std::get<group_key>(*k);
  auto& g = groups_[gk.group];
  g.id = gk.group;
  if (!value) {
    g.members.clear();
    g.target.clear();
    g.subscribed.clear();
    g.has_record = false;
  } else if (!decode_group_value(*value, g)) {
    logger().warn("__consumer_offsets/{}: group {}: its metadata does not decode; skipped", partition_, gk.group);
  }
  if (holds_nothing(g)) groups_.erase(gk.group);
}

void coordinator::start() {
  if (started_) return;
  started_ = true;
  const auto now = clock_type::now();
  for (auto& [id, g] : groups_) restart_deadlines(g, now);
  asio::co_spawn(ex_, [self = shared_from_this()]() { return self->timer_loop(); }, asio::detached);
}

void coordinator::stop() {
  stopped_ = true;
  timer_.cancel();
}

asio::awaitable<std::optional<error>> coordinator::append(std::vector<std::byte> batch) {
  auto e = co_await hooks_.append(std::move(batch));
  if (e && !stopped_) {
    logger().warn("__consumer_offsets/{}: a write failed ({}); unloading the coordinator", partition_, e->message);
    stop();
    if (hooks_.failed) hooks_.failed(*e);
  }
  co_return e;
}

asio::awaitable<std::optional<error>> coordinator::persist(const std::string& group_id, std::vector<std::byte> value) {
  schemas::batch_builder b(value.size() + 256);
  auto key = encode_key(group_key{group_id});
  b.add(std::span<const std::byte>(key), std::span<const std::byte>(value), timestamp_ms(wall_ms()));
  co_return co_await append(b.finish());
}

template <typename Beat>
std::expected<coordinator::beaten, error> coordinator::beat_group(const std::string& group_id, group_type type, Beat beat) {
  auto [it, fresh] = groups_.try_emplace(group_id);
  group& g = it->second;
  g.id = group_id;
  // A group with only offsets (or share states) takes the type of its
  // first member, once the member is in.
  if (!fresh && (g.has_record || !g.members.empty()) && g.type != type) {
    return std::unexpected(error(errc::inconsistent_group_type, fmt::format("group {} is a {} group, not a {} group",
                                                                            group_id, type_name(g.type), type_name(type))));
  }
  beaten out;
  if (g.has_record) out.before = encode_group_value(g);
  auto result = beat(g);
  if (!result) {
    if (fresh) groups_.erase(it);
    return std::unexpected(result.error());
  }
  g.type = type;
  out.result = std::move(*result);
  return out;
}

asio::awaitable<std::optional<error>> coordinator::persist_if_changed(std::string group_id, std::vector<std::byte> before) {
  auto self = shared_from_this();
  auto it = groups_.find(group_id);
  if (it == groups_.end()) co_return std::nullopt;
  std::vector<std::byte> after = encode_group_value(it->second);
  if (after == before) co_return std::nullopt;
  it->second.has_record = true;
  co_return co_await persist(group_id, std::move(after));
}

asio::awaitable<std::expected<heartbeat_result, error>> coordinator::heartbeat(std::string group_id, heartbeat_request r) {
  auto self = shared_from_this();
  if (stopped_) co_return std::unexpected(stopped_error(partition_));
  auto b = beat_group(group_id, group_type::consumer, [&](group& g) {
    return ::runnel::group::heartbeat(g, r, hooks_.topics(), clock_type::now(), limits_);
  });
  if (!b) co_return std::unexpected(b.error());
  if (auto e = co_await persist_if_changed(group_id, std::move(b->before))) co_return std::unexpected(*e);
  co_return std::move(b->result);
}

asio::awaitable<std::expected<heartbeat_result, error>> coordinator::share_heartbeat(std::string group_id,
                                                                                     share_heartbeat_request r) {
  auto self = shared_from_this();
  if (stopped_) co_return std::unexpected(stopped_error(partition_));
  auto b = beat_group(group_id, group_type::share, [&](group& g) {
    return ::runnel::group::share_heartbeat(g, r, hooks_.topics(), clock_type::now(), limits_);
  });
  if (!b) co_return std::unexpected(b.error());
  if (auto e = co_await persist_if_changed(group_id, std::move(b->before))) co_return std::unexpected(*e);
  if (auto it = groups_.find(group_id); it != groups_.end()) announce_share_group(it->second);
  co_return std::move(b->result);
}

asio::awaitable<std::optional<error>> coordinator::write_share_state(std::string group_id, topic_partition tp,
                                                                     share_state s) {
  auto self = shared_from_this();
  if (stopped_) co_return stopped_error(partition_);
  auto it = groups_.find(group_id);
  if (it == groups_.end()) co_return error(errc::group_not_found, fmt::format("share group {}", group_id));
  if (it->second.type != group_type::share) {
    co_return error(errc::inconsistent_group_type, fmt::format("group {} is a consumer group, not a share group", group_id));
  }
  const topic_counts topics = hooks_.topics();
  auto t = topics.find(tp.topic);
  if (t == topics.end() || tp.partition.value() < 0 || tp.partition.value() >= t->second) {
    co_return error(errc::unknown_topic_or_partition, fmt::format("unknown topic or partition {}", tp));
  }
  if (auto e = fence(group_id, tp, s.leader_epoch)) co_return e;
  schemas::batch_builder b;
  auto key = encode_key(share_state_key{group_id, tp});
  auto value = encode_share_state_value(s);
  const timestamp_ms now(wall_ms());
  b.add(std::span<const std::byte>(key), std::span<const std::byte>(value), now);
  const std::uint64_t seq = next_seq_++;
  // Counted until applied (or failed): a new leader's read waits for it.
  struct in_flight {
    share_fence& f;
    explicit in_flight(share_fence& x) : f(x) { ++f.writing; }
    ~in_flight() { --f.writing; }
    in_flight(const in_flight&) = delete;
    in_flight& operator=(const in_flight&) = delete;
  } counted(share_fences_[std::pair{group_id, tp}]);
  if (auto e = co_await append(b.finish())) co_return e;
  if (auto removed = removed_seq_.find(group_id); removed != removed_seq_.end() && removed->second > seq) co_return std::nullopt;
  auto& applied = share_applied_seq_[std::pair{group_id, tp}];
  if (applied > seq) co_return std::nullopt;
  applied = seq;
  auto& dest = groups_[group_id];
  dest.id = group_id;
  dest.share_states[tp] = std::move(s);
  co_return std::nullopt;
}

asio::awaitable<std::optional<error>> coordinator::alter_configs(std::string group_id, group_configs changes,
                                                                 bool validate_only) {
  auto self = shared_from_this();
  if (stopped_) co_return stopped_error(partition_);
  auto it = groups_.find(group_id);
  const group* g = it == groups_.end() ? nullptr : &it->second;
  // Committed offsets without a group record are a consumer group's too.
  const bool consumer = g != nullptr && (g->has_record || !g->members.empty() || !g->offsets.empty()) &&
                        g->type != group_type::share;
  if (consumer) {
    co_return error(errc::inconsistent_group_type,
                    fmt::format("group {} is a consumer group: only share groups have configs", group_id));
  }
  auto next = apply_group_config_changes(g != nullptr ? g->configs : group_configs{}, changes);
  if (!next) co_return next.error();
  if (validate_only) co_return std::nullopt;
  group& dest = groups_[group_id];
  dest.id = group_id;
  std::vector<std::byte> before;
  if (dest.has_record) before = encode_group_value(dest);
  dest.type = group_type::share;
  dest.configs = std::move(*next);
  if (auto e = co_await persist_if_changed(group_id, std::move(before))) co_return e;
  if (auto done = groups_.find(group_id); done != groups_.end()) {
    logger().info("share group {}: configs altered ({} overrides)", group_id, done->second.configs.size());
    announce_share_group(done->second);
  }
  co_return std::nullopt;
}

std::optional<error> coordinator::fence(const std::string& group_id, const topic_partition& tp, std::int32_t epoch) {
  auto& f = share_fences_[std::pair{group_id, tp}];
  std::int32_t newest = f.epoch;
  if (auto stored = share_state_of(group_id, tp)) newest = std::max(newest, stored->leader_epoch);
  if (epoch < newest) {
    return error(errc::fenced_leader_epoch, fmt::format("share group {}: {} is led in epoch {} now, not {}", group_id, tp,
                                                        newest, epoch));
  }
  f.epoch = epoch;
  return std::nullopt;
}

asio::awaitable<std::expected<std::optional<share_state>, error>> coordinator::read_share_state(
    std::string group_id, topic_partition tp, std::int32_t leader_epoch) {
  auto self = shared_from_this();
  if (stopped_) co_return std::unexpected(stopped_error(partition_));
  if (auto g = find_share_group(group_id); !g) co_return std::unexpected(g.error());
  if (auto e = fence(group_id, tp, leader_epoch)) co_return std::unexpected(*e);
  asio::steady_timer pause(ex_);
  while (share_fences_[std::pair{group_id, tp}].writing > 0) {
    if (stopped_) co_return std::unexpected(stopped_error(partition_));
    pause.expires_after(std::chrono::milliseconds(1));
    co_await pause.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  }
  co_return share_state_of(group_id, tp);
}

std::optional<share_state> coordinator::share_state_of(std::string_view group_id, const topic_partition& tp) const {
  auto it = groups_.find(group_id);
  if (it == groups_.end()) return std::nullopt;
  auto s = it->second.share_states.find(tp);
  if (s == it->second.share_states.end()) return std::nullopt;
  return s->second;
}

asio::awaitable<std::vector<std::optional<error>>> coordinator::commit(std::string group_id, std::string member_id,
                                                                       std::int32_t member_epoch,
                                                                       std::vector<commit_entry> entries) {
  auto self = shared_from_this();
  std::vector<std::optional<error>> out(entries.size());
  if (stopped_) {
    for (auto& o : out) o = stopped_error(partition_);
    co_return out;
  }
  auto it = groups_.find(group_id);
  if (it == groups_.end() && !member_id.empty()) {
    for (auto& o : out) o = error(errc::unknown_member, fmt::format("member '{}': group {} has no members", member_id, group_id));
    co_return out;
  }
  const topic_counts topics = hooks_.topics();
  group empty;
  empty.id = group_id;
  const group& g = it != groups_.end() ? it->second : empty;
  if (g.type == group_type::share) {
    // Share groups acknowledge records instead (share_partition.h).
    for (auto& o : out) o = error(errc::inconsistent_group_type, fmt::format("group {} is a share group: it commits no offsets", group_id));
    co_return out;
  }
  schemas::batch_builder b;
  std::vector<std::size_t> accepted;
  const std::int64_t now = wall_ms();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    auto& e = entries[i];
    auto t = topics.find(e.tp.topic);
    if (t == topics.end() || e.tp.partition.value() < 0 || e.tp.partition.value() >= t->second) {
      out[i] = error(errc::unknown_topic_or_partition, fmt::format("unknown topic or partition {}", e.tp));
      continue;
    }
    if (e.value.offset < 0) {
      out[i] = error(errc::invalid_request, fmt::format("{}: offset {} is negative", e.tp, e.value.offset));
      continue;
    }
    if (e.value.metadata.size() > max_commit_metadata_bytes) {
      out[i] = error(errc::invalid_request, fmt::format("{}: commit metadata of {} bytes is over {}", e.tp,
                                                        e.value.metadata.size(), max_commit_metadata_bytes));
      continue;
    }
    if (auto refused = check_commit(g, member_id, member_epoch, e.tp)) {
      out[i] = std::move(refused);
      continue;
    }
    e.value.commit_timestamp_ms = now;
    auto key = encode_key(offset_key{group_id, e.tp});
    auto value = encode_offset_value(e.value);
    b.add(std::span<const std::byte>(key), std::span<const std::byte>(value), timestamp_ms(now));
    accepted.push_back(i);
  }
  if (accepted.empty()) co_return out;
  const std::uint64_t seq = next_seq_++;
  if (auto e = co_await append(b.finish())) {
    for (std::size_t i : accepted) out[i] = *e;
    co_return out;
  }
  // A deletion issued after this commit finished first: its tombstones
  // follow this commit in the log, so the group stays deleted.
  if (auto removed = removed_seq_.find(group_id); removed != removed_seq_.end() && removed->second > seq) co_return out;
  // Applied once durable, in commit order (a later commit that finished
  // first is not overwritten).
  auto& dest = groups_[group_id];
  dest.id = group_id;
  for (std::size_t i : accepted) {
    auto& applied = dest.applied_seq[entries[i].tp];
    if (applied > seq) continue;
    applied = seq;
    dest.offsets[entries[i].tp] = std::move(entries[i].value);
  }
  co_return out;
}

std::map<topic_partition, committed_offset> coordinator::committed(
    std::string_view group_id, const std::optional<std::vector<topic_partition>>& tps) const {
  std::map<topic_partition, committed_offset> out;
  auto it = groups_.find(group_id);
  if (it == groups_.end()) return out;
  if (!tps) return it->second.offsets;
  for (const auto& tp : *tps) {
    auto o = it->second.offsets.find(tp);
    if (o != it->second.offsets.end()) out.emplace(tp, o->second);
  }
  return out;
}

asio::awaitable<std::optional<error>> coordinator::remove_group(std::string group_id) {
  auto self = shared_from_this();
  if (stopped_) co_return stopped_error(partition_);
  auto it = groups_.find(group_id);
  if (it == groups_.end()) co_return error(errc::group_not_found, fmt::format("group {}", group_id));
  if (!it->second.members.empty()) {
    co_return error(errc::non_empty_group,
                    fmt::format("group {} has {} members; it can be deleted once they left", group_id,
                                it->second.members.size()));
  }
  schemas::batch_builder b;
  const timestamp_ms now(wall_ms());
  for (const auto& [tp, v] : it->second.offsets) {
    auto key = encode_key(offset_key{group_id, tp});
    b.add(std::span<const std::byte>(key), std::nullopt, now);
  }
  for (const auto& [tp, s] : it->second.share_states) {
    auto key = encode_key(share_state_key{group_id, tp});
    b.add(std::span<const std::byte>(key), std::nullopt, now);
  }
  auto key = encode_key(group_key{group_id});
  b.add(std::span<const std::byte>(key), std::nullopt, now);
  const std::uint64_t seq = next_seq_++;
  if (auto e = co_await append(b.finish())) co_return e;
  removed_seq_[group_id] = seq;
  groups_.erase(group_id);
  logger().info("group {} deleted", group_id);
  co_return std::nullopt;
}

void coordinator::announce_share_group(const group& g) const {
  if (g.type != group_type::share || !hooks_.share_group) return;
  std::set<std::string> ids;
  for (const auto& [id, m] : g.members) ids.insert(id);
  hooks_.share_group(g.id, std::move(ids), g.configs);
}

const group* coordinator::find(std::string_view group_id) const {
  auto it = groups_.find(group_id);
  return it == groups_.end() ? nullptr : &it->second;
}

std::expected<const group*, error> coordinator::find_share_group(std::string_view group_id) const {
  const group* g = find(group_id);
  if (g == nullptr || (g->members.empty() && !g->has_record)) {
    return std::unexpected(
        error(errc::group_not_found, fmt::format("share group {} (members join it with ShareGroupHeartbeat)", group_id)));
  }
  if (g->type != group_type::share) {
    return std::unexpected(
        error(errc::inconsistent_group_type, fmt::format("group {} is a consumer group, not a share group", group_id)));
  }
  return g;
}

asio::awaitable<void> coordinator::timer_loop() {
  auto self = shared_from_this();
  while (!stopped_) {
    timer_.expires_after(tick);
    co_await timer_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    if (stopped_) break;
    const auto now = clock_type::now();
    std::vector<std::string> changed;
    topic_counts topics;
    bool have_topics = false;
    for (auto& [id, g] : groups_) {
      auto d = next_deadline(g);
      if (!d || *d > now) continue;
      if (!have_topics) {
        topics = hooks_.topics();
        have_topics = true;
      }
      const std::int32_t epoch = g.epoch;
      const bool removed = g.type == group_type::share ? !share_expire(g, topics, now).empty()
                                                       : !expire(g, topics, now, limits_).empty();
      if (removed || g.epoch != epoch) changed.push_back(id);
    }
    for (const auto& id : changed) {
      auto it = groups_.find(id);
      if (it == groups_.end()) continue;
      if (co_await persist(id, encode_group_value(it->second))) break;
      if (auto done = groups_.find(id); done != groups_.end()) announce_share_group(done->second);
    }
  }
}

}  // namespace runnel::group
