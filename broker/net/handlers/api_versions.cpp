#include "broker/net/handlers/handlers.h"

namespace runnel::net::handlers {

// Every API of protocol version 1; the union discriminant is the API key.
asio::awaitable<handler_result> api_versions(request_context& ctx) {
  std::vector<wire::ApiVersionRange> apis;
  for (auto t = static_cast<std::uint8_t>(wire::Request::MIN) + 1; t <= static_cast<std::uint8_t>(wire::Request::MAX); ++t) {
    apis.emplace_back(t, 1, 1);
  }
  auto body = wire::CreateApiVersionsResponse(ctx.fbb, ctx.fbb.CreateVectorOfStructs(apis));
  co_return handler_result{wire::Response::ApiVersionsResponse, body.Union()};
}

}  // namespace runnel::net::handlers
