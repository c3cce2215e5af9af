#include "broker/net/handlers/handlers.h"

namespace runnel::net::handlers {

namespace {

flatbuffers::Offset<wire::TopicMetadata> describe_topic(request_context& ctx, const meta::topic& t) {
  auto& fbb = ctx.fbb;
  const std::int32_t self = ctx.broker.cfg.broker_id;
  std::vector<flatbuffers::Offset<wire::PartitionMetadata>> parts;
  parts.reserve(static_cast<std::size_t>(t.partitions));
  for (std::int32_t p = 0; p < t.partitions; ++p) {
    if (!t.leadership.empty()) {
      // Cluster: as ZooKeeper holds it; leader -1 while offline.
      const auto& l = t.leadership[static_cast<std::size_t>(p)];
      auto replicas = fbb.CreateVector(l.replicas);
      auto isr = fbb.CreateVector(l.isr);
      const auto error = l.leader < 0 ? wire::ErrorCode::NOT_LEADER : wire::ErrorCode::NONE;
      parts.push_back(wire::CreatePartitionMetadata(fbb, p, error, l.leader, l.leader_epoch, replicas, isr));
      continue;
    }
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
  std::vector<flatbuffers::Offset<wire::BrokerInfo>> brokers;
  std::int32_t controller = cfg.broker_id;
  const bool cluster_mode = !cfg.zookeeper.empty();
  if (cluster_mode) {
    // The membership lives on shard 0.
    auto view = co_await run_on(ctx.broker.controller(), [](broker_state& b) -> asio::awaitable<cluster::membership::view> {
      co_return b.cluster ? b.cluster->snapshot() : cluster::membership::view{};
    }(ctx.broker));
    for (const auto& r : view.brokers) {
      brokers.push_back(wire::CreateBrokerInfoDirect(fbb, r.id, r.host.c_str(), r.port, r.rack.empty() ? nullptr : r.rack.c_str()));
    }
    controller = view.controller;
  } else {
    brokers.push_back(wire::CreateBrokerInfoDirect(fbb, cfg.broker_id, cfg.advertise_host().c_str(), cfg.advertise_port()));
  }
  auto body = wire::CreateMetadataResponseDirect(fbb, &brokers, controller, cluster_mode ? "cluster" : "standalone", &topics);
  co_return handler_result{wire::Response::MetadataResponse, body.Union()};
}

}  // namespace runnel::net::handlers
