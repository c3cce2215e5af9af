#include <fmt/format.h>

#include "broker/net/groups.h"
#include "broker/net/handlers/group_common.h"
#include "broker/net/handlers/handlers.h"

namespace runnel::net::handlers {

namespace {

asio::awaitable<std::optional<group::error>> delete_on_owner(shard& s, std::int32_t partition, std::string group_id) {
  auto c = co_await s.groups().get(partition);
  if (!c) co_return c.error();
  co_return co_await (*c)->remove_group(std::move(group_id));
}

}  // namespace

// Deletes empty groups with their committed offsets (tombstones).
asio::awaitable<handler_result> delete_groups(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_DeleteGroupsRequest();
  std::vector<std::pair<std::string, std::optional<group::error>>> out;
  if (req->group_ids() != nullptr) {
    for (const auto* id : *req->group_ids()) {
      std::string group_id = id->str();
      std::optional<group::error> e;
      auto where = co_await locate_group(ctx.broker, ctx.home, group_id, false);
      if (!where) {
        e = where.error();
      } else if (!*where) {
        e = group::error(group::errc::group_not_found, fmt::format("group {}", group_id));
      } else {
        const topic_partition tp = **where;
        shard& owner = ctx.broker.owner(tp);
        std::string name = group_id;
        e = co_await run_on(owner, delete_on_owner(owner, tp.partition.value(), std::move(name)));
      }
      out.emplace_back(std::move(group_id), std::move(e));
    }
  }
  auto& fbb = ctx.fbb;
  std::vector<flatbuffers::Offset<wire::GroupResult>> results;
  for (const auto& [id, e] : out) {
    results.push_back(wire::CreateGroupResultDirect(fbb, id.c_str(), e ? to_wire(e->code) : wire::ErrorCode::NONE,
                                                    e ? or_null(e->message) : nullptr));
  }
  auto body = wire::CreateDeleteGroupsResponseDirect(fbb, &results);
  co_return handler_result{wire::Response::DeleteGroupsResponse, body.Union()};
}

}  // namespace runnel::net::handlers
