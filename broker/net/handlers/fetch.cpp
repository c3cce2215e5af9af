#include <chrono>

#include <asio/post.hpp>

#include "broker/net/gather.h"
#include "broker/net/handlers/handlers.h"
#include "broker/net/replication.h"

namespace runnel::net::handlers {

namespace {

struct fetch_outcome {
  wire::ErrorCode error = wire::ErrorCode::NONE;
  std::int64_t high_watermark = -1;
  std::int64_t log_start = -1;
  std::optional<storage::file_range> range;
  std::int64_t seen_end = -1;  // what this fetcher could read up to (the long poll waits past it)
};

// Who is fetching: a consumer, or (cluster mode) a follower replicating.
struct fetcher_id {
  fetcher_id() = default;
  fetcher_id(std::int32_t id, std::int32_t e) : replica(id), epoch(e) {}
  std::int32_t replica = -1;  // -1: a consumer
  std::int32_t epoch = -1;    // the follower's view of the leader epoch
};

// On the owner shard: whole batches from `from`, up to `max_bytes`.
// Standalone: the high watermark is the log end (one replica). Cluster: only
// the leader answers; consumers read below the high watermark, followers up
// to the log end (and their fetch reports their progress first).
asio::awaitable<fetch_outcome> read_on_owner(shard& s, topic_partition tp, std::int64_t from, std::uint32_t max_bytes,
                                             fetcher_id who, std::int64_t durable) {
  fetch_outcome out;
  std::optional<offset> visible;  // cluster: the high watermark
  if (auto* rm = s.replicas()) {
    if (who.replica >= 0) {
      // A follower past our log end holds a tail we never had: it must
      // truncate first, and its position must not count for acks=all.
      storage::log* own = s.logs().get(tp);
      if (offset(from) > (own != nullptr ? own->log_end_offset() : offset(0))) {
        out.error = wire::ErrorCode::OFFSET_OUT_OF_RANGE;
        co_return out;
      }
      out.error = rm->follower_fetched(tp, who.replica, who.epoch, offset(from), offset(durable));
      if (out.error != wire::ErrorCode::NONE) co_return out;
    }
    auto r = rm->find(tp);
    if (!r || !r->leader) {
      out.error = wire::ErrorCode::NOT_LEADER;
      co_return out;
    }
    visible = r->hw;
  }
  storage::log* l = s.logs().get(tp);
  if (l == nullptr && s.logs().offline().contains(tp)) {
    out.error = wire::ErrorCode::STORAGE_ERROR;  // corrupt at start-up: never served
    co_return out;
  }
  if (l == nullptr) {  // the topic exists, nothing was ever appended here
    out.high_watermark = 0;
    out.log_start = 0;
    if (from != 0) out.error = wire::ErrorCode::OFFSET_OUT_OF_RANGE;
    co_return out;
  }
  out.high_watermark = visible.value_or(l->log_end_offset()).value();
  out.log_start = l->log_start_offset().value();
  const offset end = who.replica >= 0 ? l->log_end_offset() : offset(out.high_watermark);
  out.seen_end = std::max(from, end.value());
  if (offset(from) == end) co_return out;
  // A consumer ahead of this leader's high watermark (it read a higher one
  // from the previous leader) but within the log waits: not out of range.
  if (offset(from) > end && offset(from) <= l->log_end_offset()) co_return out;
  auto r = co_await l->read(offset(from), max_bytes, end);
  if (!r) {
    out.error = to_wire(r.error());
    co_return out;
  }
  out.range = std::move(*r);
  co_return out;
}

struct wanted {
  std::size_t topic_index;
  std::int32_t partition;
  std::int64_t fetch_offset;
  std::uint32_t max_bytes;
  const meta::topic* topic;  // nullptr: unknown topic or partition
  std::int32_t leader_epoch;  // replication: the follower's view
  std::int64_t durable;       // replication: the follower's fsynced end
};

}  // namespace

asio::awaitable<int> watch_on_owner(shard& s, topic_partition tp, std::int64_t after, std::shared_ptr<fetch_wakeup> w,
                                    bool consumer) {
  storage::log* l = s.logs().get(tp);
  offset end = l != nullptr ? l->log_end_offset() : offset(0);
  if (auto* rm = s.replicas(); rm != nullptr && consumer) {
    auto r = rm->find(tp);
    end = r ? std::min(end, r->hw) : offset(0);
  }
  if (end > offset(after)) {
    asio::post(w->timer.get_executor(), [w] {
      w->woken = true;
      w->timer.cancel();
    });
  } else {
    s.watch(tp, offset(after), w);
  }
  co_return 0;
}

asio::awaitable<handler_result> fetch(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_FetchRequest();
  auto& fbb = ctx.fbb;
  // The topic pointers below point into this snapshot: keep it alive across
  // the waits even if the topics change meanwhile.
  const meta::topics_snapshot snapshot = ctx.home.topics();
  std::vector<std::string> topic_names;
  std::vector<wanted> parts;
  if (req->topics() != nullptr) {
    for (const auto* ft : *req->topics()) {
      const meta::topic* t = find_topic(ctx, ft->name()->string_view());
      if (ft->partitions() != nullptr) {
        for (const auto* fp : *ft->partitions()) {
          const bool known = t != nullptr && fp->partition() >= 0 && fp->partition() < t->partitions;
          parts.push_back({topic_names.size(), fp->partition(), fp->fetch_offset(),
                           static_cast<std::uint32_t>(std::max(1, fp->max_bytes())), known ? t : nullptr,
                           fp->current_leader_epoch(), fp->durable_offset()});
        }
      }
      topic_names.push_back(ft->name()->str());
    }
  }

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(0, req->max_wait_ms()));
  const std::uint64_t min_bytes = static_cast<std::uint64_t>(std::max(0, req->min_bytes()));
  std::vector<fetch_outcome> outcomes(parts.size());
  while (true) {
    std::vector<shard_task<fetch_outcome>> tasks;
    std::vector<std::size_t> index;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (parts[i].topic == nullptr) {
        outcomes[i].error = wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
        continue;
      }
      topic_partition tp(parts[i].topic->name, partition_id(parts[i].partition));
      shard& owner = ctx.broker.owner(tp);
      fetcher_id who(req->replica_id(), parts[i].leader_epoch);
      tasks.push_back(
          {&owner, read_on_owner(owner, std::move(tp), parts[i].fetch_offset, parts[i].max_bytes, who, parts[i].durable)});
      index.push_back(i);
    }
    auto results = co_await gather(std::move(tasks));
    std::uint64_t total = 0;
    bool any_error = false;
    for (std::size_t k = 0; k < results.size(); ++k) {
      if (results[k].range) total += results[k].range->length;
      any_error = any_error || results[k].error != wire::ErrorCode::NONE;
      outcomes[index[k]] = std::move(results[k]);
    }
    if (total >= min_bytes || any_error || index.empty() || std::chrono::steady_clock::now() >= deadline ||
        ctx.broker.stopping.load(std::memory_order_relaxed)) {
      break;
    }
    // Long poll: sleep until the partitions got what min_bytes still
    // needs past what this round could read (appends counted in bytes;
    // not at once for data that is already there but too little), or the
    // deadline.
    auto wake = std::make_shared<fetch_wakeup>(co_await asio::this_coro::executor);
    wake->need = min_bytes - total;
    std::vector<shard_task<int>> watches;
    for (std::size_t i : index) {
      topic_partition tp(parts[i].topic->name, partition_id(parts[i].partition));
      shard& owner = ctx.broker.owner(tp);
      const std::int64_t after = std::max(parts[i].fetch_offset, outcomes[i].seen_end);
      watches.push_back({&owner, watch_on_owner(owner, std::move(tp), after, wake, req->replica_id() < 0)});
    }
    co_await gather(std::move(watches));
    // A stopping broker wakes every registered watcher (shard::wake_all);
    // one that registered after that sees the flag here.
    if (!wake->woken && !ctx.broker.stopping.load()) {
      wake->timer.expires_at(deadline);
      co_await wake->timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }
  }

  // The response limit: whole ranges in request order; the first non-empty
  // one always goes, so a consumer progresses past a large batch.
  const std::uint64_t limit = static_cast<std::uint64_t>(std::max(1, req->max_bytes()));
  std::uint64_t payload = 0;
  std::vector<std::vector<flatbuffers::Offset<wire::FetchPartitionResponse>>> per_topic(topic_names.size());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    auto& o = outcomes[i];
    wire::PayloadRef ref(0, 0);
    if (o.range && o.range->length > 0 && (payload == 0 || payload + o.range->length <= limit)) {
      ref = wire::PayloadRef(static_cast<std::uint32_t>(payload), o.range->length);
      payload += o.range->length;
      ctx.files.push_back(std::move(*o.range));
    }
    per_topic[parts[i].topic_index].push_back(
        wire::CreateFetchPartitionResponse(fbb, parts[i].partition, o.error, o.high_watermark, o.log_start, &ref));
  }
  std::vector<flatbuffers::Offset<wire::FetchTopicResponse>> topics;
  for (std::size_t t = 0; t < topic_names.size(); ++t) {
    topics.push_back(wire::CreateFetchTopicResponseDirect(fbb, topic_names[t].c_str(), &per_topic[t]));
  }
  auto body = wire::CreateFetchResponseDirect(fbb, &topics);
  co_return handler_result{wire::Response::FetchResponse, body.Union()};
}

}  // namespace runnel::net::handlers
