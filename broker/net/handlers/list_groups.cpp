#include <set>

#include "broker/net/gather.h"
#include "broker/net/groups.h"
#include "broker/net/handlers/handlers.h"

namespace runnel::net::handlers {

namespace {

struct listed {
  std::string id;
  std::string state;
  std::int32_t epoch = 0;
  std::int32_t members = 0;
};

asio::awaitable<std::vector<listed>> list_on_shard(shard& s, std::int32_t partitions) {
  std::vector<listed> out;
  for (const auto& c : co_await s.groups().all(partitions)) {
    for (const auto& [id, g] : c->groups()) {
      out.push_back({id, std::string(group::state_name(g)), g.epoch, static_cast<std::int32_t>(g.members.size())});
    }
  }
  co_return out;
}

}  // namespace

// The groups this broker coordinates (a client asks every broker).
asio::awaitable<handler_result> list_groups(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_ListGroupsRequest();
  std::set<std::string, std::less<>> states;
  if (req->states() != nullptr) {
    for (const auto* s : *req->states()) states.insert(s->str());
  }
  std::int32_t partitions = 0;
  if (const auto* t = find_topic(ctx, group::offsets_topic)) partitions = t->partitions;
  std::vector<shard_task<std::vector<listed>>> tasks;
  if (partitions > 0) {
    for (auto& s : ctx.broker.shards) tasks.push_back({s.get(), list_on_shard(*s, partitions)});
  }
  auto per_shard = co_await gather(std::move(tasks));
  std::vector<listed> all;
  for (auto& v : per_shard) {
    for (auto& l : v) {
      if (states.empty() || states.contains(l.state)) all.push_back(std::move(l));
    }
  }
  std::sort(all.begin(), all.end(), [](const listed& a, const listed& b) { return a.id < b.id; });
  auto& fbb = ctx.fbb;
  std::vector<flatbuffers::Offset<wire::ListedGroup>> groups;
  for (const auto& l : all) {
    groups.push_back(wire::CreateListedGroupDirect(fbb, l.id.c_str(), l.state.c_str(), l.epoch, l.members));
  }
  auto body = wire::CreateListGroupsResponseDirect(fbb, wire::ErrorCode::NONE, nullptr, &groups);
  co_return handler_result{wire::Response::ListGroupsResponse, body.Union()};
}

}  // namespace runnel::net::handlers
