#include "broker/net/handlers/handlers.h"

namespace runnel::net::handlers {

namespace {

flatbuffers::Offset<wire::TopicMetadata> describe_topic(request_context& ctx, const meta::topic& t) {
  auto& fbb = ctx.fbb;
  const std::int32_t self = ctx.broker.cfg.broker_id;
  std::vector<flatbuffers::Offset<wire::PartitionMetadata>> parts;
  parts.reserve(static_cast<std::size_t>(t.partitions));
  for (std::int32_t p = 0; p < t.partitions; ++p) {
    // Standalone: this broker leads every partition, epoch 0, one replica.
    auto replicas = fbb.CreateVector(std::vector<std::int32_t>{self});
    auto isr = fbb.CreateVector(std::vector<std::int32_t>{self});
    parts.push_back(wire::CreatePartitionMetadata(fbb, p, wire::ErrorCode::NONE, self, 0, replicas, isr));
  }
  return wire::CreateTopicMetadataDirect(fbb, t.name.c_str(), wire::ErrorCode::NONE, &parts);
}

}  // namespace

asio::awaitable<handler_result> metadata(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_MetadataRequest();
  auto& fbb = ctx.fbb;
  std::vector<flatbuffers::Offset<wire::TopicMetadata>> topics;
  if (req->topics() == nullptr) {
    for (const auto& [name, t] : *ctx.home.topics()) topics.push_back(describe_topic(ctx, t));
  } else {
    for (const auto* name : *req->topics()) {
      if (const auto* t = find_topic(ctx, name->string_view())) {
        topics.push_back(describe_topic(ctx, *t));
      } else {
        topics.push_back(wire::CreateTopicMetadataDirect(fbb, name->c_str(), wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
      }
    }
  }
  const auto& cfg = ctx.broker.cfg;
  std::vector<flatbuffers::Offset<wire::BrokerInfo>> brokers{
      wire::CreateBrokerInfoDirect(fbb, cfg.broker_id, cfg.listen_host.c_str(), cfg.listen_port)};
  auto body = wire::CreateMetadataResponseDirect(fbb, &brokers, cfg.broker_id, "standalone", &topics);
  co_return handler_result{wire::Response::MetadataResponse, body.Union()};
}

}  // namespace runnel::net::handlers
