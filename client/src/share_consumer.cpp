#include "runnel/share_consumer.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "client/src/connection_pool.h"
#include "client/src/group_requests.h"
#include "client/src/metadata_cache.h"
#include "client/src/requests.h"
#include "client/src/zk_bootstrap.h"
#include "schemas/batch.h"

namespace runnel {

namespace {

using clock_type = std::chrono::steady_clock;

std::string_view sv(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// offset -> kind, per partition: the acknowledgements not sent yet.
using pending_acks = std::map<topic_partition_ref, std::map<std::int64_t, acknowledge_type>>;

// The partitions of `parts` with their acknowledgements as wire ranges
// (consecutive offsets of one kind merged).
flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::ShareFetchTopic>>> build_topics(
    flatbuffers::FlatBufferBuilder& fbb, const std::set<topic_partition_ref>& parts, const pending_acks& acks) {
  std::map<std::string, std::vector<flatbuffers::Offset<wire::ShareFetchPartition>>> by_topic;
  for (const auto& tp : parts) {
    struct run {
      std::int64_t first;
      std::int64_t last;
      acknowledge_type kind;
    };
    std::vector<run> runs;
    if (auto it = acks.find(tp); it != acks.end()) {
      for (const auto& [o, kind] : it->second) {
        if (!runs.empty() && runs.back().last + 1 == o && runs.back().kind == kind) {
          runs.back().last = o;
        } else {
          runs.push_back({o, o, kind});
        }
      }
    }
    std::vector<wire::ShareAcknowledgement> ranges;
    ranges.reserve(runs.size());
    for (const auto& r : runs) ranges.emplace_back(r.first, r.last, static_cast<std::uint8_t>(r.kind));
    by_topic[tp.topic].push_back(wire::CreateShareFetchPartition(fbb, tp.partition, fbb.CreateVectorOfStructs(ranges)));
  }
  std::vector<flatbuffers::Offset<wire::ShareFetchTopic>> topics;
  for (auto& [name, ps] : by_topic) topics.push_back(wire::CreateShareFetchTopicDirect(fbb, name.c_str(), &ps));
  return fbb.CreateVector(topics);
}

std::string where(const std::string& topic, std::int32_t partition) { return topic + "/" + std::to_string(partition); }

// A partition error after which the same request at the partition's
// leader (maybe a new one, found by a metadata refresh) may well work: it
// is not the user's to see.
bool transient(const error& e) {
  return client::leader_may_have_moved(e.code) || e.code == errc::coordinator_not_available ||
         e.code == errc::not_coordinator || e.code == errc::coordinator_load_in_progress;
}

// A long poll spread over several leaders waits at most this long at each,
// so records that come at one are not held up by the others' waits.
constexpr std::chrono::milliseconds spread_wait{100};

}  // namespace

struct share_consumer::impl {
  share_consumer_config cfg;
  std::unique_ptr<client::metadata_cache> meta;
  // Declared after `meta`, destroyed before it: its I/O thread ends while `meta` exists.
  std::unique_ptr<client::connection_pool> pool;
  std::string member_id;
  std::int32_t epoch = 0;
  bool joined = false;
  bool closed = false;
  std::vector<std::string> topics;
  std::set<topic_partition_ref> assignment;
  std::chrono::milliseconds heartbeat_interval{5'000};
  clock_type::time_point next_heartbeat{};
  std::map<std::string, std::shared_ptr<const std::string>> names;  // record views point at them
  std::map<topic_partition_ref, std::set<std::int64_t>> last_poll;  // returned, not yet acknowledged
  pending_acks pending;
  std::vector<error> ack_errors;

  // One ShareGroupHeartbeat; a member the group forgot joins again.
  result<void> heartbeat(bool with_topics) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto r = client::call_coordinator(
          *pool, cfg.group_id,
          [&](flatbuffers::FlatBufferBuilder& fbb) {
            flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>> names_off;
            if (with_topics || epoch == 0) names_off = fbb.CreateVectorOfStrings(topics);
            auto body = wire::CreateShareGroupHeartbeatRequest(fbb, fbb.CreateString(cfg.group_id),
                                                               fbb.CreateString(member_id), epoch,
                                                               flatbuffers::Offset<flatbuffers::String>(), names_off);
            return std::pair{body.Union(), wire::Request::ShareGroupHeartbeatRequest};
          },
          [](const client::response& resp) -> std::optional<error> {
            const auto* b = resp.envelope->body_as_ShareGroupHeartbeatResponse();
            if (b == nullptr || b->error() == wire::ErrorCode::NONE) return std::nullopt;
            return client::make_error(b->error(), b->message());
          });
      if (!r) return std::unexpected(r.error());
      if (auto e = client::envelope_error(*r->envelope)) return std::unexpected(*e);
      const auto* b = r->envelope->body_as_ShareGroupHeartbeatResponse();
      if (b == nullptr) return std::unexpected(error{errc::bad_response, "ShareGroupHeartbeat"});
      if (b->error() == wire::ErrorCode::UNKNOWN_MEMBER_ID || b->error() == wire::ErrorCode::FENCED_MEMBER_EPOCH) {
        epoch = 0;  // removed (session timeout) or fenced: join again
        continue;
      }
      if (b->error() != wire::ErrorCode::NONE) return std::unexpected(client::make_error(b->error(), b->message()));
      if (b->member_id() != nullptr) member_id = b->member_id()->str();
      epoch = b->member_epoch();
      heartbeat_interval = std::chrono::milliseconds(std::max(10, b->heartbeat_interval_ms()));
      next_heartbeat = clock_type::now() + heartbeat_interval;
      assignment.clear();
      if (b->assignment() != nullptr) {
        for (const auto* t : *b->assignment()) {
          if (t->partitions() == nullptr) continue;
          for (std::int32_t p : *t->partitions()) assignment.insert({t->topic()->str(), p});
        }
      }
      joined = true;
      return {};
    }
    return std::unexpected(error{errc::unknown_member_id, "share group " + cfg.group_id + " refused the member twice"});
  }

