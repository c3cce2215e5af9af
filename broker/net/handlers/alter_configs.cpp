#include "broker/net/handlers/handlers.h"
#include "broker/net/logger.h"

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
      if (auto r = b.store->alter(name, changes, req->validate_only()); !r) {
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

}  // namespace

asio::awaitable<handler_result> alter_configs(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_AlterConfigsRequest();
  auto outcomes = co_await run_on(ctx.broker.controller(), alter_on_controller(ctx.broker, req));
  auto results = topic_results(ctx.fbb, outcomes);
  auto body = wire::CreateAlterConfigsResponseDirect(ctx.fbb, &results);
  co_return handler_result{wire::Response::AlterConfigsResponse, body.Union()};
}

}  // namespace runnel::net::handlers
