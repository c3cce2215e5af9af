#include <algorithm>

#include <asio/experimental/as_tuple.hpp>
#include <asio/steady_timer.hpp>
#include <fmt/format.h>

#include "broker/meta/topic_store.h"
#include "broker/net/handlers/handlers.h"
#include "broker/net/logger.h"
#include "broker/net/topic_writes.h"

namespace runnel::net::handlers {

namespace {

meta::config_overrides overrides_of(const flatbuffers::Vector<flatbuffers::Offset<wire::ConfigEntry>>* configs) {
  meta::config_overrides o;
  if (configs != nullptr) {
    for (const auto* c : *configs) o[c->key()->str()] = c->value()->str();
  }
  return o;
}

// Runs on shard 0, which owns the topic store; publishes the new snapshot.
asio::awaitable<std::vector<topic_outcome>> create_on_controller(broker_state& b, const wire::CreateTopicsRequest* req) {
  std::vector<topic_outcome> out;
  bool changed = false;
  if (req->topics() != nullptr) {
    for (const auto* t : *req->topics()) {
      const std::string name = t->name()->str();
      auto overrides = overrides_of(t->configs());
      auto r = co_await create_topic_locally(b, name, t->partitions(), t->replication_factor(), std::move(overrides),
                                             req->validate_only());
      if (r) {
        changed = changed || !req->validate_only();
        if (!req->validate_only()) logger().info("created topic {} with {} partitions", t->name()->str(), t->partitions());
        out.push_back({t->name()->str(), {}, {}});
      } else {
        out.push_back({t->name()->str(), r.error().code, r.error().message});
      }
    }
  }
  if (changed) co_await publish_topics(b, b.store->snapshot());
  co_return out;
}

// Cluster mode, on shard 0: validated here, written to ZooKeeper by the
// membership; answers once this broker sees the new partitions' states
// (bounded), so a produce right after the create finds its leaders.
asio::awaitable<std::vector<topic_outcome>> create_in_cluster(broker_state& b, const wire::CreateTopicsRequest* req) {
  std::vector<topic_outcome> out;
  std::vector<std::string> created;
  if (req->topics() != nullptr) {
    for (const auto* t : *req->topics()) {
      const std::string name = t->name()->str();
      const auto overrides = overrides_of(t->configs());
      auto cfg = meta::validate_new_topic(name, t->partitions(), overrides, b.cfg.topic_defaults);
      if (!cfg) {
        out.push_back({name, cfg.error().code, cfg.error().message});
        continue;
      }
      if (t->replication_factor() < 1) {
        out.push_back({name, meta::errc::invalid_replication,
                       fmt::format("replication factor must be at least 1, got {}", t->replication_factor())});
        continue;
      }
      if (cfg->min_insync_replicas > t->replication_factor()) {
        out.push_back({name, meta::errc::invalid_config,
                       fmt::format("min.insync.replicas {} is more than the replication factor {}",
                                   cfg->min_insync_replicas, t->replication_factor())});
        continue;
      }
      if (req->validate_only()) {
        out.push_back({name, {}, {}});
        continue;
      }
      if (!b.cluster) {
        out.push_back({name, meta::errc::storage_failed, "not connected to the cluster"});
        continue;
      }
      auto r = co_await b.cluster->create_topic(name, t->partitions(), t->replication_factor(), overrides);
      if (!r) {
        out.push_back({name, r.error().code, r.error().message});
        continue;
      }
      logger().info("created topic {}: {} partitions, replication factor {}", name, t->partitions(),
                    t->replication_factor());
      created.push_back(name);
      out.push_back({name, {}, {}});
    }
  }
  asio::steady_timer wait(co_await asio::this_coro::executor);
  for (int i = 0; i < 250 && !std::all_of(created.begin(), created.end(), [&](const auto& n) { return topic_visible(b, n); });
       ++i) {
    wait.expires_after(std::chrono::milliseconds(20));
    co_await wait.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  }
  co_return out;
}

}  // namespace

asio::awaitable<handler_result> create_topics(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_CreateTopicsRequest();
  // No co_await inside ?: (GCC 12 miscompiles it; docs/adr/0004).
  std::vector<topic_outcome> outcomes;
  if (ctx.broker.cluster_mode()) {
    outcomes = co_await run_on(ctx.broker.controller(), create_in_cluster(ctx.broker, req));
  } else {
    outcomes = co_await run_on(ctx.broker.controller(), create_on_controller(ctx.broker, req));
  }
  auto results = topic_results(ctx.fbb, outcomes);
  auto body = wire::CreateCreateTopicsResponseDirect(ctx.fbb, &results);
  co_return handler_result{wire::Response::CreateTopicsResponse, body.Union()};
}

}  // namespace runnel::net::handlers
