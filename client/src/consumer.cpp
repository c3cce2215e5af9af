#include "runnel/consumer.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <thread>
#include <mutex>
#include <optional>
#include <set>

#include "client/src/cluster_view.h"
#include "client/src/committer.h"
#include "client/src/connection_pool.h"
#include "client/src/group_member.h"
#include "client/src/group_requests.h"
#include "client/src/metadata_cache.h"
#include "client/src/record_pool.h"
#include "client/src/requests.h"
#include "client/src/zk_bootstrap.h"
#include "schemas/batch.h"

namespace runnel {

namespace {

std::string_view sv(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

std::optional<error> negative_offset(const std::map<topic_partition_ref, offset_and_metadata>& offsets) {
  for (const auto& [tp, o] : offsets) {
    if (o.offset < 0) return error{errc::invalid_argument, "negative offset for " + tp.topic + "/" + std::to_string(tp.partition)};
  }
  return std::nullopt;
}

}  // namespace

struct consumer::impl {
  using clock_type = std::chrono::steady_clock;
  struct partition_state {
    std::shared_ptr<const std::string> topic;  // record views point at it
    std::int64_t position = 0;
    std::int64_t high_watermark = -1;
    std::int32_t fetching_from = client::no_leader;  // the broker whose fetch in flight asks for it
    bool stale = false;              // its leader is in doubt: metadata first, then fetch
    clock_type::time_point retry_at{};  // neither fetched nor looked up before
  };
  // One Fetch in flight per leader broker: a pipelined stream each.
  struct fetch_in_flight {
    std::uint64_t generation = 0;
    std::vector<topic_partition_ref> partitions;
  };
  struct fetched {
    std::int32_t broker;
    result<client::response> r;
  };

  consumer_config cfg;
  std::map<topic_partition_ref, partition_state> assigned;
  std::map<std::int32_t, fetch_in_flight> fetches;  // by broker id
  std::uint64_t generation = 0;  // bumps on assign/seek: fetches in flight are stale

  // Answers, pushed on the I/O thread, taken by poll().
  std::mutex inbox_mu;
  std::condition_variable inbox_cv;
  std::deque<fetched> inbox;

  bool group_changed = false;  // under inbox_mu: the group member's view changed

  std::unique_ptr<client::metadata_cache> meta;
  std::shared_ptr<detail::record_vector_pool> record_pool = std::make_shared<detail::record_vector_pool>();
  // Declared after the inbox: its I/O thread ends while the inbox exists.
  std::unique_ptr<client::connection_pool> pool;

  // Consumer groups. The member and the commit thread use the pool: close()
  // ends both before the pool goes.
  consumer* self = nullptr;
  std::unique_ptr<client::group_member> member;  // after subscribe()
  std::atomic<client::group_member*> member_for_commits{nullptr};  // `member`, for the committer's threads
  rebalance_listener* listener = nullptr;
  std::uint64_t losses_seen = 0;
  std::map<topic_partition_ref, std::int64_t> last_committed;  // positions known committed
  clock_type::time_point next_auto_commit{};
  bool closed = false;
  // Commits, in order, pipelined (created on first use).
  std::unique_ptr<client::committer> commits;
  // Finished async commits: (offsets, outcome, callback), taken by poll().
  std::mutex done_mu;
  std::deque<std::tuple<std::map<topic_partition_ref, offset_and_metadata>, result<void>,
                        std::function<void(const result<void>&)>>> done_commits;

  void wake_poll() {
    std::lock_guard lock(inbox_mu);
    group_changed = true;
    inbox_cv.notify_one();
  }

  client::committer& committer() {
    if (!commits) {
      // The member's epoch as of sending; member-less (assign()) commits
      // go as ("", -1).
      commits = std::make_unique<client::committer>(
          *pool, cfg.group_id,
          [this]() -> result<std::pair<std::string, std::int32_t>> {
            client::group_member* now = member_for_commits.load();
            if (now == nullptr) return std::pair<std::string, std::int32_t>{"", -1};
            auto id = now->identity();
            if (id.second < 0) return std::unexpected(error{errc::unknown_member_id, "not a member of group " + cfg.group_id + " yet"});
            return id;
          },
          cfg.max_in_flight_commits);
    }
    return *commits;
  }

