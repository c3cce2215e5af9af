#include <fmt/format.h>

#include "broker/net/groups.h"
#include "broker/net/handlers/group_common.h"
#include "broker/net/handlers/handlers.h"

namespace runnel::net::handlers {

namespace {

struct located {
  std::string key;
  wire::ErrorCode error = wire::ErrorCode::NONE;
  std::string message;
  std::int32_t node = -1;
  std::string host;
  std::int32_t port = 0;
};

}  // namespace

// The coordinator of each group: the leader of its __consumer_offsets
// partition (created on first use).
asio::awaitable<handler_result> find_coordinator(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_FindCoordinatorRequest();
  std::vector<located> out;
  std::optional<cluster::membership::view> view;
  if (req->keys() != nullptr) {
    for (const auto* k : *req->keys()) {
      located l;
      l.key = k->str();
      auto where = co_await locate_group(ctx.broker, ctx.home, l.key, true);
      if (!where) {
        l.error = to_wire(where.error().code);
        l.message = where.error().message;
        out.push_back(std::move(l));
        continue;
      }
      const topic_partition& tp = **where;
      if (!ctx.broker.cluster_mode()) {
        l.node = ctx.broker.cfg.broker_id;
        l.host = ctx.broker.cfg.advertise_host();
        l.port = ctx.broker.cfg.advertise_port();
        out.push_back(std::move(l));
        continue;
      }
      const meta::topic* t = find_topic(ctx, tp.topic);
      const std::size_t p = static_cast<std::size_t>(tp.partition.value());
      const std::int32_t leader = t != nullptr && p < t->leadership.size() ? t->leadership[p].leader : -1;
      if (!view) {
        // The membership lives on shard 0.
        view = co_await run_on(ctx.broker.controller(), [](broker_state& b) -> asio::awaitable<cluster::membership::view> {
          co_return b.cluster ? b.cluster->snapshot() : cluster::membership::view{};
        }(ctx.broker));
      }
      const auto b = std::find_if(view->brokers.begin(), view->brokers.end(), [&](const auto& r) { return r.id == leader; });
      if (leader < 0 || b == view->brokers.end()) {
        l.error = wire::ErrorCode::COORDINATOR_NOT_AVAILABLE;
        l.message = fmt::format("{} has no live leader", tp);
      } else {
        l.node = b->id;
        l.host = b->host;
        l.port = b->port;
      }
      out.push_back(std::move(l));
    }
  }
  auto& fbb = ctx.fbb;
  std::vector<flatbuffers::Offset<wire::Coordinator>> coordinators;
  for (const auto& l : out) {
    coordinators.push_back(wire::CreateCoordinatorDirect(fbb, l.key.c_str(), l.error, or_null(l.message), l.node,
                                                         or_null(l.host), l.port));
  }
  auto body = wire::CreateFindCoordinatorResponseDirect(fbb, &coordinators);
  co_return handler_result{wire::Response::FindCoordinatorResponse, body.Union()};
}

}  // namespace runnel::net::handlers
