#include <algorithm>
#include <array>
#include <set>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include "broker/cluster/errc.h"
#include "broker/group/errc.h"
#include "broker/meta/errc.h"
#include "broker/meta/topic_config.h"
#include "broker/net/handlers/handlers.h"
#include "broker/net/logger.h"
#include "broker/net/replication.h"
#include "broker/storage/errc.h"
#include "schemas/errc.h"

namespace runnel::net {

handler_fn find_handler(wire::Request type) {
  switch (type) {
    case wire::Request::ApiVersionsRequest: return handlers::api_versions;
    case wire::Request::MetadataRequest: return handlers::metadata;
    case wire::Request::CreateTopicsRequest: return handlers::create_topics;
    case wire::Request::DeleteTopicsRequest: return handlers::delete_topics;
    case wire::Request::DescribeConfigsRequest: return handlers::describe_configs;
    case wire::Request::AlterConfigsRequest: return handlers::alter_configs;
    case wire::Request::ProduceRequest: return handlers::produce;
    case wire::Request::FetchRequest: return handlers::fetch;
    case wire::Request::ListOffsetsRequest: return handlers::list_offsets;
    case wire::Request::OffsetForLeaderEpochRequest: return handlers::offset_for_leader_epoch;
    case wire::Request::FindCoordinatorRequest: return handlers::find_coordinator;
    case wire::Request::ConsumerGroupHeartbeatRequest: return handlers::consumer_group_heartbeat;
    case wire::Request::OffsetCommitRequest: return handlers::offset_commit;
    case wire::Request::OffsetFetchRequest: return handlers::offset_fetch;
    case wire::Request::ListGroupsRequest: return handlers::list_groups;
    case wire::Request::DescribeGroupsRequest: return handlers::describe_groups;
    case wire::Request::DeleteGroupsRequest: return handlers::delete_groups;
    case wire::Request::InitProducerIdRequest: return handlers::init_producer_id;
    case wire::Request::ShareGroupHeartbeatRequest: return handlers::share_group_heartbeat;
    case wire::Request::ShareFetchRequest: return handlers::share_fetch;
    case wire::Request::ShareAcknowledgeRequest: return handlers::share_acknowledge;
    case wire::Request::ReadShareGroupStateRequest: return handlers::read_share_group_state;
    case wire::Request::WriteShareGroupStateRequest: return handlers::write_share_group_state;
    case wire::Request::DescribeSharePartitionsRequest: return handlers::describe_share_partitions;
    case wire::Request::NONE: break;
  }
  return nullptr;
}

wire::ErrorCode to_wire(const std::error_code& ec) {
  using wire::ErrorCode;
  if (!ec) return ErrorCode::NONE;
  if (ec.category() == schemas::error_category()) return ErrorCode::CORRUPT_MESSAGE;
  if (ec.category() == meta::error_category()) {
    switch (static_cast<meta::errc>(ec.value())) {
      case meta::errc::topic_exists: return ErrorCode::TOPIC_ALREADY_EXISTS;
      case meta::errc::invalid_topic: return ErrorCode::INVALID_TOPIC;
      case meta::errc::invalid_partitions: return ErrorCode::INVALID_PARTITIONS;
      case meta::errc::invalid_replication: return ErrorCode::INVALID_REPLICATION_FACTOR;
      case meta::errc::invalid_config: return ErrorCode::INVALID_CONFIG;
      case meta::errc::unknown_topic: return ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
      case meta::errc::storage_failed: return ErrorCode::STORAGE_ERROR;
      case meta::errc::malformed_store: return ErrorCode::STORAGE_ERROR;
    }
  }
  if (ec.category() == storage::error_category()) {
    switch (static_cast<storage::errc>(ec.value())) {
      case storage::errc::offset_out_of_range: return ErrorCode::OFFSET_OUT_OF_RANGE;
      case storage::errc::unknown_log: return ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
      case storage::errc::bad_batch: return ErrorCode::CORRUPT_MESSAGE;
      case storage::errc::log_closed: return ErrorCode::BROKER_SHUTTING_DOWN;
      case storage::errc::out_of_order_sequence: return ErrorCode::OUT_OF_ORDER_SEQUENCE;
      case storage::errc::producer_fenced: return ErrorCode::PRODUCER_FENCED;
      case storage::errc::unknown_producer_id: return ErrorCode::UNKNOWN_PRODUCER_ID;
      case storage::errc::bad_msg_id: return ErrorCode::INVALID_RECORD;
      case storage::errc::storage_full: return ErrorCode::STORAGE_FULL;
      default: return ErrorCode::STORAGE_ERROR;
    }
  }
  if (ec.category() == group::error_category()) {
    switch (static_cast<group::errc>(ec.value())) {
      case group::errc::coordinator_not_available: return ErrorCode::COORDINATOR_NOT_AVAILABLE;
      case group::errc::not_coordinator: return ErrorCode::NOT_COORDINATOR;
      case group::errc::load_in_progress: return ErrorCode::COORDINATOR_LOAD_IN_PROGRESS;
      case group::errc::unknown_member: return ErrorCode::UNKNOWN_MEMBER_ID;
      case group::errc::fenced_member_epoch: return ErrorCode::FENCED_MEMBER_EPOCH;
      case group::errc::stale_member_epoch: return ErrorCode::STALE_MEMBER_EPOCH;
      case group::errc::invalid_group_id: return ErrorCode::INVALID_GROUP_ID;
      case group::errc::group_not_found: return ErrorCode::GROUP_ID_NOT_FOUND;
      case group::errc::non_empty_group: return ErrorCode::NON_EMPTY_GROUP;
      case group::errc::unreleased_instance_id: return ErrorCode::UNRELEASED_INSTANCE_ID;
      case group::errc::invalid_regex: return ErrorCode::INVALID_REGULAR_EXPRESSION;
      case group::errc::unsupported_assignor: return ErrorCode::UNSUPPORTED_ASSIGNOR;
      case group::errc::unknown_topic_or_partition: return ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
      case group::errc::invalid_request: return ErrorCode::INVALID_REQUEST;
      case group::errc::invalid_record_state: return ErrorCode::INVALID_RECORD_STATE;
      case group::errc::inconsistent_group_type: return ErrorCode::INCONSISTENT_GROUP_TYPE;
      case group::errc::invalid_config: return ErrorCode::INVALID_CONFIG;
      case group::errc::not_leader: return ErrorCode::NOT_LEADER;
      case group::errc::fenced_leader_epoch: return ErrorCode::FENCED_LEADER_EPOCH;
    }
  }
  if (ec.category() == cluster::error_category()) {
    switch (static_cast<cluster::errc>(ec.value())) {
      case cluster::errc::zookeeper_unavailable: return ErrorCode::COORDINATOR_NOT_AVAILABLE;
      case cluster::errc::zookeeper_failed: return ErrorCode::COORDINATOR_NOT_AVAILABLE;
      case cluster::errc::stopping: return ErrorCode::BROKER_SHUTTING_DOWN;
      case cluster::errc::not_enough_brokers: return ErrorCode::INVALID_REPLICATION_FACTOR;
      case cluster::errc::invalid_replication: return ErrorCode::INVALID_REPLICATION_FACTOR;
      case cluster::errc::wrong_cluster: return ErrorCode::STORAGE_ERROR;
      case cluster::errc::malformed_state: return ErrorCode::STORAGE_ERROR;
      case cluster::errc::broker_id_in_use: return ErrorCode::UNKNOWN;
    }
  }
  if (ec == std::errc::no_space_on_device) return ErrorCode::STORAGE_FULL;
  if (ec.category() == std::system_category() || ec.category() == std::generic_category()) return ErrorCode::STORAGE_ERROR;
  return ErrorCode::UNKNOWN;
}

asio::awaitable<void> publish_topics(broker_state& b, meta::topics_snapshot snap) {
  for (auto& s : b.shards) {
    co_await run_on(*s, [](shard& sh, meta::topics_snapshot t) -> asio::awaitable<int> {
      sh.set_topics(std::move(t));
      co_return 0;
    }(*s, snap));
  }
}

meta::topics_snapshot cluster_topics(const cluster::topics_view& v, const meta::topic_config& defaults) {
  auto out = std::make_shared<meta::topic_map>();
  for (const auto& [name, tv] : v) {
    meta::topic t;
    t.name = name;
    t.partitions = static_cast<std::int32_t>(tv.assignment.replicas.size());
    t.overrides = tv.assignment.config;
    auto cfg = meta::resolve(defaults, t.overrides);
    if (!cfg) logger().error("topic {}: config in ZooKeeper is invalid ({}); using the defaults", name, cfg.error());
    t.config = cfg.value_or(defaults);
    for (std::size_t p = 0; p < tv.assignment.replicas.size(); ++p) {
      meta::partition_leadership l;
      l.replicas = tv.assignment.replicas[p];
      if (p < tv.partitions.size() && tv.partitions[p].known) {
        const auto& pv = tv.partitions[p];
        l.leader = pv.state.leader;
        l.leader_epoch = pv.state.leader_epoch;
        l.isr = pv.state.isr;
        l.version = pv.version;
      }
      t.leadership.push_back(std::move(l));
    }
    out->emplace(name, std::move(t));
  }
  return out;
}

bool topic_visible(broker_state& b, const std::string& name) {
  auto it = b.controller().topics()->find(name);
  if (it == b.controller().topics()->end()) return false;
  return std::all_of(it->second.leadership.begin(), it->second.leadership.end(),
                     [](const meta::partition_leadership& l) { return l.version >= 0; });
}

void publish_cluster(broker_state& b) {
  if (b.publishing) {
    b.publish_again = true;
    return;
  }
  b.publishing = true;
  asio::co_spawn(
      b.controller().io(),
      [](broker_state& st) -> asio::awaitable<void> {
        do {
          st.publish_again = false;
          if (!st.cluster) break;
          auto topics = cluster_topics(st.cluster->topics(), st.cfg.topic_defaults);
          // Only with a complete view may a local log be judged stray.
          std::shared_ptr<const std::set<std::string>> names;
          if (st.cluster->topics_complete()) names = std::make_shared<std::set<std::string>>(st.cluster->topic_names());
          auto brokers = std::make_shared<std::map<std::int32_t, std::string>>();
          for (const auto& r : st.cluster->snapshot().brokers) (*brokers)[r.id] = r.host + ":" + std::to_string(r.port);
          std::shared_ptr<const std::map<std::int32_t, std::string>> frozen = brokers;
          for (auto& s : st.shards) {
            co_await run_on(*s, [](shard& sh, meta::topics_snapshot t,
                                   std::shared_ptr<const std::map<std::int32_t, std::string>> br,
                                   std::shared_ptr<const std::set<std::string>> listed) -> asio::awaitable<int> {
              sh.set_topics(t);
              if (sh.replicas() != nullptr) sh.replicas()->apply(t, br, listed);
              co_return 0;
            }(*s, topics, frozen, names));
          }
        } while (st.publish_again);
        st.publishing = false;
      }(b),
      asio::detached);
}

namespace handlers {

std::vector<flatbuffers::Offset<wire::TopicResult>> topic_results(flatbuffers::FlatBufferBuilder& fbb,
                                                                 const std::vector<topic_outcome>& outcomes) {
  std::vector<flatbuffers::Offset<wire::TopicResult>> results;
  results.reserve(outcomes.size());
  for (const auto& o : outcomes) {
    results.push_back(wire::CreateTopicResultDirect(fbb, o.name.c_str(), to_wire(o.ec),
                                                    o.message.empty() ? nullptr : o.message.c_str()));
  }
  return results;
}

const meta::topic* find_topic(const request_context& ctx, std::string_view name) {
  auto it = ctx.home.topics()->find(name);
  return it == ctx.home.topics()->end() ? nullptr : &it->second;
}

}  // namespace handlers

}  // namespace runnel::net
