#include <algorithm>
#include <fmt/format.h>

#include "broker/group/types.h"
#include "broker/net/append.h"
#include "broker/net/gather.h"
#include "broker/net/handlers/handlers.h"
#include "broker/net/logger.h"
#include "broker/net/replication.h"
#include "schemas/batch.h"

namespace runnel::net::handlers {

namespace {

// Splits a partition's record set into verified batches. Runs on the home
// shard, so verification (CRC + FlatBuffers) spreads over every core.
std::expected<std::vector<std::span<std::byte>>, partition_outcome> verify_record_set(std::span<std::byte> set,
                                                                                     const meta::topic& t,
                                                                                     std::int32_t partition) {
  auto fail = [&](wire::ErrorCode e, std::string msg) {
    return std::unexpected(partition_outcome(partition, e, std::move(msg)));
  };
  std::vector<std::span<std::byte>> batches;
  if (set.empty()) return fail(wire::ErrorCode::CORRUPT_MESSAGE, "empty record set");
  const std::uint32_t limit = t.config.max_message_bytes;
  while (!set.empty()) {
    auto h = schemas::decode_header(set);
    if (!h) return fail(wire::ErrorCode::CORRUPT_MESSAGE, h.error().message());
    if (h->length > limit) {
      return fail(wire::ErrorCode::MESSAGE_TOO_LARGE,
                  fmt::format("batch of {} bytes exceeds max.message.bytes {} of topic {}", h->length, limit, t.name));
    }
    if (h->length > set.size()) return fail(wire::ErrorCode::CORRUPT_MESSAGE, "batch longer than its record set");
    auto batch = set.first(h->length);
    if (auto v = schemas::verify_batch(batch, schemas::verify_limits{limit}); !v) {
      return fail(wire::ErrorCode::CORRUPT_MESSAGE, v.error().message());
    }
    batches.push_back(batch);
    set = set.subspan(h->length);
  }
  return batches;
}

}  // namespace

asio::awaitable<handler_result> produce(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_ProduceRequest();
  const std::int8_t acks = req->acks();
  auto& fbb = ctx.fbb;

  struct topic_slots {
    std::string name;
    std::vector<partition_outcome> outcomes;
  };
  std::vector<topic_slots> topics;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(1, req->timeout_ms()));
  std::vector<shard_task<partition_outcome>> tasks;
  std::vector<std::pair<std::size_t, std::size_t>> task_slot;  // (topic, partition slot)
  if (acks != 0 && acks != 1 && acks != -1) {
    co_return handler_result::refuse(wire::ErrorCode::INVALID_REQUEST,
                                     fmt::format("acks must be 0, 1 or -1 (all), got {}", acks));
  }
  // Record sets must not overlap: each owner shard stamps offsets into its
  // batches in place, and two shards must never write the same bytes.
  if (req->topics() != nullptr) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    for (const auto* pt : *req->topics()) {
      if (pt->partitions() == nullptr) continue;
      for (const auto* pp : *pt->partitions()) {
        ranges.emplace_back(pp->records()->offset(), std::uint64_t{pp->records()->offset()} + pp->records()->length());
      }
    }
    std::sort(ranges.begin(), ranges.end());
    for (std::size_t i = 1; i < ranges.size(); ++i) {
      if (ranges[i].first < ranges[i - 1].second) {
        co_return handler_result::refuse(wire::ErrorCode::INVALID_REQUEST, "record sets overlap in the payload");
      }
    }
  }
  if (req->topics() != nullptr) {
    for (const auto* pt : *req->topics()) {
      topic_slots slots{pt->name()->str(), {}};
      const meta::topic* t = find_topic(ctx, pt->name()->string_view());
      if (pt->partitions() != nullptr) {
        for (const auto* pp : *pt->partitions()) {
          const std::int32_t p = pp->partition();
          if (t == nullptr || p < 0 || p >= t->partitions) {
            slots.outcomes.emplace_back(p, wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                                       fmt::format("unknown topic or partition {}/{}", pt->name()->str(), p));
            continue;
          }
          if (t->name == group::offsets_topic) {
            slots.outcomes.emplace_back(p, wire::ErrorCode::INVALID_TOPIC,
                                       fmt::format("{} is internal: only group coordinators write it", t->name));
            continue;
          }
          const auto* ref = pp->records();
          if (std::uint64_t{ref->offset()} + ref->length() > ctx.payload.size()) {
            slots.outcomes.emplace_back(p, wire::ErrorCode::INVALID_REQUEST, "records outside the frame payload");
            continue;
          }
          if (ctx.broker.storage_full()) {
            slots.outcomes.emplace_back(
                p, wire::ErrorCode::STORAGE_FULL,
                fmt::format("the data directory has {} bytes free, below storage.min.free.bytes ({}); retry later",
                            std::max<std::int64_t>(0, ctx.broker.free_bytes.load(std::memory_order_relaxed)),
                            ctx.broker.min_free_bytes));
            continue;
          }
          // Counted now, so a burst between two measurements stops in time.
          ctx.broker.free_bytes.fetch_sub(ref->length(), std::memory_order_relaxed);
          auto batches = verify_record_set(ctx.payload.subspan(ref->offset(), ref->length()), *t, p);
          if (!batches) {
            slots.outcomes.push_back(batches.error());
            continue;
          }
          topic_partition tp(t->name, partition_id(p));
          shard& owner = ctx.broker.owner(tp);
          task_slot.emplace_back(topics.size(), slots.outcomes.size());
          slots.outcomes.emplace_back(p);
          tasks.push_back({&owner, append_on_owner(owner, std::move(tp), std::move(*batches), acks, deadline)});
        }
      }
      topics.push_back(std::move(slots));
    }
  }
  auto results = co_await gather(std::move(tasks));
  for (std::size_t i = 0; i < results.size(); ++i) {
    topics[task_slot[i].first].outcomes[task_slot[i].second] = std::move(results[i]);
  }
  if (acks == 0) co_return handler_result::silent();

  std::vector<flatbuffers::Offset<wire::ProduceTopicResponse>> topic_offsets;
  for (const auto& t : topics) {
    std::vector<flatbuffers::Offset<wire::ProducePartitionResponse>> parts;
    for (const auto& o : t.outcomes) {
      parts.push_back(wire::CreateProducePartitionResponseDirect(fbb, o.partition, o.error,
                                                                 o.message.empty() ? nullptr : o.message.c_str(),
                                                                 o.base_offset, o.append_time, o.log_start, o.durability,
                                                                 o.replicas, o.duplicates.empty() ? nullptr : &o.duplicates));
    }
    topic_offsets.push_back(wire::CreateProduceTopicResponseDirect(fbb, t.name.c_str(), &parts));
  }
  auto body = wire::CreateProduceResponseDirect(fbb, &topic_offsets);
  co_return handler_result{wire::Response::ProduceResponse, body.Union()};
}

}  // namespace runnel::net::handlers