  // An async commit: its callback runs from a later poll(), commit call or close().
  void commit_later(std::map<topic_partition_ref, offset_and_metadata> offsets, std::function<void(const result<void>&)> done) {
    auto copy = offsets;
    committer().commit(std::move(offsets), [this, copy = std::move(copy), done = std::move(done)](const result<void>& r) mutable {
      std::lock_guard d(done_mu);
      done_commits.emplace_back(std::move(copy), r, std::move(done));
    });
  }

  void stop_commits() {
    if (commits) commits->finish();
  }

  // Positions of `which` (all assigned when empty) that moved since their
  // last commit.
  std::map<topic_partition_ref, offset_and_metadata> positions(const std::set<topic_partition_ref>& which) const {
    std::map<topic_partition_ref, offset_and_metadata> out;
    for (const auto& [tp, st] : assigned) {
      if (!which.empty() && !which.contains(tp)) continue;
      auto c = last_committed.find(tp);
      if (c != last_committed.end() && c->second == st.position) continue;
      out[tp] = offset_and_metadata{st.position, {}, -1, -1};
    }
    return out;
  }

  // A synchronous commit, after every earlier one.
  result<void> commit_now(std::map<topic_partition_ref, offset_and_metadata> offsets) {
    run_done_commits();
    auto copy = offsets;
    auto r = committer().commit_sync(std::move(offsets));
    if (r) {
      for (const auto& [tp, o] : copy) last_committed[tp] = o.offset;
    }
    run_done_commits();  // the async commits before it are done too
    return r;
  }

  // Async commits that finished: their callbacks, on the polling thread.
  void run_done_commits() {
    std::deque<std::tuple<std::map<topic_partition_ref, offset_and_metadata>, result<void>,
                          std::function<void(const result<void>&)>>> done;
    {
      std::lock_guard lock(done_mu);
      done.swap(done_commits);
    }
    for (auto& [offsets, r, cb] : done) {
      if (r) {
        for (const auto& [tp, o] : offsets) last_committed[tp] = o.offset;
      }
      if (cb) cb(r);
    }
  }

  void maybe_auto_commit() {
    if (cfg.group_id.empty() || !cfg.enable_auto_commit) return;
    const auto now = clock_type::now();
    if (now < next_auto_commit) return;
    next_auto_commit = now + cfg.auto_commit_interval;
    auto offsets = positions({});
    if (!offsets.empty()) commit_later(std::move(offsets), {});
  }

  std::set<topic_partition_ref> assigned_set() const {
    std::set<topic_partition_ref> out;
    for (const auto& [tp, st] : assigned) out.insert(tp);
    return out;
  }

  // poll(): applies the group's assignment. Lost partitions go without a
  // commit; revoked ones after the listener and (auto-commit) a commit;
  // added ones start at the committed offset (else earliest / latest).
  result<void> reconcile() {
    {
      std::lock_guard lock(inbox_mu);
      group_changed = false;
    }
    member->polled();
    auto v = member->snapshot();
    if (v.fatal) return std::unexpected(*v.fatal);
    if (v.losses != losses_seen) {
      losses_seen = v.losses;
      std::vector<topic_partition_ref> lost;
      for (const auto& [tp, st] : assigned) lost.push_back(tp);
      assigned.clear();
      ++generation;
      member->report_owned({});
      if (!lost.empty() && listener != nullptr) listener->on_partitions_lost(*self, lost);
      v = member->snapshot();
      if (v.losses != losses_seen) return {};  // lost again meanwhile: the next poll
    }
    const auto now = assigned_set();
    if (v.assignment == now) return {};
    std::vector<topic_partition_ref> revoked;
    std::vector<topic_partition_ref> added;
    std::set_difference(now.begin(), now.end(), v.assignment.begin(), v.assignment.end(), std::back_inserter(revoked));
    std::set_difference(v.assignment.begin(), v.assignment.end(), now.begin(), now.end(), std::back_inserter(added));
    if (!revoked.empty()) {
      if (listener != nullptr) listener->on_partitions_revoked(*self, revoked);
      if (cfg.enable_auto_commit) (void)commit_now(positions({revoked.begin(), revoked.end()}));
      for (const auto& tp : revoked) {
        assigned.erase(tp);
        last_committed.erase(tp);
      }
      ++generation;
      member->report_owned(assigned_set());
    }
    if (!added.empty()) {
      auto committed = client::fetch_committed(*pool, cfg.group_id, added);
      if (!committed) return std::unexpected(committed.error());
      std::map<topic_partition_ref, partition_state> fresh;
      for (const auto& tp : added) {
        auto c = committed->find(tp);
        std::int64_t start = 0;
        if (c != committed->end()) {
          start = c->second.offset;
        } else {
          auto o = list_offset(tp, cfg.start_at_earliest ? -2 : -1);
          if (!o) return std::unexpected(o.error());
          start = *o;
        }
        fresh[tp] = partition_state{std::make_shared<const std::string>(tp.topic), start, -1};
      }
      for (auto& [tp, st] : fresh) {
        if (auto c = committed->find(tp); c != committed->end()) last_committed[tp] = c->second.offset;
        assigned.emplace(tp, std::move(st));
      }
      ++generation;
      member->report_owned(assigned_set());
      if (listener != nullptr) listener->on_partitions_assigned(*self, added);
    }
    return {};
  }

