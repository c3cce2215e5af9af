#include "broker/net/handlers/handlers.h"
#include "broker/net/logger.h"

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
      auto r = b.store->create(t->name()->str(), t->partitions(), t->replication_factor(), overrides_of(t->configs()),
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

}  // namespace

asio::awaitable<handler_result> create_topics(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_CreateTopicsRequest();
  auto outcomes = co_await run_on(ctx.broker.controller(), create_on_controller(ctx.broker, req));
  auto results = topic_results(ctx.fbb, outcomes);
  auto body = wire::CreateCreateTopicsResponseDirect(ctx.fbb, &results);
  co_return handler_result{wire::Response::CreateTopicsResponse, body.Union()};
}

}  // namespace runnel::net::handlers
