#include "broker/net/groups.h"
#include "broker/net/handlers/group_common.h"
#include "broker/net/handlers/handlers.h"

namespace runnel::net::handlers {

namespace {

using fetched_offsets = std::expected<std::map<topic_partition, group::committed_offset>, group::error>;

asio::awaitable<fetched_offsets> fetch_on_owner(shard& s, std::int32_t partition, std::string group_id,
                                                std::optional<std::vector<topic_partition>> tps) {
  auto c = co_await s.groups().get(partition);
  if (!c) co_return std::unexpected(c.error());
  co_return (*c)->committed(group_id, tps);
}

}  // namespace

// Committed offsets; a partition without one answers offset -1.
asio::awaitable<handler_result> offset_fetch(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_OffsetFetchRequest();
  std::string group_id = req->group_id()->str();
  std::optional<std::vector<topic_partition>> asked;
  if (req->topics() != nullptr) {
    auto set = partitions_of(req->topics());
    asked.emplace(set.begin(), set.end());
  }
  fetched_offsets got = std::map<topic_partition, group::committed_offset>{};
  auto where = co_await locate_group(ctx.broker, ctx.home, group_id, false);
  if (!where) {
    got = std::unexpected(where.error());
  } else if (*where) {  // else no offsets topic yet: nothing committed anywhere
    const topic_partition tp = **where;
    shard& owner = ctx.broker.owner(tp);
    std::optional<std::vector<topic_partition>> tps = asked;
    got = co_await run_on(owner, fetch_on_owner(owner, tp.partition.value(), std::move(group_id), std::move(tps)));
  }
  auto& fbb = ctx.fbb;
  if (!got) {
    auto body = wire::CreateOffsetFetchResponseDirect(fbb, to_wire(got.error().code), or_null(got.error().message));
    co_return handler_result{wire::Response::OffsetFetchResponse, body.Union()};
  }
  std::vector<topic_partition> order;
  if (asked) {
    order = *asked;
  } else {
    for (const auto& [tp, v] : *got) order.push_back(tp);
  }
  std::vector<flatbuffers::Offset<wire::OffsetFetchTopic>> topics;
  std::size_t i = 0;
  while (i < order.size()) {
    const std::string& topic = order[i].topic;
    std::vector<flatbuffers::Offset<wire::OffsetFetchPartition>> parts;
    for (; i < order.size() && order[i].topic == topic; ++i) {
      auto it = got->find(order[i]);
      if (it == got->end()) {
        parts.push_back(wire::CreateOffsetFetchPartitionDirect(fbb, order[i].partition.value()));
        continue;
      }
      const auto& v = it->second;
      parts.push_back(wire::CreateOffsetFetchPartitionDirect(fbb, order[i].partition.value(), v.offset, v.leader_epoch,
                                                             or_null(v.metadata), v.commit_timestamp_ms));
    }
    topics.push_back(wire::CreateOffsetFetchTopicDirect(fbb, topic.c_str(), &parts));
  }
  auto body = wire::CreateOffsetFetchResponseDirect(fbb, wire::ErrorCode::NONE, nullptr, &topics);
  co_return handler_result{wire::Response::OffsetFetchResponse, body.Union()};
}

}  // namespace runnel::net::handlers