  // Implicit mode: everything the last poll returned is accepted.
  void accept_last_poll() {
    if (cfg.explicit_acknowledgement) return;
    for (auto& [tp, offsets] : last_poll) {
      for (auto o : offsets) pending[tp][o] = acknowledge_type::accept;
    }
    last_poll.clear();
  }

  // `parts` by leader; topics with a partition that has none known are
  // looked up again first (a partition still without one is unroutable).
  client::routes route(const std::vector<topic_partition_ref>& parts) {
    auto routes = meta->route(parts);
    if (routes.unroutable.empty()) return routes;
    std::set<std::string> names_in_doubt;
    for (const auto& [tp, e] : routes.unroutable) names_in_doubt.insert(tp.topic);
    if (meta->refresh({names_in_doubt.begin(), names_in_doubt.end()})) routes = meta->route(parts);
    return routes;
  }

  // The topic's leaders are in doubt: looked up again on the next route.
  void leaders_moved(const std::string& topic) { meta->forget(topic); }

  // Sends one request per leader at once (`build` makes each for its
  // partitions) and waits for every answer: (leader's partitions, answer).
  template <typename Build>
  std::vector<std::pair<std::vector<topic_partition_ref>, result<client::response>>> call_leaders(
      client::routes& routes, wire::Request type, const Build& build) {
    struct inbox_t {
      std::mutex mu;
      std::condition_variable cv;
      std::size_t left = 0;
      std::vector<std::pair<std::vector<topic_partition_ref>, result<client::response>>> answers;
    };
    auto inbox = std::make_shared<inbox_t>();
    inbox->left = routes.by_leader.size();
    for (auto& [broker, tps] : routes.by_leader) {
      flatbuffers::FlatBufferBuilder fbb;
      auto body = build(fbb, tps);
      pool->at(routes.addresses.at(broker))
          .call(std::move(fbb), type, body, {}, [inbox, tps](result<client::response> r) {
            std::lock_guard lock(inbox->mu);
            inbox->answers.emplace_back(tps, std::move(r));
            if (--inbox->left == 0) inbox->cv.notify_one();
          });
    }
    std::unique_lock lock(inbox->mu);
    inbox->cv.wait(lock, [&] { return inbox->left == 0; });
    return std::move(inbox->answers);
  }

