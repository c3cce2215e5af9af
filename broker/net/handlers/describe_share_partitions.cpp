// DescribeSharePartitions: the live counts of a share group's partitions
// led here (runnelctl group describe for a share group).
#include <fmt/format.h>

#include "broker/net/gather.h"
#include "broker/net/groups.h"
#include "broker/net/handlers/group_common.h"
#include "broker/net/handlers/handlers.h"
#include "broker/net/share_partitions.h"

namespace runnel::net::handlers {

namespace {

struct share_description {
  std::string topic;
  std::int32_t partition = 0;
  std::optional<group::error> error;
  group::share_stats stats;
};

asio::awaitable<share_description> describe_on_owner(shard& s, std::string group_id, topic_partition tp) {
  share_description out{tp.topic, tp.partition.value(), std::nullopt, {}};
  auto r = co_await s.shares().describe(std::move(group_id), std::move(tp));
  if (r) {
    out.stats = *r;
  } else {
    out.error = std::move(r.error());
  }
  co_return out;
}

}  // namespace

asio::awaitable<handler_result> describe_share_partitions(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_DescribeSharePartitionsRequest();
  const std::string group_id = req->group_id()->str();
  if (auto e = check_group_id(group_id)) co_return handler_result::refuse(to_wire(e->code), e->message);
  std::vector<share_description> out;
  std::vector<shard_task<share_description>> tasks;
  std::vector<std::size_t> index;
  if (req->topics() != nullptr) {
    for (const auto* t : *req->topics()) {
      if (t->partitions() == nullptr) continue;
      const meta::topic* topic = find_topic(ctx, t->topic()->string_view());
      for (std::int32_t p : *t->partitions()) {
        out.push_back({t->topic()->str(), p, std::nullopt, {}});
        if (topic == nullptr || p < 0 || p >= topic->partitions) {
          out.back().error = group::error(group::errc::unknown_topic_or_partition,
                                          fmt::format("unknown topic or partition {}/{}", t->topic()->string_view(), p));
          continue;
        }
        topic_partition tp(topic->name, partition_id(p));
        shard& owner = ctx.broker.owner(tp);
        tasks.push_back({&owner, describe_on_owner(owner, group_id, std::move(tp))});
        index.push_back(out.size() - 1);
      }
    }
  }
  auto results = co_await gather(std::move(tasks));
  for (std::size_t k = 0; k < results.size(); ++k) out[index[k]] = std::move(results[k]);
  auto& fbb = ctx.fbb;
  std::vector<flatbuffers::Offset<wire::SharePartitionDescription>> parts;
  for (const auto& d : out) {
    const auto& st = d.stats;
    parts.push_back(wire::CreateSharePartitionDescriptionDirect(
        fbb, d.topic.c_str(), d.partition, d.error ? to_wire(d.error->code) : wire::ErrorCode::NONE,
        d.error ? d.error->message.c_str() : nullptr, st.start.value(), st.end.value(),
        static_cast<std::int32_t>(st.available), static_cast<std::int32_t>(st.acquired),
        static_cast<std::int32_t>(st.acknowledged), static_cast<std::int32_t>(st.archived), st.oldest_lock_age.count()));
  }
  auto body = wire::CreateDescribeSharePartitionsResponseDirect(fbb, &parts);
  co_return handler_result{wire::Response::DescribeSharePartitionsResponse, body.Union()};
}

}  // namespace runnel::net::handlers
