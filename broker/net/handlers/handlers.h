#pragma once
// One handler per API; broker/net/dispatch.cpp is the table.

#include "broker/net/context.h"

namespace runnel::net::handlers {

asio::awaitable<handler_result> api_versions(request_context& ctx);
asio::awaitable<handler_result> metadata(request_context& ctx);
asio::awaitable<handler_result> create_topics(request_context& ctx);
asio::awaitable<handler_result> delete_topics(request_context& ctx);
asio::awaitable<handler_result> describe_configs(request_context& ctx);
asio::awaitable<handler_result> alter_configs(request_context& ctx);
asio::awaitable<handler_result> produce(request_context& ctx);
asio::awaitable<handler_result> fetch(request_context& ctx);
asio::awaitable<handler_result> list_offsets(request_context& ctx);
asio::awaitable<handler_result> offset_for_leader_epoch(request_context& ctx);
asio::awaitable<handler_result> find_coordinator(request_context& ctx);
asio::awaitable<handler_result> consumer_group_heartbeat(request_context& ctx);
asio::awaitable<handler_result> share_group_heartbeat(request_context& ctx);
asio::awaitable<handler_result> share_fetch(request_context& ctx);
asio::awaitable<handler_result> share_acknowledge(request_context& ctx);
// Between brokers (share_state.h).
asio::awaitable<handler_result> read_share_group_state(request_context& ctx);
asio::awaitable<handler_result> write_share_group_state(request_context& ctx);
asio::awaitable<handler_result> describe_share_partitions(request_context& ctx);
asio::awaitable<handler_result> offset_commit(request_context& ctx);
asio::awaitable<handler_result> offset_fetch(request_context& ctx);
asio::awaitable<handler_result> list_groups(request_context& ctx);
asio::awaitable<handler_result> describe_groups(request_context& ctx);
asio::awaitable<handler_result> delete_groups(request_context& ctx);
asio::awaitable<handler_result> init_producer_id(request_context& ctx);

// The outcome of an admin operation on one topic (create, delete, alter).
struct topic_outcome {
  std::string name;
  std::error_code ec;
  std::string message;
};

// TopicResult entries for `outcomes`, in order.
std::vector<flatbuffers::Offset<wire::TopicResult>> topic_results(flatbuffers::FlatBufferBuilder& fbb,
                                                                 const std::vector<topic_outcome>& outcomes);

// AlterConfigs' `groups` (share group configs), each on its coordinator.
asio::awaitable<std::vector<topic_outcome>> alter_group_configs(request_context& ctx, const wire::AlterConfigsRequest* req);
// DescribeConfigs' `groups`.
asio::awaitable<flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::TopicConfigs>>>> describe_group_configs(
    request_context& ctx, const wire::DescribeConfigsRequest* req);

// Long polls (Fetch, ShareFetch), on tp's owner shard: wakes `w` as soon
// as what the fetcher may read passes `after` (at once if it already has):
// the log end for followers and in standalone mode, the high watermark for
// cluster consumers.
asio::awaitable<int> watch_on_owner(shard& s, topic_partition tp, std::int64_t after, std::shared_ptr<fetch_wakeup> w,
                                    bool consumer);

// Looks up a topic in the home shard's snapshot; nullptr when unknown.
const meta::topic* find_topic(const request_context& ctx, std::string_view name);

}  // namespace runnel::net::handlers
