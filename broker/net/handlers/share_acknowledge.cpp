#include "broker/net/gather.h"
#include "broker/net/handlers/group_common.h"
#include "broker/net/handlers/share_common.h"
#include "broker/net/share_partitions.h"

namespace runnel::net::handlers {

namespace {

struct ack_outcome {
  wire::ErrorCode error = wire::ErrorCode::NONE;
  std::string message;
};

asio::awaitable<ack_outcome> acknowledge_on_owner(shard& s, std::string group_id, std::string member,
                                                  topic_partition tp, std::vector<share_ack> acks) {
  ack_outcome out;
  if (auto e = co_await s.shares().acknowledge(std::move(group_id), std::move(member), std::move(tp), std::move(acks))) {
    out.error = to_wire(e->code);
    out.message = e->message;
  }
  co_return out;
}

}  // namespace

asio::awaitable<handler_result> share_acknowledge(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_ShareAcknowledgeRequest();
  auto& fbb = ctx.fbb;
  const meta::topics_snapshot snapshot = ctx.home.topics();  // share_request points into it
  share_request parsed = parse_share_request(ctx, *req->group_id(), *req->member_id(), req->topics());
  if (parsed.refusal) co_return handler_result::refuse(parsed.refusal->first, parsed.refusal->second);
  const std::string& group_id = parsed.group_id;
  const std::string& member = parsed.member;

  std::vector<ack_outcome> outcomes(parsed.parts.size());
  std::vector<shard_task<ack_outcome>> tasks;
  std::vector<std::size_t> index;
  for (std::size_t i = 0; i < parsed.parts.size(); ++i) {
    auto& p = parsed.parts[i];
    if (p.topic == nullptr) {
      outcomes[i].error = wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
      continue;
    }
    if (!p.bad_ack.empty()) {
      outcomes[i] = {wire::ErrorCode::INVALID_REQUEST, p.bad_ack};
      continue;
    }
    topic_partition tp(p.topic->name, partition_id(p.partition));
    shard& owner = ctx.broker.owner(tp);
    tasks.push_back({&owner, acknowledge_on_owner(owner, group_id, member, std::move(tp), std::move(p.acks))});
    index.push_back(i);
  }
  auto results = co_await gather(std::move(tasks));
  for (std::size_t k = 0; k < results.size(); ++k) outcomes[index[k]] = std::move(results[k]);

  std::vector<std::vector<flatbuffers::Offset<wire::PartitionResult>>> per_topic(parsed.topic_names.size());
  for (std::size_t i = 0; i < parsed.parts.size(); ++i) {
    per_topic[parsed.parts[i].topic_index].push_back(wire::CreatePartitionResultDirect(
        fbb, parsed.parts[i].partition, outcomes[i].error, or_null(outcomes[i].message)));
  }
  std::vector<flatbuffers::Offset<wire::OffsetCommitTopicResponse>> topics;
  for (std::size_t t = 0; t < parsed.topic_names.size(); ++t) {
    topics.push_back(wire::CreateOffsetCommitTopicResponseDirect(fbb, parsed.topic_names[t].c_str(), &per_topic[t]));
  }
  auto body = wire::CreateShareAcknowledgeResponse(fbb, wire::ErrorCode::NONE, 0, fbb.CreateVector(topics));
  co_return handler_result{wire::Response::ShareAcknowledgeResponse, body.Union()};
}

}  // namespace runnel::net::handlers