  // subscribe() and subscribe_pattern(): joins the group on first use.
  result<void> subscribe(std::vector<std::string> topics, std::string regex, rebalance_listener* l) {
    if (cfg.group_id.empty()) return std::unexpected(error{errc::invalid_argument, "subscribe needs consumer_config::group_id"});
    if (closed) return std::unexpected(error{errc::closed, "the consumer is closed"});
    if (!member) {
      assigned.clear();
      ++generation;
      client::group_member_config g{cfg.group_id,      cfg.group_instance_id, cfg.group_assignor,
                                    cfg.session_timeout, cfg.max_poll_interval, cfg.max_poll_interval};
      member = std::make_unique<client::group_member>(*pool, std::move(g), [this] { wake_poll(); });
      member_for_commits = member.get();
    }
    listener = l;
    member->subscribe(std::move(topics), std::move(regex));
    return {};
  }

  // Waits for the group member's view to change (or `deadline`).
  bool wait_group_change(clock_type::time_point deadline) {
    std::unique_lock lock(inbox_mu);
    return inbox_cv.wait_until(lock, deadline, [this] { return group_changed; });
  }

  // A partition whose leader is in doubt: look it up again after the backoff.
  void mark_stale(partition_state& st) {
    st.stale = true;
    st.retry_at = clock_type::now() + cfg.retry_backoff;
  }

  // Metadata for topics with a partition whose leader is in doubt. Fails
  // when no broker answers, or a topic is gone.
  result<void> refresh_stale() {
    const auto now = clock_type::now();
    std::set<std::string> topics;
    for (const auto& [tp, st] : assigned) {
      if (st.stale && st.retry_at <= now) topics.insert(tp.topic);
    }
    if (topics.empty()) return {};
    std::vector<topic_partition_ref> looked_up;
    for (const auto& [tp, st] : assigned) {
      if (st.stale && topics.contains(tp.topic)) looked_up.push_back(tp);
    }
    if (auto r = meta->refresh({topics.begin(), topics.end()}); !r) {
      for (const auto& tp : looked_up) mark_stale(assigned.at(tp));
      return r;
    }
    for (const auto& tp : looked_up) assigned.at(tp).stale = false;
    std::optional<error> gone;
    for (const auto& [tp, e] : meta->route(looked_up).unroutable) {
      mark_stale(assigned.at(tp));  // no leader elected yet, or the topic is gone
      if (e.code == errc::unknown_topic_or_partition) gone = e;
    }
    if (gone) return std::unexpected(*gone);
    return {};
  }