  // One ShareFetch to each leader of an assigned partition, with the
  // acknowledgements pending for its partitions.
  result<consumer_records> fetch_once(std::chrono::milliseconds wait) {
    auto routes = route({assignment.begin(), assignment.end()});
    consumer_records out;
    if (routes.by_leader.empty()) {
      std::this_thread::sleep_for(std::min(wait, spread_wait));  // nothing to fetch from yet
      return out;
    }
    if (routes.by_leader.size() > 1) wait = std::min(wait, spread_wait);
    auto answers = call_leaders(routes, wire::Request::ShareFetchRequest,
                                [&](flatbuffers::FlatBufferBuilder& fbb, const std::vector<topic_partition_ref>& tps) {
                                  const std::set<topic_partition_ref> parts(tps.begin(), tps.end());
                                  auto topics_off = build_topics(fbb, parts, pending);
                                  // Sent: whatever the answer, these acknowledgements are the broker's now.
                                  for (const auto& tp : tps) pending.erase(tp);
                                  return wire::CreateShareFetchRequest(
                                             fbb, fbb.CreateString(cfg.group_id), fbb.CreateString(member_id),
                                             static_cast<std::int32_t>(wait.count()), cfg.max_poll_records,
                                             cfg.fetch_max_bytes, topics_off)
                                      .Union();
                                });
    std::optional<error> first_error;
    for (auto& [tps, r] : answers) {
      if (auto e = client::request_error(r)) {
        if (transient(*e)) {
          for (const auto& tp : tps) leaders_moved(tp.topic);
          continue;
        }
        if (!first_error) first_error = *e;
        continue;
      }
      if (auto e = decode(*r, out); e && !first_error) first_error = std::move(e);
    }
    for (const auto& [topic, name] : names) out.buffers_.push_back(name);
    if (out.empty() && first_error) return std::unexpected(*first_error);
    return out;
  }

  // The records of one ShareFetch answer into `out`; the first partition
  // error that is the user's to see.
  std::optional<error> decode(const client::response& answer, consumer_records& out) {
    const client::response* r = &answer;
    const auto* resp = r->envelope->body_as_ShareFetchResponse();
    if (resp == nullptr) return error{errc::bad_response, "ShareFetch"};
    out.buffers_.push_back(r->body);
    std::optional<error> first_error;
    if (resp->topics() == nullptr) return std::nullopt;
    for (const auto* t : *resp->topics()) {
      if (t->name() == nullptr || t->partitions() == nullptr) continue;
      const std::string topic = t->name()->str();
      auto& name = names[topic];
      if (!name) name = std::make_shared<const std::string>(topic);
      for (const auto* p : *t->partitions()) {
        if (p->acknowledge_error() != wire::ErrorCode::NONE) {
          auto e = client::make_error(p->acknowledge_error(), p->acknowledge_message());
          e.message = where(topic, p->partition()) + ": " + e.message;
          ack_errors.push_back(std::move(e));
        }
        if (p->error() != wire::ErrorCode::NONE) {
          if (transient(client::make_error(p->error(), nullptr))) {
            leaders_moved(topic);
            continue;
          }
          if (!first_error) {
            first_error = client::make_error(p->error(), p->message());
            first_error->message = where(topic, p->partition()) + ": " + first_error->message;
          }
          continue;
        }
        if (p->acquired() == nullptr || p->acquired()->size() == 0) continue;
        std::map<std::int64_t, std::pair<std::int64_t, std::uint16_t>> acquired;  // first -> (last, count)
        for (const auto* a : *p->acquired()) acquired[a->first_offset()] = {a->last_offset(), a->delivery_count()};
        const auto* ref = p->records();
        if (ref == nullptr || std::uint64_t{ref->offset()} + ref->length() > r->payload.size()) {
          return error{errc::bad_response, "records outside the payload"};
        }
        auto rest = r->payload.subspan(ref->offset(), ref->length());
        const topic_partition_ref tp{topic, p->partition()};
        while (!rest.empty()) {
          auto h = schemas::decode_header(rest);
          if (!h || h->length > rest.size()) return error{errc::corrupt_message, "truncated batch in share fetch"};
          auto view = schemas::batch_view::open(rest.first(h->length), schemas::verify_limits{h->length});
          if (!view) {
            return error{errc::corrupt_message, where(topic, p->partition()) + " offset " +
                                                    std::to_string(h->base_offset.value()) + ": " + view.error().message()};
          }
          for (std::size_t i = 0; i < view->record_count(); ++i) {
            auto rec = view->record(i);
            const std::int64_t o = rec.off.value();
            auto a = acquired.upper_bound(o);
            if (a == acquired.begin()) continue;
            --a;
            if (o > a->second.first) continue;  // in the batch, not acquired by this member
            record_view v;
            v.topic = *name;
            v.partition = p->partition();
            v.offset = o;
            v.timestamp_ms = rec.timestamp.value();
            if (rec.key) v.key = sv(*rec.key);
            if (rec.value) v.value = sv(*rec.value);
            for (std::size_t k = 0; k < rec.header_count(); ++k) v.headers.push_back({rec.header_key(k), sv(rec.header_value(k))});
            v.delivery_count = a->second.second;
            out.records_.push_back(std::move(v));
            last_poll[tp].insert(o);
          }
          rest = rest.subspan(h->length);
        }
      }
    }
    return first_error;
  }

