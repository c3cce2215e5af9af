// ReadShareGroupState and WriteShareGroupState: a share partition's leader
// on another broker reads and writes the partition's share state here, at
// the group's coordinator (share_state.h, ADR 0016).
#include <fmt/format.h>

#include "broker/group/records.h"
#include "broker/net/groups.h"
#include "broker/net/handlers/group_common.h"
#include "broker/net/handlers/handlers.h"
#include "broker/net/share_state.h"

namespace runnel::net::handlers {

namespace {

// The coordinator's shard and offsets partition for `group_id`, and the
// share partition the request names, or why the request is refused.
struct state_target {
  topic_partition offsets;
  topic_partition tp;
};

asio::awaitable<std::expected<state_target, group::error>> target_of(request_context& ctx, const flatbuffers::String& group_id,
                                                                     const flatbuffers::String& topic, std::int32_t partition) {
  const meta::topic* t = find_topic(ctx, topic.string_view());
  if (t == nullptr || partition < 0 || partition >= t->partitions) {
    co_return std::unexpected(group::error(group::errc::unknown_topic_or_partition,
                                           fmt::format("unknown topic or partition {}/{}", topic.string_view(), partition)));
  }
  auto where = co_await locate_group(ctx.broker, ctx.home, group_id.string_view(), false);
  if (!where) co_return std::unexpected(where.error());
  if (!*where) {
    co_return std::unexpected(group::error(group::errc::group_not_found, fmt::format("share group {}", group_id.string_view())));
  }
  co_return state_target{**where, topic_partition(topic.str(), partition_id(partition))};
}

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>> members_of(
    flatbuffers::FlatBufferBuilder& fbb, const share_group_view& g) {
  std::vector<std::string> ids(g.members.begin(), g.members.end());
  return fbb.CreateVectorOfStrings(ids);
}

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::ConfigEntry>>> configs_of(
    flatbuffers::FlatBufferBuilder& fbb, const share_group_view& g) {
  std::vector<flatbuffers::Offset<wire::ConfigEntry>> out;
  out.reserve(g.configs.size());
  for (const auto& [k, v] : g.configs) out.push_back(wire::CreateConfigEntryDirect(fbb, k.c_str(), v.c_str()));
  return fbb.CreateVector(out);
}

}  // namespace

asio::awaitable<handler_result> read_share_group_state(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_ReadShareGroupStateRequest();
  auto& fbb = ctx.fbb;
  auto answer = [&](const group::error& e) {
    auto body = wire::CreateReadShareGroupStateResponse(fbb, to_wire(e.code), fbb.CreateString(e.message));
    return handler_result{wire::Response::ReadShareGroupStateResponse, body.Union()};
  };
  auto target = co_await target_of(ctx, *req->group_id(), *req->topic(), req->partition());
  if (!target) co_return answer(target.error());
  shard& owner = ctx.broker.owner(target->offsets);
  auto r = co_await run_on(owner, read_share_state_on_owner(owner, target->offsets.partition.value(), req->group_id()->str(),
                                                            target->tp, req->leader_epoch()));
  if (!r) co_return answer(r.error());
  flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> state;
  if (r->state) {
    const auto bytes = group::encode_share_state_value(*r->state);
    state = fbb.CreateVector(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  }
  auto members = members_of(fbb, r->group);
  auto configs = configs_of(fbb, r->group);
  auto body = wire::CreateReadShareGroupStateResponse(fbb, wire::ErrorCode::NONE, 0, state, members, configs);
  co_return handler_result{wire::Response::ReadShareGroupStateResponse, body.Union()};
}

asio::awaitable<handler_result> write_share_group_state(request_context& ctx) {
  const auto* req = ctx.envelope.body_as_WriteShareGroupStateRequest();
  auto& fbb = ctx.fbb;
  auto answer = [&](const group::error& e) {
    auto body = wire::CreateWriteShareGroupStateResponse(fbb, to_wire(e.code), fbb.CreateString(e.message));
    return handler_result{wire::Response::WriteShareGroupStateResponse, body.Union()};
  };
  auto st = group::decode_share_state_value(std::as_bytes(std::span(req->state()->data(), req->state()->size())));
  if (!st) co_return answer(group::error(group::errc::invalid_request, "the share state does not decode"));
  st->leader_epoch = req->leader_epoch();
  auto target = co_await target_of(ctx, *req->group_id(), *req->topic(), req->partition());
  if (!target) co_return answer(target.error());
  shard& owner = ctx.broker.owner(target->offsets);
  auto r = co_await run_on(owner, write_share_state_on_owner(owner, target->offsets.partition.value(), req->group_id()->str(),
                                                             target->tp, std::move(*st)));
  if (!r) co_return answer(r.error());
  auto members = members_of(fbb, *r);
  auto configs = configs_of(fbb, *r);
  auto body = wire::CreateWriteShareGroupStateResponse(fbb, wire::ErrorCode::NONE, 0, members, configs);
  co_return handler_result{wire::Response::WriteShareGroupStateResponse, body.Union()};
}

}  // namespace runnel::net::handlers
