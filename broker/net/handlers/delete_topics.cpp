#include "broker/net/handlers/handlers.h"
#include "broker/net/logger.h"
#include "broker/net/topic_writes.h"

namespace runnel::net::handlers {

namespace {

// Removes the partitions of `topic` that `s` owns (on s's thread).
asio::awaitable<int> remove_logs(shard& s, std::string topic, std::int32_t partitions) {
  for (std::int32_t p = 0; p < partitions; ++p) {
    topic_partition tp(topic, partition_id(p));
    // Offline partitions go too, or a re-created topic would find them.
    if (!s.owns(tp) || (s.logs().get(tp) == nullptr && !s.logs().offline().contains(tp))) continue;
    if (auto ec = co_await s.logs().remove(tp)) logger().error("[{}] cannot delete log: {}", tp, ec.message());
  }
  co_return 0;
}

asio::awaitable<std::vector<topic_outcome>> delete_on_controller(broker_state& b, std::vector<std::string> names) {
  std::vector<topic_outcome> out;
  std::vector<std::pair<std::string, std::int32_t>> removed;
  for (auto& name : names) {
    auto r = co_await delete_topic_locally(b, name);
    if (!r) {
      out.push_back({name, r.error().code, r.error().message});
      continue;
    }
    logger().info("deleted topic {}", name);
    removed.emplace_back(name, *r);
    out.push_back({name, {}, {}});
  }
  if (!removed.empty()) {
    // Producers stop at the snapshot first, then the logs go.
    co_await publish_topics(b, b.store->snapshot());
    for (auto& s : b.shards) {
      for (const auto& [name, n] : removed) co_await run_on(*s, remove_logs(*s, name, n));
    }
  }
  co_return out;
}

// Cluster mode, on shard 0: removes the topic from ZooKeeper; every broker
// deletes its own replicas' logs when its view loses the topic.
asio::awaitable<std::vector<topic_outcome>> delete_in_cluster(broker_state& b, std::vector<std::string> names) {
  std::vector<topic_outcome> out;
  for (auto& name : names) {
    if (!b.cluster) {
      out.push_back({name, meta::errc::storage_failed, "not connected to the cluster"});
      continue;
    }
    auto r = co_await b.cluster->delete_topic(name);
    if (!r) {
      out.push_back({name, r.error().code, r.error().message});
      continue;
    }
    logger().info("deleted topic {}", name);
    out.push_back({name, {}, {}});
  }
  co_return out;
}

}  // namespace

asio::awaitable<handler_result> delete_topics(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_DeleteTopicsRequest();
  std::vector<std::string> names;
  if (req->names() != nullptr) {
    for (const auto* n : *req->names()) names.push_back(n->str());
  }
  // No co_await inside ?: (GCC 12 miscompiles it; docs/adr/0004).
  std::vector<topic_outcome> outcomes;
  if (ctx.broker.cluster_mode()) {
    outcomes = co_await run_on(ctx.broker.controller(), delete_in_cluster(ctx.broker, std::move(names)));
  } else {
    outcomes = co_await run_on(ctx.broker.controller(), delete_on_controller(ctx.broker, std::move(names)));
  }
  auto results = topic_results(ctx.fbb, outcomes);
  auto body = wire::CreateDeleteTopicsResponseDirect(ctx.fbb, &results);
  co_return handler_result{wire::Response::DeleteTopicsResponse, body.Union()};
}

}  // namespace runnel::net::handlers
