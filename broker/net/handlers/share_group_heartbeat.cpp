#include "broker/net/groups.h"
#include "broker/net/handlers/group_common.h"
#include "broker/net/handlers/handlers.h"

namespace runnel::net::handlers {

namespace {

using heartbeat_outcome = std::expected<group::heartbeat_result, group::error>;

asio::awaitable<heartbeat_outcome> share_heartbeat_on_owner(shard& s, std::int32_t partition, std::string group_id,
                                                            group::share_heartbeat_request r) {
  auto c = co_await s.groups().get(partition);
  if (!c) co_return std::unexpected(c.error());
  co_return co_await (*c)->share_heartbeat(std::move(group_id), std::move(r));
}

}  // namespace

asio::awaitable<handler_result> share_group_heartbeat(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_ShareGroupHeartbeatRequest();
  std::string group_id = req->group_id()->str();
  group::share_heartbeat_request r;
  if (req->member_id() != nullptr) r.member_id = req->member_id()->str();
  r.member_epoch = req->member_epoch();
  if (req->rack_id() != nullptr) r.rack = req->rack_id()->str();
  if (ctx.envelope.client_id() != nullptr) r.client_id = ctx.envelope.client_id()->str();
  r.client_host = std::string(ctx.peer_host);
  if (req->subscribed_topic_names() != nullptr) {
    std::vector<std::string> names;
    for (const auto* n : *req->subscribed_topic_names()) names.push_back(n->str());
    r.topic_names = std::move(names);
  }

  heartbeat_outcome result = std::unexpected(group::error());
  auto where = co_await locate_group(ctx.broker, ctx.home, group_id, true);
  if (!where) {
    result = std::unexpected(where.error());
  } else {
    const topic_partition tp = **where;
    shard& owner = ctx.broker.owner(tp);
    result = co_await run_on(owner,
                             share_heartbeat_on_owner(owner, tp.partition.value(), std::move(group_id), std::move(r)));
  }
  auto& fbb = ctx.fbb;
  flatbuffers::Offset<wire::ShareGroupHeartbeatResponse> body;
  if (!result) {
    body = wire::CreateShareGroupHeartbeatResponseDirect(fbb, to_wire(result.error().code),
                                                         or_null(result.error().message));
  } else {
    auto member = fbb.CreateString(result->member_id);
    auto assignment = build_topic_partitions(fbb, result->assignment);
    body = wire::CreateShareGroupHeartbeatResponse(fbb, wire::ErrorCode::NONE, 0, member, result->member_epoch,
                                                   result->heartbeat_interval_ms, assignment);
  }
  co_return handler_result{wire::Response::ShareGroupHeartbeatResponse, body.Union()};
}

}  // namespace runnel::net::handlers