  // The pending acknowledgements, to each partition's leader; the first
  // refusal is the answer. Acknowledgements at a leader that moved are
  // lost with it: their records are delivered again (at least once).
  result<void> send_acknowledgements() {
    accept_last_poll();
    if (pending.empty()) return {};
    std::vector<topic_partition_ref> parts;
    for (const auto& [tp, acks] : pending) parts.push_back(tp);
    auto routes = route(parts);
    std::optional<error> first;
    for (const auto& [tp, e] : routes.unroutable) {
      pending.erase(tp);
      if (!first) first = e;
    }
    auto answers = call_leaders(routes, wire::Request::ShareAcknowledgeRequest,
                                [&](flatbuffers::FlatBufferBuilder& fbb, const std::vector<topic_partition_ref>& tps) {
                                  const std::set<topic_partition_ref> mine(tps.begin(), tps.end());
                                  auto topics_off = build_topics(fbb, mine, pending);
                                  for (const auto& tp : tps) pending.erase(tp);
                                  return wire::CreateShareAcknowledgeRequest(fbb, fbb.CreateString(cfg.group_id),
                                                                             fbb.CreateString(member_id), topics_off)
                                      .Union();
                                });
    for (auto& [tps, r] : answers) {
      if (auto e = client::request_error(r)) {
        if (client::leader_may_have_moved(e->code)) {
          for (const auto& tp : tps) leaders_moved(tp.topic);
        }
        if (!first) first = *e;
        continue;
      }
      const auto* resp = r->envelope->body_as_ShareAcknowledgeResponse();
      if (resp == nullptr) {
        if (!first) first = error{errc::bad_response, "ShareAcknowledge"};
        continue;
      }
      if (resp->topics() == nullptr) continue;
      for (const auto* t : *resp->topics()) {
        if (t->partitions() == nullptr) continue;
        for (const auto* p : *t->partitions()) {
          if (p->error() == wire::ErrorCode::NONE) continue;
          auto e = client::make_error(p->error(), p->message());
          if (client::leader_may_have_moved(e.code) && t->name() != nullptr) leaders_moved(t->name()->str());
          e.message = where(t->name() != nullptr ? t->name()->str() : std::string(), p->partition()) + ": " + e.message;
          if (!first) first = std::move(e);
        }
      }
    }
    if (first) return std::unexpected(*first);
    return {};
  }
};

share_consumer::share_consumer(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

share_consumer::~share_consumer() { (void)close(); }

result<std::unique_ptr<share_consumer>> share_consumer::connect(share_consumer_config cfg) {
  if (cfg.group_id.empty()) return std::unexpected(error{errc::invalid_argument, "share_consumer_config::group_id is empty"});
  if (cfg.max_poll_records < 1) return std::unexpected(error{errc::invalid_argument, "max_poll_records must be at least 1"});
  auto bootstrap = client::resolve_bootstrap(cfg.bootstrap, cfg.request_timeout);
  if (!bootstrap) return std::unexpected(bootstrap.error());
  auto i = std::make_unique<impl>();
  i->pool = std::make_unique<client::connection_pool>(std::move(*bootstrap), cfg.client_id,
                                                      cfg.request_timeout + cfg.fetch_max_wait);
  i->meta = std::make_unique<client::metadata_cache>(*i->pool);
  i->cfg = std::move(cfg);
  if (auto r = i->pool->any(); !r) return std::unexpected(r.error());
  return std::unique_ptr<share_consumer>(new share_consumer(std::move(i)));
}

result<void> share_consumer::subscribe(const std::vector<std::string>& topics) {
  auto& i = *impl_;
  if (i.closed) return std::unexpected(error{errc::closed, "the share consumer is closed"});
  if (topics.empty()) return std::unexpected(error{errc::invalid_argument, "subscribe to at least one topic"});
  i.topics = topics;
  return i.heartbeat(true);
}

result<consumer_records> share_consumer::poll(std::chrono::milliseconds timeout) {
  auto& i = *impl_;
  if (i.closed) return std::unexpected(error{errc::closed, "the share consumer is closed"});
  if (!i.joined) return std::unexpected(error{errc::invalid_argument, "subscribe() first"});
  i.accept_last_poll();
  const auto deadline = clock_type::now() + timeout;
  while (true) {
    if (clock_type::now() >= i.next_heartbeat) {
      if (auto h = i.heartbeat(false); !h) return std::unexpected(h.error());
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    auto r = i.fetch_once(std::clamp(left, std::chrono::milliseconds(0), i.cfg.fetch_max_wait));
    if (!r && r.error().code == errc::unknown_member_id) {
      // The group removed this member (its session timed out): join again.
      i.epoch = 0;
      i.last_poll.clear();  // those records were released when it was removed
      if (auto h = i.heartbeat(true); !h) return std::unexpected(h.error());
      continue;
    }
    if (!r || !r->empty() || clock_type::now() >= deadline) return r;
  }
}

result<void> share_consumer::acknowledge(const record_view& r, acknowledge_type type) {
  auto& i = *impl_;
  if (!i.cfg.explicit_acknowledgement) {
    return std::unexpected(error{errc::invalid_argument, "acknowledge() needs share_consumer_config::explicit_acknowledgement"});
  }
  const topic_partition_ref tp{std::string(r.topic), r.partition};
  auto it = i.last_poll.find(tp);
  if (it == i.last_poll.end() || it->second.erase(r.offset) == 0) {
    return std::unexpected(error{errc::invalid_argument, where(tp.topic, tp.partition) + " offset " +
                                                             std::to_string(r.offset) +
                                                             " is not a record of the last poll that is still unacknowledged"});
  }
  i.pending[tp][r.offset] = type;
  return {};
}

result<void> share_consumer::commit_sync() {
  auto& i = *impl_;
  if (i.closed) return std::unexpected(error{errc::closed, "the share consumer is closed"});
  return i.send_acknowledgements();
}

std::vector<error> share_consumer::take_acknowledgement_errors() { return std::exchange(impl_->ack_errors, {}); }

result<void> share_consumer::close() {
  auto& i = *impl_;
  if (i.closed) return {};
  result<void> out;
  if (i.joined) {
    out = i.send_acknowledgements();
    i.epoch = -1;
    auto left = i.heartbeat(false);
    if (out && !left) out = std::unexpected(left.error());
  }
  i.closed = true;
  return out;
}

std::pair<std::string, std::int32_t> share_consumer::group_member() const {
  return {impl_->member_id, impl_->joined && !impl_->closed ? impl_->epoch : -1};
}

}  // namespace runnel
