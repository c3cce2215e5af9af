#include "broker/net/gather.h"
#include "broker/net/handlers/handlers.h"
#include "broker/net/replication.h"

namespace runnel::net::handlers {

namespace {

struct epoch_outcome {
  epoch_outcome() = default;
  explicit epoch_outcome(wire::ErrorCode e) : error(e) {}
  wire::ErrorCode error = wire::ErrorCode::NONE;
  std::int32_t epoch = -1;
  std::int64_t end = -1;
};

// On the owner shard: where the largest epoch <= `epoch` ends in the
// leader's log (KIP-279: the follower truncates to the smaller of this and
// its own end of that epoch).
asio::awaitable<epoch_outcome> end_on_owner(shard& s, topic_partition tp, std::int32_t epoch, std::int32_t current) {
  auto* rm = s.replicas();
  auto r = rm != nullptr ? rm->find(tp) : nullptr;
  if (!r || !r->leader) co_return epoch_outcome(wire::ErrorCode::NOT_LEADER);
  if (current >= 0 && current != r->epoch) co_return epoch_outcome(wire::ErrorCode::FENCED_LEADER_EPOCH);
  epoch_outcome out;
  storage::log* l = s.logs().get(tp);
  if (l == nullptr) co_return out;  // nothing ever appended here: no epoch (-1)
  if (auto e = l->end_for_epoch(epoch)) {
    out.epoch = e->first;
    out.end = e->second.value();
  }
  co_return out;
}

}  // namespace

asio::awaitable<handler_result> offset_for_leader_epoch(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_OffsetForLeaderEpochRequest();
  if (!ctx.broker.cluster_mode()) {
    co_return handler_result::refuse(wire::ErrorCode::INVALID_REQUEST, "OffsetForLeaderEpoch needs cluster mode");
  }
  std::vector<shard_task<epoch_outcome>> tasks;
  std::vector<const wire::EpochQuery*> asked;
  std::vector<epoch_outcome> outcomes;
  if (req->partitions() != nullptr) {
    for (const auto* q : *req->partitions()) {
      asked.push_back(q);
      const meta::topic* t = find_topic(ctx, q->topic()->string_view());
      if (t == nullptr || q->partition() < 0 || q->partition() >= t->partitions) {
        outcomes.emplace_back(wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
        continue;
      }
      outcomes.emplace_back();
      topic_partition tp(t->name, partition_id(q->partition()));
      shard& owner = ctx.broker.owner(tp);
      tasks.push_back({&owner, end_on_owner(owner, std::move(tp), q->leader_epoch(), q->current_leader_epoch())});
    }
  }
  auto results = co_await gather(std::move(tasks));
  std::size_t k = 0;
  std::vector<flatbuffers::Offset<wire::EpochEnd>> ends;
  for (std::size_t i = 0; i < asked.size(); ++i) {
    if (outcomes[i].error == wire::ErrorCode::NONE && k < results.size()) outcomes[i] = results[k++];
    ends.push_back(wire::CreateEpochEndDirect(ctx.fbb, asked[i]->topic()->c_str(), asked[i]->partition(),
                                              outcomes[i].error, outcomes[i].epoch, outcomes[i].end));
  }
  auto body = wire::CreateOffsetForLeaderEpochResponseDirect(ctx.fbb, &ends);
  co_return handler_result{wire::Response::OffsetForLeaderEpochResponse, body.Union()};
}

}  // namespace runnel::net::handlers
