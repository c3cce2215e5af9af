#include <fmt/format.h>

#include "broker/net/groups.h"
#include "broker/net/handlers/group_common.h"
#include "broker/net/handlers/handlers.h"

namespace runnel::net::handlers {

namespace {

struct described {
  std::optional<group::error> error;
  std::string state;
  std::int32_t epoch = 0;
  std::int32_t assignment_epoch = 0;
  std::string assignor;
  std::vector<group::member> members;
  group::assignment target;
  bool share = false;
  std::set<topic_partition> share_partitions;
};

asio::awaitable<described> describe_on_owner(shard& s, std::int32_t partition, std::string group_id,
                                             std::string default_assignor) {
  described d;
  auto c = co_await s.groups().get(partition);
  if (!c) {
    d.error = c.error();
    co_return d;
  }
  const group::group* g = (*c)->find(group_id);
  if (g == nullptr) {
    d.error = group::error(group::errc::group_not_found, fmt::format("group {}", group_id));
    co_return d;
  }
  d.state = std::string(group::state_name(*g));
  d.epoch = g->epoch;
  d.assignment_epoch = g->assignment_epoch;
  d.assignor = g->assignor.empty() ? default_assignor : g->assignor;
  for (const auto& [id, m] : g->members) d.members.push_back(m);
  d.target = g->target;
  d.share = g->type == group::group_type::share;
  for (const auto& [tp, st] : g->share_states) d.share_partitions.insert(tp);
  co_return d;
}

}  // namespace

asio::awaitable<handler_result> describe_groups(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_DescribeGroupsRequest();
  std::vector<std::pair<std::string, described>> out;
  if (req->group_ids() != nullptr) {
    for (const auto* id : *req->group_ids()) {
      std::string group_id = id->str();
      described d;
      auto where = co_await locate_group(ctx.broker, ctx.home, group_id, false);
      if (!where) {
        d.error = where.error();
      } else if (!*where) {
        d.error = group::error(group::errc::group_not_found, fmt::format("group {}", group_id));
      } else {
        const topic_partition tp = **where;
        shard& owner = ctx.broker.owner(tp);
        std::string name = group_id;
        d = co_await run_on(owner, describe_on_owner(owner, tp.partition.value(), std::move(name),
                                                     ctx.broker.cfg.groups.default_assignor));
      }
      out.emplace_back(std::move(group_id), std::move(d));
    }
  }
  auto& fbb = ctx.fbb;
  static const std::set<topic_partition> none;
  std::vector<flatbuffers::Offset<wire::DescribedGroup>> groups;
  for (const auto& [id, d] : out) {
    if (d.error) {
      groups.push_back(
          wire::CreateDescribedGroupDirect(fbb, id.c_str(), to_wire(d.error->code), or_null(d.error->message)));
      continue;
    }
    std::vector<flatbuffers::Offset<wire::GroupMember>> members;
    for (const auto& m : d.members) {
      std::vector<flatbuffers::Offset<flatbuffers::String>> names;
      for (const auto& n : m.topic_names) names.push_back(fbb.CreateString(n));
      auto t = d.target.find(m.id);
      auto assignment = build_topic_partitions(fbb, m.assigned);
      auto target = build_topic_partitions(fbb, t != d.target.end() ? t->second : none);
      auto revoking = build_topic_partitions(fbb, m.revoking);
      members.push_back(wire::CreateGroupMember(
          fbb, fbb.CreateString(m.id), fbb.CreateString(m.instance_id), fbb.CreateString(m.client_id),
          fbb.CreateString(m.client_host), m.epoch, fbb.CreateVector(names), fbb.CreateString(m.regex), assignment,
          target, revoking));
    }
    auto shares = build_topic_partitions(fbb, d.share_partitions);
    groups.push_back(wire::CreateDescribedGroup(fbb, fbb.CreateString(id), wire::ErrorCode::NONE, 0,
                                                fbb.CreateString(d.state), d.epoch, d.assignment_epoch,
                                                fbb.CreateString(d.assignor), fbb.CreateVector(members),
                                                fbb.CreateString(d.share ? "share" : "consumer"), shares));
  }
  auto body = wire::CreateDescribeGroupsResponseDirect(fbb, &groups);
  co_return handler_result{wire::Response::DescribeGroupsResponse, body.Union()};
}

}  // namespace runnel::net::handlers
