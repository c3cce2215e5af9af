#include "broker/net/groups.h"
#include "broker/net/handlers/group_common.h"
#include "broker/net/handlers/handlers.h"

namespace runnel::net::handlers {

namespace {

using commit_results = std::vector<std::optional<group::error>>;

asio::awaitable<commit_results> commit_on_owner(shard& s, std::int32_t partition, std::string group_id,
                                                std::string member_id, std::int32_t epoch,
                                                std::vector<group::coordinator::commit_entry> entries) {
  auto c = co_await s.groups().get(partition);
  if (!c) co_return commit_results(entries.size(), c.error());
  co_return co_await (*c)->commit(std::move(group_id), std::move(member_id), epoch, std::move(entries));
}

}  // namespace

// Answered once the offsets are durable on the offsets partition's ISR.
asio::awaitable<handler_result> offset_commit(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_OffsetCommitRequest();
  std::string group_id = req->group_id()->str();
  std::string member_id = req->member_id() != nullptr ? req->member_id()->str() : std::string();
  std::vector<group::coordinator::commit_entry> entries;
  if (req->topics() != nullptr) {
    for (const auto* t : *req->topics()) {
      if (t->partitions() == nullptr) continue;
      for (const auto* p : *t->partitions()) {
        group::coordinator::commit_entry e;
        e.tp = topic_partition(t->name()->str(), partition_id(p->partition()));
        e.value.offset = p->offset();
        e.value.leader_epoch = p->leader_epoch();
        if (p->metadata() != nullptr) e.value.metadata = p->metadata()->str();
        entries.push_back(std::move(e));
      }
    }
  }
  std::vector<topic_partition> order;
  for (const auto& e : entries) order.push_back(e.tp);
  commit_results results;
  std::optional<group::error> whole;
  auto where = co_await locate_group(ctx.broker, ctx.home, group_id, true);
  if (!where) {
    whole = where.error();
    results.assign(entries.size(), where.error());
  } else {
    const topic_partition tp = **where;
    shard& owner = ctx.broker.owner(tp);
    results = co_await run_on(owner, commit_on_owner(owner, tp.partition.value(), std::move(group_id), std::move(member_id),
                                                     req->member_epoch(), std::move(entries)));
  }
  auto& fbb = ctx.fbb;
  std::vector<flatbuffers::Offset<wire::OffsetCommitTopicResponse>> topics;
  std::size_t i = 0;
  while (i < order.size()) {
    const std::string& topic = order[i].topic;
    std::vector<flatbuffers::Offset<wire::PartitionResult>> parts;
    for (; i < order.size() && order[i].topic == topic; ++i) {
      const auto& r = results[i];
      parts.push_back(wire::CreatePartitionResultDirect(fbb, order[i].partition.value(),
                                                        r ? to_wire(r->code) : wire::ErrorCode::NONE,
                                                        r ? or_null(r->message) : nullptr));
    }
    topics.push_back(wire::CreateOffsetCommitTopicResponseDirect(fbb, topic.c_str(), &parts));
  }
  auto body = wire::CreateOffsetCommitResponseDirect(fbb, whole ? to_wire(whole->code) : wire::ErrorCode::NONE,
                                                     whole ? or_null(whole->message) : nullptr, &topics);
  co_return handler_result{wire::Response::OffsetCommitResponse, body.Union()};
}

}  // namespace runnel::net::handlers
