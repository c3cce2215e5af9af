#include "broker/net/gather.h"
#include "broker/net/handlers/handlers.h"
#include "broker/net/replication.h"

namespace runnel::net::handlers {

namespace {

constexpr std::int64_t earliest = -2;
constexpr std::int64_t latest = -1;

struct offset_outcome {
  wire::ErrorCode error = wire::ErrorCode::NONE;
  std::int64_t offset = -1;
  std::int64_t size = -1;
};

// On the owner shard. In cluster mode only the leader answers, and "latest"
// is the high watermark: what consumers can read.
asio::awaitable<offset_outcome> lookup_on_owner(shard& s, topic_partition tp, std::int64_t timestamp) {
  std::optional<offset> visible;
  if (auto* rm = s.replicas()) {
    auto r = rm->find(tp);
    if (!r || !r->leader) co_return offset_outcome{wire::ErrorCode::NOT_LEADER, -1, -1};
    visible = r->hw;
  }
  storage::log* l = s.logs().get(tp);
  if (l == nullptr && s.logs().offline().contains(tp)) co_return offset_outcome{wire::ErrorCode::STORAGE_ERROR, -1, -1};
  if (l == nullptr) co_return offset_outcome{wire::ErrorCode::NONE, 0, 0};  // nothing appended yet
  const auto size = static_cast<std::int64_t>(l->size_bytes());
  const offset end = std::min(l->log_end_offset(), visible.value_or(l->log_end_offset()));
  if (timestamp == earliest) co_return offset_outcome{wire::ErrorCode::NONE, l->log_start_offset().value(), size};
  if (timestamp == latest) co_return offset_outcome{wire::ErrorCode::NONE, end.value(), size};
  auto r = co_await l->offset_for_timestamp(timestamp_ms(timestamp));
  if (!r) co_return offset_outcome{to_wire(r.error()), -1, size};
  co_return offset_outcome{wire::ErrorCode::NONE, r->has_value() ? std::min(**r, end).value() : end.value(), size};
}

}  // namespace

asio::awaitable<handler_result> list_offsets(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_ListOffsetsRequest();
  auto& fbb = ctx.fbb;
  struct slot {
    std::size_t topic;
    std::int32_t partition;
    std::int64_t timestamp;
    offset_outcome outcome;
  };
  std::vector<std::string> names;
  std::vector<slot> slots;
  std::vector<shard_task<offset_outcome>> tasks;
  std::vector<std::size_t> index;
  if (req->topics() != nullptr) {
    for (const auto* lt : *req->topics()) {
      const meta::topic* t = find_topic(ctx, lt->name()->string_view());
      if (lt->partitions() != nullptr) {
        for (const auto* lp : *lt->partitions()) {
          slots.push_back({names.size(), lp->partition(), lp->timestamp(), {}});
          if (t == nullptr || lp->partition() < 0 || lp->partition() >= t->partitions) {
            slots.back().outcome.error = wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
            continue;
          }
          if (lp->timestamp() < earliest) {
            slots.back().outcome.error = wire::ErrorCode::INVALID_REQUEST;
            continue;
          }
          topic_partition tp(t->name, partition_id(lp->partition()));
          shard& owner = ctx.broker.owner(tp);
          tasks.push_back({&owner, lookup_on_owner(owner, std::move(tp), lp->timestamp())});
          index.push_back(slots.size() - 1);
        }
      }
      names.push_back(lt->name()->str());
    }
  }
  auto results = co_await gather(std::move(tasks));
  for (std::size_t k = 0; k < results.size(); ++k) slots[index[k]].outcome = results[k];
  std::vector<std::vector<flatbuffers::Offset<wire::ListOffsetsPartitionResponse>>> per_topic(names.size());
  for (const auto& s : slots) {
    per_topic[s.topic].push_back(
        wire::CreateListOffsetsPartitionResponse(fbb, s.partition, s.outcome.error, s.outcome.offset, s.timestamp,
                                                 s.outcome.size));
  }
  std::vector<flatbuffers::Offset<wire::ListOffsetsTopicResponse>> topics;
  for (std::size_t t = 0; t < names.size(); ++t) {
    topics.push_back(wire::CreateListOffsetsTopicResponseDirect(fbb, names[t].c_str(), &per_topic[t]));
  }
  auto body = wire::CreateListOffsetsResponseDirect(fbb, &topics);
  co_return handler_result{wire::Response::ListOffsetsResponse, body.Union()};
}

}  // namespace runnel::net::handlers
