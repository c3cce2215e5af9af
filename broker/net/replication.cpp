#include "broker/net/replication.h"

#include <algorithm>

#include <fmt/ranges.h>

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include "broker/net/context.h"
#include "broker/net/logger.h"
#include "broker/net/peer_client.h"
#include "schemas/batch.h"
#include "schemas/host_port.h"

namespace runnel::net {

namespace {

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr auto replica_fetch_wait = std::chrono::milliseconds(500);
constexpr std::uint32_t replica_fetch_partition_bytes = 4U << 20;

bool contains(const std::vector<std::int32_t>& v, std::int32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_after(d);
  co_await t.async_wait(use_tuple);
}

// On shard 0 (the membership's): one partition state write.
asio::awaitable<std::error_code> write_state_on_controller(broker_state& b, cluster::state_change c) {
  if (!b.cluster) co_return make_error_code(std::errc::operation_canceled);
  co_return co_await b.cluster->write_state(c);
}

}  // namespace

struct replica_manager::fetcher {
  fetcher(std::int32_t id, std::unique_ptr<peer_client> w) : leader(id), wire(std::move(w)) {}
  std::int32_t leader;
  std::unique_ptr<peer_client> wire;
  std::set<topic_partition> parts;
  bool stop = false;
};

replica_manager::replica_manager(broker_state& b, shard& s) : b_(b), s_(s), me_(b.cfg.broker_id) {}

replica_manager::~replica_manager() { *alive_ = false; }

void replica_manager::start() {
  isr_timer_ = std::make_unique<asio::steady_timer>(s_.io());
  asio::co_spawn(s_.io(), isr_loop(), asio::detached);
}

void replica_manager::stop() {
  stopped_ = true;
  if (isr_timer_) isr_timer_->cancel();
  for (auto& [id, f] : fetchers_) {
    f->stop = true;
    f->wire->close();  // a long poll or a connect to a dead leader ends now
  }
  fetchers_.clear();  // each loop holds its fetcher until it ends
  for (auto& [tp, r] : replicas_) {
    auto waiters = std::exchange(r->ack_waiters, {});
    for (auto& [o, w] : waiters) w(wire::ErrorCode::BROKER_SHUTTING_DOWN);
  }
}

std::shared_ptr<replica> replica_manager::find(const topic_partition& tp) const {
  auto it = replicas_.find(tp);
  return it == replicas_.end() ? nullptr : it->second;
}

std::optional<std::string> replica_manager::address_of(std::int32_t id) const {
  if (!brokers_) return std::nullopt;
  auto it = brokers_->find(id);
  if (it == brokers_->end()) return std::nullopt;
  return it->second;
}

// --- roles --------------------------------------------------------------------

void replica_manager::apply(const meta::topics_snapshot& topics,
                            const std::shared_ptr<const std::map<std::int32_t, std::string>>& brokers,
                            const std::shared_ptr<const std::set<std::string>>& listed) {
  if (stopped_) return;
  if (brokers) brokers_ = brokers;
  std::set<topic_partition> seen;
  for (const auto& [name, t] : *topics) {
    for (std::size_t p = 0; p < t.leadership.size(); ++p) {
      const auto& st = t.leadership[p];
      topic_partition tp(name, partition_id(static_cast<std::int32_t>(p)));
      if (!s_.owns(tp) || !contains(st.replicas, me_)) continue;
      seen.insert(tp);
      auto& slot = replicas_[tp];
      if (!slot) slot = std::make_shared<replica>();
      replica& r = *slot;
      r.replicas = st.replicas;
      r.min_isr = t.config.min_insync_replicas;
      if (st.version < 0) continue;  // state not read yet
      if (st.version != r.version) r.pending_isr.clear();  // the proposal came back, or lost
      r.isr = st.isr;
      r.version = st.version;
      if (st.leader == me_) {
        if (!r.leader || r.epoch != st.leader_epoch) {
          r.epoch = st.leader_epoch;
          r.leader_id = me_;
          become_leader(tp, r);
        }
        recompute(tp, r);  // the ISR may have changed
      } else {
        if (r.leader || r.epoch != st.leader_epoch || r.leader_id != st.leader) {
          r.epoch = st.leader_epoch;
          r.leader_id = st.leader;
          become_follower(tp, r);
        }
        if (r.leader_id >= 0) {
          auto& f = fetchers_[r.leader_id];
          if (!f && brokers_ && brokers_->contains(r.leader_id)) {
            auto hp = schemas::parse_host_port(brokers_->at(r.leader_id));
            if (hp) {
              f = std::make_shared<fetcher>(
                  r.leader_id, std::make_unique<peer_client>(s_.io().get_executor(), hp->first, hp->second,
                                                             "replica-" + std::to_string(me_),
                                                             std::chrono::milliseconds(10'000)));
              asio::co_spawn(s_.io(), fetch_loop(f), asio::detached);
            }
          }
          if (f) {
            f->parts.insert(tp);
          } else {
            fetchers_.erase(r.leader_id);
          }
        }
      }
    }
  }
  for (auto it = replicas_.begin(); it != replicas_.end();) {
    if (seen.contains(it->first)) {
      ++it;
      continue;
    }
    const topic_partition tp = it->first;
    detach(tp);
    auto waiters = std::exchange(it->second->ack_waiters, {});
    for (auto& [o, w] : waiters) w(wire::ErrorCode::NOT_LEADER);
    it = replicas_.erase(it);
    if (!topics->contains(tp.topic)) remove_log(tp);  // the topic was deleted: its data goes too
  }
  if (listed && b_.remove_stray_logs.load()) {
    // Logs left from before this broker's last start whose partition it no
    // longer holds: the topic was deleted (or deleted and created again,
    // without this broker) while it was down. A listed topic whose node did
    // not decode is not in `topics`: its logs stay.
    std::set<topic_partition> local;
    for (const auto& tp : s_.logs().partitions()) local.insert(tp);
    for (const auto& [tp, why] : s_.logs().offline()) local.insert(tp);
    for (const auto& tp : local) {
      if (seen.contains(tp) || removing_.contains(tp)) continue;
      if (listed->contains(tp.topic) && !topics->contains(tp.topic)) continue;
      logger().warn("[{}] stray log: this broker is not a replica of it in ZooKeeper; removing it", tp);
      remove_log(tp);
    }
  }
}

void replica_manager::remove_log(const topic_partition& tp) {
  if (!removing_.insert(tp).second) return;
  asio::co_spawn(
      s_.io(),
      [](shard& s, topic_partition doomed, std::shared_ptr<bool> alive,
         std::set<topic_partition>* removing) -> asio::awaitable<void> {
        if (s.logs().get(doomed) != nullptr || s.logs().offline().contains(doomed)) {
          if (auto ec = co_await s.logs().remove(doomed)) logger().error("[{}] cannot delete log: {}", doomed, ec.message());
        }
        if (*alive) removing->erase(doomed);
      }(s_, tp, alive_, &removing_),
      asio::detached);
}

void replica_manager::become_leader(const topic_partition& tp, replica& r) {
  detach(tp);
  const auto now = clock_type::now();
  r.leader = true;
  r.followers.clear();
  for (auto id : r.replicas) {
    // A new leader gives every follower a full lag period to show up.
    if (id != me_) r.followers[id] = follower_progress{offset(0), offset(0), now, now, offset(0)};
  }
  r.isr_write_in_flight = false;
  logger().info("[{}] leader in epoch {} (isr {})", tp, r.epoch, fmt::join(r.isr, ","));
}

void replica_manager::become_follower(const topic_partition& tp, replica& r) {
  detach(tp);
  auto waiters = std::exchange(r.ack_waiters, {});
  for (auto& [o, w] : waiters) w(wire::ErrorCode::NOT_LEADER);
  r.leader = false;
  r.followers.clear();
  r.needs_truncation = true;
  logger().info("[{}] follower of {} in epoch {}", tp, r.leader_id, r.epoch);
}

void replica_manager::detach(const topic_partition& tp) {
  for (auto it = fetchers_.begin(); it != fetchers_.end();) {
    it->second->parts.erase(tp);
    if (it->second->parts.empty()) {
      it->second->stop = true;
      it->second->wire->close();
      it = fetchers_.erase(it);
    } else {
      ++it;
    }
  }
}

// --- leader -------------------------------------------------------------------

void replica_manager::recompute(const topic_partition& tp, replica& r) {
  if (!r.leader) return;
  storage::log* l = s_.logs().get(tp);
  offset min_leo = l != nullptr ? l->log_end_offset() : offset(0);
  offset min_durable = l != nullptr ? l->flushed_offset() : offset(0);
  std::vector<std::int32_t> members = r.isr;
  for (auto id : r.pending_isr) {
    if (!contains(members, id)) members.push_back(id);
  }
  for (auto id : members) {
    if (id == me_) continue;
    auto it = r.followers.find(id);
    const offset leo = it == r.followers.end() ? offset(0) : it->second.leo;
    const offset durable = it == r.followers.end() ? offset(0) : it->second.durable;
    min_leo = std::min(min_leo, leo);
    min_durable = std::min(min_durable, durable);
  }
  if (min_leo > r.hw) {
    r.hw = min_leo;
    s_.notify(tp, r.hw);  // consumers waiting at the old high watermark
  }
  if (r.ack_waiters.empty()) return;
  if (static_cast<std::int32_t>(r.isr.size()) < r.min_isr) {
    auto waiters = std::exchange(r.ack_waiters, {});
    for (auto& [o, w] : waiters) w(wire::ErrorCode::NOT_ENOUGH_REPLICAS);
    return;
  }
  auto end = r.ack_waiters.upper_bound(min_durable);
  std::vector<std::move_only_function<void(wire::ErrorCode)>> done;
  for (auto it = r.ack_waiters.begin(); it != end;) {
    done.push_back(std::move(it->second));
    it = r.ack_waiters.erase(it);
  }
  for (auto& w : done) w(wire::ErrorCode::NONE);
}

void replica_manager::appended(const topic_partition& tp) {
  if (auto r = find(tp)) recompute(tp, *r);
}

asio::awaitable<std::pair<wire::ErrorCode, std::int32_t>> replica_manager::wait_replicated(const topic_partition& tp,
                                                                                           offset end,
                                                                                           clock_type::time_point deadline) {
  auto r = find(tp);
  if (!r || !r->leader) co_return std::pair{wire::ErrorCode::NOT_LEADER, 0};
  struct waiting {
    explicit waiting(asio::any_io_executor ex) : timer(std::move(ex)) {}
    asio::steady_timer timer;
    bool done = false;
    wire::ErrorCode result = wire::ErrorCode::REQUEST_TIMED_OUT;
  };
  auto w = std::make_shared<waiting>(s_.io().get_executor());
  r->ack_waiters.emplace(end, [w](wire::ErrorCode e) {
    if (w->done) return;
    w->done = true;
    w->result = e;
    w->timer.cancel();
  });
  recompute(tp, *r);
  if (!w->done) {
    w->timer.expires_at(deadline);
    co_await w->timer.async_wait(use_tuple);
  }
  w->done = true;  // a late completion is a no-op
  co_return std::pair{w->result, static_cast<std::int32_t>(r->isr.size())};
}

wire::ErrorCode replica_manager::follower_fetched(const topic_partition& tp, std::int32_t replica_id, std::int32_t epoch,
                                                  offset fetch_offset, offset durable) {
  auto rp = find(tp);
  if (!rp || !rp->leader) return wire::ErrorCode::NOT_LEADER;
  replica& r = *rp;
  if (epoch != r.epoch) return wire::ErrorCode::FENCED_LEADER_EPOCH;
  auto it = r.followers.find(replica_id);
  if (it == r.followers.end()) return wire::ErrorCode::INVALID_REQUEST;  // not a replica of this partition
  auto& fp = it->second;
  storage::log* l = s_.logs().get(tp);
  const offset leo = l != nullptr ? l->log_end_offset() : offset(0);
  const auto now = clock_type::now();
  if (fetch_offset >= leo) {
    fp.caught_up = now;
  } else if (fetch_offset >= fp.leader_leo_at_last_fetch) {
    fp.caught_up = fp.last_fetch;
  }
  fp.leo = std::min(fetch_offset, leo);
  fp.durable = std::min(durable, fp.leo);
  fp.last_fetch = now;
  fp.leader_leo_at_last_fetch = leo;
  if (!contains(r.isr, replica_id) && fp.leo >= r.hw && fp.caught_up == now) {
    auto isr = r.isr;
    isr.push_back(replica_id);
    propose_isr(tp, r, std::move(isr), "caught up: back into the ISR");
  }
  recompute(tp, r);
  return wire::ErrorCode::NONE;
}

void replica_manager::propose_isr(const topic_partition& tp, replica& r, std::vector<std::int32_t> isr, const char* why) {
  if (r.isr_write_in_flight || b_.stopping.load()) return;
  r.isr_write_in_flight = true;
  // An expansion counts from now on (see replica::pending_isr); a shrink
  // only once ZooKeeper has it.
  if (isr.size() > r.isr.size()) r.pending_isr = isr;
  cluster::state_change c{tp.topic, tp.partition.value(), cluster::leader_state{me_, r.epoch, std::move(isr)}, r.version,
                          fmt::format("leader {}: {}", me_, why)};
  std::weak_ptr<bool> alive = alive_;
  asio::co_spawn(
      s_.io(),
      [](replica_manager& self, std::weak_ptr<bool> alive_flag, topic_partition p,
         cluster::state_change change) -> asio::awaitable<void> {
        auto ec = co_await run_on(self.b_.controller(), write_state_on_controller(self.b_, change));
        if (alive_flag.expired() || !*alive_flag.lock()) co_return;
        if (ec) logger().info("[{}] ISR change not written ({}); the next state decides", p, ec.message());
        if (auto cur = self.find(p)) {
          cur->isr_write_in_flight = false;
          // A failed expansion keeps counting until the next state arrives
          // (apply clears it): the write may have landed after all.
        }
      }(*this, alive, tp, std::move(c)),
      asio::detached);
}

asio::awaitable<void> replica_manager::isr_loop() {
  const std::shared_ptr<bool> alive = alive_;
  const auto lag = b_.cfg.replica_lag_time_max;
  while (!stopped_) {
    isr_timer_->expires_after(std::max<std::chrono::milliseconds>(std::chrono::milliseconds(50), lag / 4));
    co_await isr_timer_->async_wait(use_tuple);
    if (!*alive || stopped_) co_return;
    const auto now = clock_type::now();
    for (auto& [tp, rp] : replicas_) {
      replica& r = *rp;
      if (!r.leader) continue;
      std::vector<std::int32_t> keep;
      for (auto id : r.isr) {
        auto it = r.followers.find(id);
        if (id == me_ || (it != r.followers.end() && now - it->second.caught_up <= lag)) keep.push_back(id);
      }
      if (!contains(keep, me_)) keep.insert(keep.begin(), me_);
      if (keep.size() < r.isr.size()) propose_isr(tp, r, std::move(keep), "followers lagging: out of the ISR");
    }
  }
}

// --- follower -----------------------------------------------------------------

asio::awaitable<void> replica_manager::fetch_loop(std::shared_ptr<fetcher> f) {
  const std::shared_ptr<bool> alive = alive_;
  while (*alive && !f->stop && !stopped_) {
    std::vector<topic_partition> to_truncate;
    for (const auto& tp : f->parts) {
      auto r = find(tp);
      if (r && !r->leader && r->needs_truncation) to_truncate.push_back(tp);
    }
    for (const auto& tp : to_truncate) {
      co_await truncate(*f, tp);
      if (!*alive || f->stop || stopped_) co_return;
    }
    co_await fetch_once(*f);
  }
}

asio::awaitable<void> replica_manager::truncate(fetcher& f, const topic_partition& tp) {
  const std::shared_ptr<bool> alive = alive_;
  auto l = co_await s_.logs().get_or_create(tp);
  if (!*alive || f.stop) co_return;
  auto r = find(tp);
  if (!r || r->leader || r->leader_id != f.leader) co_return;
  if (!l) {
    logger().error("[{}] cannot open the log to follow {}: {}", tp, f.leader, l.error().message());
    co_await sleep_for(std::chrono::milliseconds(500));
    co_return;
  }
  storage::log* lp = *l;
  const std::int32_t epoch = r->epoch;
  offset target = lp->log_end_offset();
  bool settled = true;
  if (auto mine = lp->latest_epoch()) {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<flatbuffers::Offset<wire::EpochQuery>> qs{
        wire::CreateEpochQueryDirect(fbb, tp.topic.c_str(), tp.partition.value(), *mine, epoch)};
    auto body = wire::CreateOffsetForLeaderEpochRequestDirect(fbb, me_, &qs);
    auto resp = co_await f.wire->call(fbb, wire::Request::OffsetForLeaderEpochRequest, body.Union());
    if (!*alive || f.stop) co_return;
    lp = s_.logs().get(tp);  // a deleted topic takes its log away meanwhile
    if (lp == nullptr) co_return;
    const wire::EpochEnd* answer = nullptr;
    if (resp && resp->envelope != nullptr && resp->envelope->error() == wire::ErrorCode::NONE) {
      if (const auto* b = resp->envelope->body_as_OffsetForLeaderEpochResponse(); b != nullptr && b->partitions() != nullptr) {
        for (const auto* e : *b->partitions()) {
          if (e->partition() == tp.partition.value()) answer = e;
        }
      }
    }
    if (answer == nullptr || answer->error() != wire::ErrorCode::NONE) {
      // The leader does not know its role yet, or is gone: try again soon.
      co_await sleep_for(std::chrono::milliseconds(100));
      co_return;
    }
    if (answer->leader_epoch() < 0) {
      target = lp->log_start_offset();
    } else if (answer->leader_epoch() == *mine) {
      target = std::min(target, offset(answer->end_offset()));
    } else {
      auto my_end = lp->end_for_epoch(answer->leader_epoch());
      target = std::min({target, offset(answer->end_offset()), my_end ? my_end->second : lp->log_start_offset()});
      settled = !my_end || my_end->first == answer->leader_epoch();
    }
  } else if (lp->log_end_offset() > lp->log_start_offset()) {
    target = lp->log_start_offset();  // data without epochs: nothing to compare, refetch it
  }
  r = find(tp);
  if (!r || r->leader || r->epoch != epoch) co_return;  // the role moved on meanwhile
  if (target < lp->log_end_offset()) {
    logger().warn("[{}] truncating the divergent tail {} -> {} before following {} in epoch {}", tp,
                  lp->log_end_offset(), target, f.leader, epoch);
    r->truncating = true;
    auto ec = co_await lp->truncate(target);
    if (auto rr = find(tp)) rr->truncating = false;
    if (ec) {
      logger().error("[{}] truncation failed: {}", tp, ec.message());
      co_await sleep_for(std::chrono::milliseconds(500));
      co_return;
    }
  }
  // KIP-279: when the leader's answer names an epoch this log does not
  // have, the cut above went to the end of an older epoch of ours; ask
  // again until the epochs match.
  if (auto rr = find(tp); rr && rr->epoch == epoch) rr->needs_truncation = !settled;
}

asio::awaitable<void> replica_manager::fetch_once(fetcher& f) {
  const std::shared_ptr<bool> alive = alive_;
  flatbuffers::FlatBufferBuilder fbb;
  std::map<std::string, std::vector<flatbuffers::Offset<wire::FetchPartition>>> by_topic;
  std::size_t count = 0;
  for (const auto& tp : f.parts) {
    auto r = find(tp);
    storage::log* l = s_.logs().get(tp);
    if (!r || r->leader || r->needs_truncation || l == nullptr) continue;
    by_topic[tp.topic].push_back(wire::CreateFetchPartition(fbb, tp.partition.value(), l->log_end_offset().value(),
                                                            replica_fetch_partition_bytes, r->epoch,
                                                            l->flushed_offset().value()));
    ++count;
  }
  if (count == 0) {
    co_await sleep_for(std::chrono::milliseconds(50));
    co_return;
  }
  if (b_.storage_full()) {
    // No room below storage.min.free.bytes: fetch nothing until there is
    // (past replica.lag.time.max.ms the leader drops this broker from the
    // ISR; it catches up when space is back).
    co_await sleep_for(std::chrono::milliseconds(500));
    co_return;
  }
  std::vector<flatbuffers::Offset<wire::FetchTopic>> topics;
  for (auto& [name, parts] : by_topic) topics.push_back(wire::CreateFetchTopicDirect(fbb, name.c_str(), &parts));
  auto body = wire::CreateFetchRequestDirect(fbb, static_cast<std::int32_t>(replica_fetch_wait.count()), 1,
                                             static_cast<std::int32_t>(16U << 20), &topics, me_);
  auto resp = co_await f.wire->call(fbb, wire::Request::FetchRequest, body.Union());
  if (!*alive || f.stop || stopped_) co_return;
  if (!resp || resp->envelope == nullptr || resp->envelope->error() != wire::ErrorCode::NONE) {
    co_await sleep_for(std::chrono::milliseconds(200));  // the leader is away or busy: the next try reconnects
    co_return;
  }
  const auto* fr = resp->envelope->body_as_FetchResponse();
  if (fr == nullptr || fr->topics() == nullptr) co_return;
  const meta::topics_snapshot snapshot = s_.topics();  // `topic` below points into it across the awaits
  bool back_off = false;
  for (const auto* t : *fr->topics()) {
    if (t->name() == nullptr || t->partitions() == nullptr) continue;
    const meta::topic* topic = nullptr;
    if (auto it = snapshot->find(t->name()->string_view()); it != snapshot->end()) topic = &it->second;
    for (const auto* p : *t->partitions()) {
      topic_partition tp(t->name()->str(), partition_id(p->partition()));
      auto r = find(tp);
      storage::log* l = s_.logs().get(tp);
      if (!r || r->leader || r->leader_id != f.leader || r->needs_truncation || l == nullptr || topic == nullptr) continue;
      if (p->error() != wire::ErrorCode::NONE) {
        back_off = true;  // NOT_LEADER / FENCED_LEADER_EPOCH: wait for the new state
        if (p->error() != wire::ErrorCode::OFFSET_OUT_OF_RANGE) continue;
        if (p->log_start_offset() > l->log_end_offset().value()) {
          // The leader's retention passed us: start again at its log start.
          r->truncating = true;
          auto ec = co_await l->reset_to(offset(p->log_start_offset()));
          if (!*alive || stopped_) co_return;
          if (auto rr = find(tp)) rr->truncating = false;
          if (ec) logger().error("[{}] cannot restart the log at {}: {}", tp, p->log_start_offset(), ec.message());
        } else {
          r->needs_truncation = true;  // past the leader's end: a divergent tail
        }
        continue;
      }
      const std::int32_t epoch = r->epoch;
      const auto* ref = p->records();
      std::span<const std::byte> set;
      if (ref != nullptr && std::uint64_t{ref->offset()} + ref->length() <= resp->payload.size()) {
        set = resp->payload.subspan(ref->offset(), ref->length());
      }
      bool appended = false;
      while (!set.empty()) {
        auto head = schemas::decode_header(set);
        std::expected<schemas::batch_header, std::error_code> h =
            head && head->length <= set.size()
                ? schemas::verify_batch(set.first(head->length),
                                        schemas::verify_limits{std::max(topic->config.max_message_bytes, 1U << 20)})
                : std::unexpected(head ? make_error_code(std::errc::message_size) : head.error());
        if (!h) {
          logger().error("[{}] a batch from leader {} fails verification: {}", tp, f.leader, h.error().message());
          back_off = true;
          break;
        }
        auto batch = set.first(h->length);
        set = set.subspan(h->length);
        if (h->next_offset() <= l->log_end_offset()) continue;  // already here
        // Past our end: on a compacted topic the leader's cleaner removed the
        // offsets between (append_replica keeps the gap); anything else, or
        // a batch straddling our end, means the logs diverged.
        const bool compacted_gap = h->base_offset > l->log_end_offset() && topic->config.log.cleanup_compact;
        if (h->base_offset != l->log_end_offset() && !compacted_gap) {
          logger().warn("[{}] leader {} sent offset {} but the log ends at {}: truncating again", tp, f.leader,
                        h->base_offset, l->log_end_offset());
          r->needs_truncation = true;
          break;
        }
        // The response buffer is ours (resp keeps it alive); append_replica does not modify it.
        std::span<std::byte> mutable_batch(const_cast<std::byte*>(batch.data()), batch.size());
        auto a = co_await l->append_replica(mutable_batch);
        if (!*alive || stopped_) co_return;
        l = s_.logs().get(tp);  // a deleted topic takes its log away meanwhile
        if (l == nullptr) break;
        if (!a) {
          logger().error("[{}] replica append failed: {}", tp, a.error().message());
          back_off = true;
          break;
        }
        appended = true;
        r = find(tp);
        if (!r || r->epoch != epoch) break;
      }
      if (appended && l != nullptr) {
        // Durable before the next fetch reports it (acks=all counts it).
        if (auto ec = co_await l->flush(); ec) logger().error("[{}] replica flush failed: {}", tp, ec.message());
        if (!*alive || stopped_) co_return;
        l = s_.logs().get(tp);
      }
      if (l == nullptr) continue;
      if (auto rr = find(tp); rr && !rr->leader && rr->epoch == epoch) {
        rr->hw = std::max(rr->hw, std::min(offset(p->high_watermark()), l->log_end_offset()));
      }
    }
  }
  if (back_off) co_await sleep_for(std::chrono::milliseconds(100));
}

}  // namespace runnel::net