  // Starts a Fetch to every leader broker without one in flight, for its
  // partitions that are neither in a fetch nor waiting.
  void issue_fetches(std::chrono::milliseconds max_wait) {
    const auto now = clock_type::now();
    std::vector<topic_partition_ref> ready;
    for (const auto& [tp, st] : assigned) {
      if (st.fetching_from == client::no_leader && !st.stale && st.retry_at <= now) ready.push_back(tp);
    }
    if (ready.empty()) return;
    auto routes = meta->route(ready);
    for (const auto& [tp, e] : routes.unroutable) mark_stale(assigned.at(tp));
    for (auto& [broker, tps] : routes.by_leader) {
      if (fetches.contains(broker)) continue;  // they join that broker's next fetch
      flatbuffers::FlatBufferBuilder fbb;
      std::map<std::string, std::vector<flatbuffers::Offset<wire::FetchPartition>>> by_topic;
      for (const auto& tp : tps) {
        auto& st = assigned.at(tp);
        st.fetching_from = broker;
        by_topic[tp.topic].push_back(wire::CreateFetchPartition(fbb, tp.partition, st.position, cfg.max_partition_fetch_bytes));
      }
      std::vector<flatbuffers::Offset<wire::FetchTopic>> topics;
      for (auto& [name, parts] : by_topic) topics.push_back(wire::CreateFetchTopicDirect(fbb, name.c_str(), &parts));
      auto body = wire::CreateFetchRequestDirect(fbb, static_cast<std::int32_t>(max_wait.count()), cfg.fetch_min_bytes,
                                                 cfg.fetch_max_bytes, &topics);
      fetches[broker] = fetch_in_flight{generation, std::move(tps)};
      pool->at(routes.addresses.at(broker)).call(std::move(fbb), wire::Request::FetchRequest, body.Union(), {},
                                             [this, broker](result<client::response> r) {
                                               std::lock_guard lock(inbox_mu);
                                               inbox.push_back(fetched{broker, std::move(r)});
                                               inbox_cv.notify_one();
                                             });
    }
  }

  // The next answer, or nullopt at `deadline` or when a waiting partition's
  // retry time comes first.
  std::optional<fetched> next_answer(clock_type::time_point deadline) {
    auto until = deadline;
    for (const auto& [tp, st] : assigned) {
      if (st.fetching_from == client::no_leader && st.retry_at > clock_type::now()) until = std::min(until, st.retry_at);
    }
    std::unique_lock lock(inbox_mu);
    if (!inbox_cv.wait_until(lock, until, [this] { return !inbox.empty() || group_changed; })) return std::nullopt;
    if (inbox.empty()) return std::nullopt;  // the group changed: poll() reconciles first
    auto f = std::move(inbox.front());
    inbox.pop_front();
    return f;
  }

  // An answer to one broker's fetch: records, or an error for the caller.
  // A stale answer, or one that says the leaders moved, yields nothing and
  // leaves positions where they were.
  result<consumer_records> handle(fetched& f) {
    auto flight = std::move(fetches.at(f.broker));
    fetches.erase(f.broker);
    std::vector<partition_state*> asked;
    for (const auto& tp : flight.partitions) {
      auto it = assigned.find(tp);
      if (it != assigned.end() && it->second.fetching_from == f.broker) {
        it->second.fetching_from = client::no_leader;
        asked.push_back(&it->second);
      }
    }
    if (flight.generation != generation) return consumer_records{};  // assign/seek overrode its positions
    const auto e = client::request_error(f.r);
    if (e && client::leader_may_have_moved(e->code)) {
      // The same positions, from whoever leads now.
      for (auto* st : asked) mark_stale(*st);
      return consumer_records{};
    }
    if (e) return std::unexpected(*e);
    return decode(*f.r);
  }

  result<std::int64_t> list_offset(const topic_partition_ref& tp, std::int64_t timestamp) {
    client::response keep;
    auto p = client::list_offsets_at_leader(*pool, *meta, tp.topic, tp.partition, timestamp, keep);
    if (!p) return std::unexpected(p.error());
    return (*p)->offset();
  }

