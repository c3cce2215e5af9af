// AlterConfigs and DescribeConfigs for share groups' configs
// (group/group_config.h): each group's on its coordinator.
#include <fmt/format.h>

#include "broker/group/coordinator.h"
#include "broker/group/group_config.h"
#include "broker/net/groups.h"
#include "broker/net/handlers/group_common.h"
#include "broker/net/handlers/handlers.h"

namespace runnel::net::handlers {

namespace {

asio::awaitable<std::optional<group::error>> alter_on_owner(shard& s, std::int32_t partition, std::string group_id,
                                                            group::group_configs changes, bool validate_only) {
  auto c = co_await s.groups().get(partition);
  if (!c) co_return c.error();
  co_return co_await (*c)->alter_configs(std::move(group_id), std::move(changes), validate_only);
}

asio::awaitable<std::expected<group::group_configs, group::error>> configs_on_owner(shard& s, std::int32_t partition,
                                                                                   std::string group_id) {
  auto c = co_await s.groups().get(partition);
  if (!c) co_return std::unexpected(c.error());
  auto g = (*c)->find_share_group(group_id);
  if (!g) co_return std::unexpected(g.error());
  co_return (*g)->configs;
}

}  // namespace

asio::awaitable<std::vector<topic_outcome>> alter_group_configs(request_context& ctx, const wire::AlterConfigsRequest* req) {
  std::vector<topic_outcome> out;
  if (req->groups() == nullptr) co_return out;
  for (const auto* g : *req->groups()) {
    std::string id = g->name() != nullptr ? g->name()->str() : std::string();
    group::group_configs changes;
    if (g->configs() != nullptr) {
      for (const auto* c : *g->configs()) changes[c->key()->str()] = c->value()->str();
    }
    std::optional<group::error> e;
    if (auto where = co_await locate_group(ctx.broker, ctx.home, id, true); !where) {
      e = where.error();
    } else {
      const topic_partition tp = **where;
      shard& owner = ctx.broker.owner(tp);
      e = co_await run_on(owner, alter_on_owner(owner, tp.partition.value(), id, std::move(changes), req->validate_only()));
    }
    if (e) {
      out.push_back({std::move(id), e->code, e->message});
    } else {
      out.push_back({std::move(id), {}, {}});
    }
  }
  co_return out;
}

asio::awaitable<flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::TopicConfigs>>>> describe_group_configs(
    request_context& ctx, const wire::DescribeConfigsRequest* req) {
  std::vector<std::pair<std::string, std::expected<group::group_configs, group::error>>> found;
  if (req->groups() != nullptr) {
    for (const auto* name : *req->groups()) {
      std::string id = name->str();
      std::expected<group::group_configs, group::error> r;
      auto where = co_await locate_group(ctx.broker, ctx.home, id, false);
      if (!where) {
        r = std::unexpected(where.error());
      } else if (!*where) {
        r = std::unexpected(group::error(group::errc::group_not_found, fmt::format("group {}", id)));
      } else {
        const topic_partition tp = **where;
        shard& owner = ctx.broker.owner(tp);
        r = co_await run_on(owner, configs_on_owner(owner, tp.partition.value(), id));
      }
      found.emplace_back(std::move(id), std::move(r));
    }
  }
  auto& fbb = ctx.fbb;
  std::vector<flatbuffers::Offset<wire::TopicConfigs>> results;
  for (const auto& [id, r] : found) {
    if (!r) {
      results.push_back(wire::CreateTopicConfigsDirect(fbb, id.c_str(), to_wire(r.error().code), r.error().message.c_str()));
      continue;
    }
    std::vector<flatbuffers::Offset<wire::ConfigEntry>> entries;
    for (const auto& c : group::describe_group_configs(*r, ctx.broker.cfg.shares)) {
      entries.push_back(wire::CreateConfigEntryDirect(fbb, c.key.c_str(), c.value.c_str(), c.is_default));
    }
    results.push_back(wire::CreateTopicConfigsDirect(fbb, id.c_str(), wire::ErrorCode::NONE, nullptr, &entries));
  }
  co_return fbb.CreateVector(results);
}

}  // namespace runnel::net::handlers
