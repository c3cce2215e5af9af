#include <array>

#include "broker/meta/errc.h"
#include "broker/net/handlers/handlers.h"
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
