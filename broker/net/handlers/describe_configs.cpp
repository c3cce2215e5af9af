#include "broker/meta/topic_config.h"
#include "broker/net/handlers/group_common.h"
#include "broker/net/handlers/handlers.h"

namespace runnel::net::handlers {

// Every topic key with its effective value; is_default when not overridden.
asio::awaitable<handler_result> describe_configs(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_DescribeConfigsRequest();
  auto& fbb = ctx.fbb;
  std::vector<flatbuffers::Offset<wire::TopicConfigs>> results;
  if (req->topics() != nullptr) {
    for (const auto* name : *req->topics()) {
      const auto* t = find_topic(ctx, name->string_view());
      if (t == nullptr) {
        auto msg = "unknown topic " + name->str();
        results.push_back(wire::CreateTopicConfigsDirect(fbb, name->c_str(), wire::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                                                         msg.c_str()));
        continue;
      }
      std::vector<flatbuffers::Offset<wire::ConfigEntry>> entries;
      for (const auto& [k, v] : meta::describe(t->config)) {
        entries.push_back(wire::CreateConfigEntryDirect(fbb, k.c_str(), v.c_str(), !t->overrides.contains(k)));
      }
      results.push_back(wire::CreateTopicConfigsDirect(fbb, name->c_str(), wire::ErrorCode::NONE, nullptr, &entries));
    }
  }
  auto groups = co_await describe_group_configs(ctx, req);
  auto body = wire::CreateDescribeConfigsResponse(fbb, fbb.CreateVector(results), groups);
  co_return handler_result{wire::Response::DescribeConfigsResponse, body.Union()};
}

}  // namespace runnel::net::handlers
