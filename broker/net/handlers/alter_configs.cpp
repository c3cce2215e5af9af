#include "broker/meta/topic_store.h"
#include "broker/net/handlers/group_common.h"
#include "broker/net/handlers/handlers.h"
#include "broker/net/logger.h"
#include "broker/net/topic_writes.h"

namespace runnel::net::handlers {

namespace {

asio::awaitable<std::vector<topic_outcome>> alter_on_controller(broker_state& b, const wire::AlterConfigsRequest* req) {
  std::vector<topic_outcome> out;
  bool changed = false;
  if (req->topics() != nullptr) {
    for (const auto* t : *req->topics()) {
      meta::config_overrides changes;
      if (t->configs() != nullptr) {
        for (const auto* c : *t->configs()) changes[c->key()->str()] = c->value()->str();
      }
      const std::string name = t->name() != nullptr ? t->name()->str() : std::string();
      auto r = co_await alter_topic_locally(b, name, changes, req->validate_only());
      if (!r) {
        out.push_back({name, r.error().code, r.error().message});
        continue;
      }
      if (!req->validate_only()) {
        changed = true;
        logger().info("altered configs of topic {}", name);
      }
      out.push_back({name, {}, {}});
    }
  }
  if (changed) co_await publish_topics(b, b.store->snapshot());
  co_return out;
}

// Cluster mode, on shard 0: a compare-and-set of /topics/<t>; every broker
// picks the new config up from its view.
asio::awaitable<std::vector<topic_outcome>> alter_in_cluster(broker_state& b, const wire::AlterConfigsRequest* req) {
  std::vector<topic_outcome> out;
  if (req->topics() == nullptr) co_return out;
  for (const auto* t : *req->topics()) {
    meta::config_overrides changes;
    if (t->configs() != nullptr) {
      for (const auto* c : *t->configs()) changes[c->key()->str()] = c->value()->str();
    }
    const std::string name = t->name() != nullptr ? t->name()->str() : std::string();
    if (!b.cluster) {
      out.push_back({name, meta::errc::storage_failed, "not connected to the cluster"});
      continue;
    }
    const bool validate_only = req->validate_only();
    const meta::topic_config defaults = b.cfg.topic_defaults;
    auto edit = [&changes, &defaults, validate_only](meta::config_overrides& o) -> std::expected<void, meta::error> {
      auto cfg = meta::apply_config_changes(o, changes, defaults);
      if (!cfg) return std::unexpected(cfg.error());
      if (validate_only) return std::unexpected(meta::error{{}, {}});  // valid; write nothing
      return {};
    };
    auto r = co_await b.cluster->alter_topic(name, edit);
    if (!r && r.error().code) {
      out.push_back({name, r.error().code, r.error().message});
      continue;
    }
    if (!validate_only) logger().info("altered configs of topic {}", name);
    out.push_back({name, {}, {}});
  }
  co_return out;
}

}  // namespace

asio::awaitable<handler_result> alter_configs(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_AlterConfigsRequest();
  // No co_await inside ?: (GCC 12 miscompiles it; docs/adr/0004).
  std::vector<topic_outcome> outcomes;
  if (ctx.broker.cluster_mode()) {
    outcomes = co_await run_on(ctx.broker.controller(), alter_in_cluster(ctx.broker, req));
  } else {
    outcomes = co_await run_on(ctx.broker.controller(), alter_on_controller(ctx.broker, req));
  }
  auto group_outcomes = co_await alter_group_configs(ctx, req);
  auto results = topic_results(ctx.fbb, outcomes);
  auto groups = topic_results(ctx.fbb, group_outcomes);
  auto body = wire::CreateAlterConfigsResponseDirect(ctx.fbb, &results, &groups);
  co_return handler_result{wire::Response::AlterConfigsResponse, body.Union()};
}

}  // namespace runnel::net::handlers
