#include "broker/net/share_state.h"

#include "broker/group/coordinator.h"
#include "broker/net/groups.h"
#include "broker/net/shard.h"

namespace runnel::net {

namespace {

std::expected<share_group_view, group::error> view_of(const group::coordinator& c, const std::string& group_id) {
  auto found = c.find_share_group(group_id);
  if (!found) return std::unexpected(found.error());
  share_group_view out;
  for (const auto& [id, m] : (*found)->members) out.members.insert(id);
  out.configs = (*found)->configs;
  return out;
}

}  // namespace

asio::awaitable<std::expected<stored_share_state, group::error>> read_share_state_on_owner(
    shard& s, std::int32_t partition, std::string group_id, topic_partition tp, std::int32_t leader_epoch) {
  auto c = co_await s.groups().get(partition);
  if (!c) co_return std::unexpected(c.error());
  auto state = co_await (*c)->read_share_state(group_id, std::move(tp), leader_epoch);
  if (!state) co_return std::unexpected(state.error());
  auto g = view_of(**c, group_id);
  if (!g) co_return std::unexpected(g.error());
  co_return stored_share_state{std::move(*state), std::move(*g)};
}

asio::awaitable<std::expected<share_group_view, group::error>> write_share_state_on_owner(
    shard& s, std::int32_t partition, std::string group_id, topic_partition tp, group::share_state st) {
  auto c = co_await s.groups().get(partition);
  if (!c) co_return std::unexpected(c.error());
  if (auto e = co_await (*c)->write_share_state(group_id, std::move(tp), std::move(st))) co_return std::unexpected(*e);
  co_return view_of(**c, group_id);
}

}  // namespace runnel::net
