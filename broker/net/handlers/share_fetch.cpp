#include <algorithm>
#include <chrono>

#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

#include "broker/net/gather.h"
#include "broker/net/handlers/group_common.h"
#include "broker/net/handlers/share_common.h"
#include "broker/net/share_partitions.h"

namespace runnel::net::handlers {

namespace {

// A long poll wakes at least this often: lock expiries make records
// available without an append.
constexpr auto recheck = std::chrono::milliseconds(100);

struct share_outcome {
  wire::ErrorCode error = wire::ErrorCode::NONE;
  std::string message;
  wire::ErrorCode ack_error = wire::ErrorCode::NONE;
  std::string ack_message;
  std::vector<group::acquired_range> acquired;
  std::optional<storage::file_range> range;
  std::int64_t log_end = 0;
};

asio::awaitable<share_outcome> fetch_on_owner(shard& s, std::string group_id, std::string member, topic_partition tp,
                                              std::vector<share_ack> acks, std::size_t max_records,
                                              std::uint32_t max_bytes) {
  share_outcome out;
  auto r = co_await s.shares().fetch(std::move(group_id), std::move(member), std::move(tp), std::move(acks),
                                     max_records, max_bytes);
  if (!r) {
    out.error = to_wire(r.error().code);
    out.message = r.error().message;
    co_return out;
  }
  if (r->ack_error) {
    out.ack_error = to_wire(r->ack_error->code);
    out.ack_message = r->ack_error->message;
  }
  out.acquired = std::move(r->acquired);
  out.range = std::move(r->range);
  out.log_end = r->log_end.value();
  co_return out;
}

}  // namespace

asio::awaitable<handler_result> share_fetch(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_ShareFetchRequest();
  auto& fbb = ctx.fbb;
  const meta::topics_snapshot snapshot = ctx.home.topics();  // share_request points into it
  share_request parsed = parse_share_request(ctx, *req->group_id(), *req->member_id(), req->topics());
  if (parsed.refusal) co_return handler_result::refuse(parsed.refusal->first, parsed.refusal->second);
  const std::string& group_id = parsed.group_id;
  const std::string& member = parsed.member;
  const auto max_records = static_cast<std::size_t>(std::max(1, req->max_records()));
  // Each partition reads its share of max_bytes (at least one batch), and
  // no more than max_records could need: the records a fetch does not
  // acquire are read again by the next one.
  const std::int64_t share = req->max_bytes() / std::max<std::int64_t>(1, static_cast<std::int64_t>(parsed.parts.size()));
  const std::int64_t for_records = std::max<std::int64_t>(64 << 10, static_cast<std::int64_t>(max_records) * 512);
  const auto max_bytes = static_cast<std::uint32_t>(std::clamp<std::int64_t>(std::min(share, for_records), 1, 1LL << 31));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(0, req->max_wait_ms()));

  std::vector<share_outcome> outcomes(parsed.parts.size());
  bool first_round = true;
  while (true) {
    std::vector<shard_task<share_outcome>> tasks;
    std::vector<std::size_t> index;
    for (std::size_t i = 0; i < parsed.parts.size(); ++i) {
      auto& p = parsed.parts[i];
      if (p.topic == nullptr) {
        outcomes[i].error = wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
        continue;
      }
      if (!p.bad_ack.empty()) {
        outcomes[i].ack_error = wire::ErrorCode::INVALID_REQUEST;
        outcomes[i].ack_message = p.bad_ack;
      }
      // Acknowledgements go with the first round only.
      std::vector<share_ack> acks;
      if (first_round && p.bad_ack.empty()) acks = std::move(p.acks);
      topic_partition tp(p.topic->name, partition_id(p.partition));
      shard& owner = ctx.broker.owner(tp);
      tasks.push_back({&owner, fetch_on_owner(owner, group_id, member, std::move(tp), std::move(acks), max_records,
                                              max_bytes)});
      index.push_back(i);
    }
    auto results = co_await gather(std::move(tasks));
    bool acquired = false;
    bool any_error = false;
    for (std::size_t k = 0; k < results.size(); ++k) {
      auto& o = outcomes[index[k]];
      acquired = acquired || !results[k].acquired.empty();
      any_error = any_error || results[k].error != wire::ErrorCode::NONE;
      // The acknowledgement answer is the first round's (a malformed one
      // was set above, before any round).
      if (!first_round || o.ack_error != wire::ErrorCode::NONE) {
        results[k].ack_error = o.ack_error;
        results[k].ack_message = std::move(o.ack_message);
      }
      o = std::move(results[k]);
    }
    first_round = false;
    if (acquired || any_error || index.empty() || std::chrono::steady_clock::now() >= deadline ||
        ctx.broker.stopping.load(std::memory_order_relaxed)) {
      break;
    }
    // Long poll: until an append on one of the partitions, a recheck for
    // expired locks, or the deadline.
    auto wake = std::make_shared<fetch_wakeup>(co_await asio::this_coro::executor);
    wake->need = 1;
    std::vector<shard_task<int>> watches;
    for (std::size_t i : index) {
      topic_partition tp(parsed.parts[i].topic->name, partition_id(parsed.parts[i].partition));
      shard& owner = ctx.broker.owner(tp);
      watches.push_back({&owner, watch_on_owner(owner, std::move(tp), outcomes[i].log_end, wake, true)});
    }
    co_await gather(std::move(watches));
    if (!wake->woken && !ctx.broker.stopping.load()) {
      wake->timer.expires_at(std::min(deadline, std::chrono::steady_clock::now() + recheck));
      co_await wake->timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }
  }

  // Every acquired record's batches go: the byte limit was applied before
  // acquiring (each partition's share of max_bytes).
  std::uint64_t payload = 0;
  std::vector<std::vector<flatbuffers::Offset<wire::ShareFetchPartitionResponse>>> per_topic(
      parsed.topic_names.size());
  for (std::size_t i = 0; i < parsed.parts.size(); ++i) {
    auto& o = outcomes[i];
    wire::PayloadRef ref(0, 0);
    if (o.range && o.range->length > 0) {
      ref = wire::PayloadRef(static_cast<std::uint32_t>(payload), o.range->length);
      payload += o.range->length;
      ctx.files.push_back(std::move(*o.range));
    }
    std::vector<wire::AcquiredRecords> acquired;
    acquired.reserve(o.acquired.size());
    for (const auto& a : o.acquired) acquired.emplace_back(a.first.value(), a.last.value(), a.delivery_count);
    per_topic[parsed.parts[i].topic_index].push_back(wire::CreateShareFetchPartitionResponse(
        fbb, parsed.parts[i].partition, o.error, fbb.CreateString(o.message), o.ack_error,
        fbb.CreateString(o.ack_message), fbb.CreateVectorOfStructs(acquired), &ref));
  }
  std::vector<flatbuffers::Offset<wire::ShareFetchTopicResponse>> topics;
  for (std::size_t t = 0; t < parsed.topic_names.size(); ++t) {
    topics.push_back(wire::CreateShareFetchTopicResponseDirect(fbb, parsed.topic_names[t].c_str(), &per_topic[t]));
  }
  auto body = wire::CreateShareFetchResponse(fbb, wire::ErrorCode::NONE, 0, fbb.CreateVector(topics));
  co_return handler_result{wire::Response::ShareFetchResponse, body.Union()};
}

}  // namespace runnel::net::handlers
