#include <array>
#include <set>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

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
    case wire::Request::FindCoordinatorRequest:
    case wire::Request::ConsumerGroupHeartbeatRequest:
    case wire::Request::OffsetCommitRequest:
    case wire::Request::OffsetFetchRequest:
    case wire::Request::ListGroupsRequest:
    case wire::Request::DescribeGroupsRequest:
    case wire::Request::DeleteGroupsRequest:
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
    }
  }
  if (ec.category() == storage::error_category()) {
    switch (static_cast<storage::errc>(ec.value())) {
      case storage::errc::offset_out_of_range: return ErrorCode::OFFSET_OUT_OF_RANGE;
      case storage::errc::unknown_log: return ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
      case storage::errc::bad_batch: return ErrorCode::CORRUPT_MESSAGE;
      case storage::errc::log_closed: return ErrorCode::BROKER_SHUTTING_DOWN;
      default: return ErrorCode::STORAGE_ERROR;
    }
  }
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