  // At most how many records the answer holds, from its batch heads: the
  // record vector is sized once, not grown by copying (a catch-up poll
  // holds tens of thousands).
  static std::size_t records_in(const wire::FetchResponse& resp, std::span<const std::byte> payload) {
    std::size_t n = 0;
    for (const auto* t : *resp.topics()) {
      if (t->partitions() == nullptr) continue;
      for (const auto* p : *t->partitions()) {
        const auto* ref = p->records();
        if (ref == nullptr || std::uint64_t{ref->offset()} + ref->length() > payload.size()) continue;
        auto rest = payload.subspan(ref->offset(), ref->length());
        while (!rest.empty()) {
          auto h = schemas::decode_header(rest);
          if (!h || h->length > rest.size() || h->length == 0) break;  // decode() reports it
          // A corrupt head's count is not believed past one record per
          // 8 bytes (decode() refuses that batch anyway).
          n += std::min(static_cast<std::size_t>(std::max(h->record_count, 0)), std::size_t{h->length} / 8);
          rest = rest.subspan(h->length);
        }
      }
    }
    return n;
  }

  // Turns a fetch response into records; advances positions.
  result<consumer_records> decode(const client::response& r) {
    consumer_records out;
    // Positions move only when the whole response decoded: an error leaves
    // every partition where it was, so nothing is skipped.
    std::map<partition_state*, std::int64_t> positions;
    std::map<partition_state*, std::int64_t> watermarks;
    std::vector<partition_state*> moved;
    const auto* resp = r.envelope->body_as_FetchResponse();
    if (resp == nullptr) return std::unexpected(error{errc::bad_response, "Fetch"});
    out.buffers_.push_back(r.body);
    if (resp->topics() == nullptr) return out;
    out.records_ = record_pool->take();
    out.recycle_ = record_pool;
    out.records_.reserve(records_in(*resp, r.payload));
    for (const auto* t : *resp->topics()) {
      if (t->name() == nullptr || t->partitions() == nullptr) continue;
      for (const auto* p : *t->partitions()) {
        auto it = assigned.find(topic_partition_ref{t->name()->str(), p->partition()});
        if (it == assigned.end()) continue;
        auto& st = it->second;
        std::int64_t& pos = positions.try_emplace(&st, st.position).first->second;
        if (p->error() != wire::ErrorCode::NONE) {
          auto e = client::make_error(p->error(), nullptr);
          if (client::leader_may_have_moved(e.code)) {
            moved.push_back(&st);  // fetched again from its new leader, same position
            continue;
          }
          e.message = it->first.topic + "/" + std::to_string(p->partition()) + " at offset " +
                      std::to_string(pos) + " (log " + std::to_string(p->log_start_offset()) + ".." +
                      std::to_string(p->high_watermark()) + ")";
          return std::unexpected(e);
        }
        watermarks[&st] = p->high_watermark();
        const auto* ref = p->records();
        if (ref == nullptr || ref->length() == 0) continue;
        if (std::uint64_t{ref->offset()} + ref->length() > r.payload.size()) {
          return std::unexpected(error{errc::bad_response, "records outside the payload"});
        }
        auto rest = r.payload.subspan(ref->offset(), ref->length());
        while (!rest.empty()) {
          auto h = schemas::decode_header(rest);
          if (!h || h->length > rest.size()) return std::unexpected(error{errc::corrupt_message, "truncated batch in fetch"});
          // CRC and structure are checked on every batch the consumer reads.
          auto view = schemas::batch_view::open(rest.first(h->length), schemas::verify_limits{h->length});
          if (!view) {
            return std::unexpected(error{errc::corrupt_message, it->first.topic + "/" + std::to_string(p->partition()) +
                                                                    " offset " + std::to_string(h->base_offset.value()) +
                                                                    ": " + view.error().message()});
          }
          for (std::size_t i = 0; i < view->record_count(); ++i) {
            auto rec = view->record(i);
            if (rec.off.value() < pos) continue;  // the batch began before our position
            record_view v;
            v.topic = *st.topic;
            v.partition = p->partition();
            v.offset = rec.off.value();
            v.timestamp_ms = rec.timestamp.value();
            if (rec.key) v.key = sv(*rec.key);
            if (rec.value) v.value = sv(*rec.value);
            for (std::size_t k = 0; k < rec.header_count(); ++k) v.headers.push_back({rec.header_key(k), sv(rec.header_value(k))});
            out.records_.push_back(std::move(v));
          }
          pos = std::max(pos, view->header().next_offset().value());
          rest = rest.subspan(h->length);
        }
      }
    }
    for (const auto& [st, pos] : positions) st->position = pos;
    for (const auto& [st, hw] : watermarks) st->high_watermark = hw;
    for (auto* st : moved) mark_stale(*st);
    for (const auto& [tp, st] : assigned) out.buffers_.push_back(st.topic);
    return out;
  }
};

consumer::consumer(std::unique_ptr<impl> i) : impl_(std::move(i)) { impl_->self = this; }
consumer::~consumer() { (void)close(); }

result<std::unique_ptr<consumer>> consumer::connect(consumer_config cfg) {
  auto bootstrap = client::resolve_bootstrap(cfg.bootstrap, cfg.request_timeout);
  if (!bootstrap) return std::unexpected(bootstrap.error());
  auto i = std::make_unique<impl>();
  i->cfg = cfg;
  // The long poll is part of the wait: the request timeout covers it.
  i->pool = std::make_unique<client::connection_pool>(std::move(*bootstrap), cfg.client_id,
                                                      cfg.request_timeout + cfg.fetch_max_wait);
  i->meta = std::make_unique<client::metadata_cache>(*i->pool);
  if (auto r = i->pool->any(); !r) return std::unexpected(r.error());
  return std::unique_ptr<consumer>(new consumer(std::move(i)));
}

result<void> consumer::assign(const std::vector<topic_partition_ref>& partitions) {
  auto& i = *impl_;
  if (i.member) return std::unexpected(error{errc::invalid_argument, "the consumer is subscribed: its group assigns its partitions"});
  std::map<topic_partition_ref, impl::partition_state> next;
  std::map<std::string, std::shared_ptr<const std::string>> names;
  for (const auto& tp : partitions) {
    auto& name = names[tp.topic];
    if (!name) name = std::make_shared<const std::string>(tp.topic);
    auto start = i.list_offset(tp, i.cfg.start_at_earliest ? -2 : -1);
    if (!start) return std::unexpected(start.error());
    next[tp] = impl::partition_state{name, *start, -1};
  }
  i.assigned = std::move(next);
  ++i.generation;
  return {};
}

result<void> consumer::seek(const topic_partition_ref& tp, std::int64_t to) {
  auto it = impl_->assigned.find(tp);
  if (it == impl_->assigned.end()) return std::unexpected(error{errc::invalid_argument, tp.topic + "/" + std::to_string(tp.partition) + " is not assigned"});
  if (to < 0) return std::unexpected(error{errc::invalid_argument, "negative offset"});
  it->second.position = to;
  ++impl_->generation;
  return {};
}

result<void> consumer::seek_to_beginning(const topic_partition_ref& tp) { return seek_to_timestamp(tp, -2); }
result<void> consumer::seek_to_end(const topic_partition_ref& tp) { return seek_to_timestamp(tp, -1); }

result<void> consumer::seek_to_timestamp(const topic_partition_ref& tp, std::int64_t when) {
  if (!impl_->assigned.contains(tp)) return std::unexpected(error{errc::invalid_argument, tp.topic + "/" + std::to_string(tp.partition) + " is not assigned"});
  auto o = impl_->list_offset(tp, when);
  if (!o) return std::unexpected(o.error());
  return seek(tp, *o);
}

std::int64_t consumer::position(const topic_partition_ref& tp) const {
  auto it = impl_->assigned.find(tp);
  return it == impl_->assigned.end() ? -1 : it->second.position;
}

std::int64_t consumer::high_watermark(const topic_partition_ref& tp) const {
  auto it = impl_->assigned.find(tp);
  return it == impl_->assigned.end() ? -1 : it->second.high_watermark;
}

result<consumer_records> consumer::poll(std::chrono::milliseconds timeout) {
  auto& i = *impl_;
  if (i.closed) return std::unexpected(error{errc::closed, "the consumer is closed"});
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    i.run_done_commits();
    if (i.member) {
      if (auto r = i.reconcile(); !r) return std::unexpected(r.error());
    }
    // Positions as of now cover only records earlier polls returned.
    i.maybe_auto_commit();
    if (i.assigned.empty()) {
      if (!i.member) return std::unexpected(error{errc::invalid_argument, "nothing assigned"});
      if (!i.wait_group_change(deadline)) return consumer_records{};
      continue;
    }
    if (auto r = i.refresh_stale(); !r) return std::unexpected(r.error());
    i.issue_fetches(std::min(timeout, i.cfg.fetch_max_wait));
    auto f = i.next_answer(deadline);
    if (!f) {
      if (std::chrono::steady_clock::now() >= deadline) return consumer_records{};
      continue;  // a partition's retry time came, or the group changed
    }
    auto records = i.handle(*f);
    if (!records) return records;
    // Pipelining: the next fetch travels while the caller handles these.
    i.issue_fetches(i.cfg.fetch_max_wait);
    if (!records->empty() || std::chrono::steady_clock::now() >= deadline) return records;
  }
}

result<void> consumer::subscribe(const std::vector<std::string>& topics, rebalance_listener* listener) {
  if (topics.empty()) return std::unexpected(error{errc::invalid_argument, "subscribe to at least one topic"});
  return impl_->subscribe(topics, {}, listener);
}

result<void> consumer::subscribe_pattern(const std::string& regex, rebalance_listener* listener) {
  if (regex.empty()) return std::unexpected(error{errc::invalid_argument, "an empty pattern"});
  return impl_->subscribe({}, regex, listener);
}

std::vector<topic_partition_ref> consumer::assignment() const {
  std::vector<topic_partition_ref> out;
  for (const auto& [tp, st] : impl_->assigned) out.push_back(tp);
  return out;
}

result<void> consumer::commit_sync() {
  auto& i = *impl_;
  if (i.cfg.group_id.empty()) return std::unexpected(error{errc::invalid_argument, "commits need consumer_config::group_id"});
  return i.commit_now(i.positions({}));
}

result<void> consumer::commit_sync(const std::map<topic_partition_ref, offset_and_metadata>& offsets) {
  auto& i = *impl_;
  if (i.cfg.group_id.empty()) return std::unexpected(error{errc::invalid_argument, "commits need consumer_config::group_id"});
  if (auto e = negative_offset(offsets)) return std::unexpected(*e);
  return i.commit_now(offsets);
}

void consumer::commit_async(std::function<void(const result<void>&)> done) {
  commit_async(impl_->positions({}), std::move(done));
}

void consumer::commit_async(const std::map<topic_partition_ref, offset_and_metadata>& offsets,
                            std::function<void(const result<void>&)> done) {
  auto& i = *impl_;
  if (i.cfg.group_id.empty()) {
    if (done) done(std::unexpected(error{errc::invalid_argument, "commits need consumer_config::group_id"}));
    return;
  }
  if (auto e = negative_offset(offsets)) {
    if (done) done(std::unexpected(*e));
    return;
  }
  i.run_done_commits();
  i.commit_later(offsets, std::move(done));
}

result<std::optional<offset_and_metadata>> consumer::committed(const topic_partition_ref& tp) {
  auto& i = *impl_;
  if (i.cfg.group_id.empty()) return std::unexpected(error{errc::invalid_argument, "committed offsets need consumer_config::group_id"});
  auto r = client::fetch_committed(*i.pool, i.cfg.group_id, {tp});
  if (!r) return std::unexpected(r.error());
  auto it = r->find(tp);
  if (it == r->end()) return std::optional<offset_and_metadata>();
  return std::optional<offset_and_metadata>(it->second);
}

std::pair<std::string, std::int32_t> consumer::group_member() const {
  if (!impl_->member) return {std::string(), -1};
  return impl_->member->identity();
}

result<void> consumer::close() {
  auto& i = *impl_;
  if (i.closed) return {};
  i.closed = true;
  result<void> out;
  if (!i.cfg.group_id.empty()) {
    if (i.member && i.listener != nullptr && !i.assigned.empty()) {
      std::vector<topic_partition_ref> all;
      for (const auto& [tp, st] : i.assigned) all.push_back(tp);
      i.listener->on_partitions_revoked(*this, all);
    }
    if (i.cfg.enable_auto_commit) out = i.commit_now(i.positions({}));
    i.stop_commits();
    i.run_done_commits();
    if (i.member) i.member->leave();
  }
  i.member_for_commits = nullptr;
  i.member.reset();
  i.assigned.clear();
  return out;
}

}  // namespace runnel
