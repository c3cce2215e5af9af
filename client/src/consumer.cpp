#include "runnel/consumer.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "client/src/cluster_view.h"
#include "client/src/connection_pool.h"
#include "client/src/metadata_cache.h"
#include "client/src/requests.h"
#include "client/src/zk_bootstrap.h"
#include "schemas/batch.h"

namespace runnel {

namespace {

std::string_view sv(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

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

  std::unique_ptr<client::metadata_cache> meta;
  // Declared last, destroyed first: its I/O thread ends while the inbox exists.
  std::unique_ptr<client::connection_pool> pool;

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
    if (!inbox_cv.wait_until(lock, until, [this] { return !inbox.empty(); })) return std::nullopt;
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

consumer::consumer(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
consumer::~consumer() = default;

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
  if (i.assigned.empty()) return std::unexpected(error{errc::invalid_argument, "nothing assigned"});
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (auto r = i.refresh_stale(); !r) return std::unexpected(r.error());
    i.issue_fetches(std::min(timeout, i.cfg.fetch_max_wait));
    auto f = i.next_answer(deadline);
    if (!f) {
      if (std::chrono::steady_clock::now() >= deadline) return consumer_records{};
      continue;  // a partition's retry time came
    }
    auto records = i.handle(*f);
    if (!records) return records;
    // Pipelining: the next fetch travels while the caller handles these.
    i.issue_fetches(i.cfg.fetch_max_wait);
    if (!records->empty() || std::chrono::steady_clock::now() >= deadline) return records;
  }
}

}  // namespace runnel
