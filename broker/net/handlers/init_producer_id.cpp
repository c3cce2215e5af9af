#include <fmt/format.h>

#include "broker/cluster/errc.h"
#include "broker/net/error.h"
#include "broker/net/handlers/handlers.h"
#include "broker/net/logger.h"
#include "broker/storage/file.h"

namespace runnel::net::handlers {

namespace {

// Ids are reserved this many at a time, durably, before any is handed out:
// a restart or another broker never hands out one again.
constexpr std::int64_t producer_id_block = 1000;
constexpr std::uint32_t producer_ids_magic = 0x49504e52;  // "RNPI"
constexpr const char* producer_ids_file = "producer-ids";

// Standalone: <data.dir>/producer-ids holds the first id of the next block.
// Written through shard 0's ring: no fsync on the shard thread.
asio::awaitable<std::expected<std::int64_t, error>> reserve_local(broker_state& b) {
  const auto path = b.cfg.data_dir / producer_ids_file;
  const std::int64_t first = storage::read_offset_file(path, producer_ids_magic).value_or(0);
  const auto bytes = storage::encode_offset_file(producer_ids_magic, first + producer_id_block);
  if (auto ec = co_await b.controller().ring().replace_file(path, bytes)) {
    co_return std::unexpected(error{ec, fmt::format("{}: {}", path.string(), ec.message())});
  }
  co_return first;
}

// On shard 0, which owns the reserved block.
asio::awaitable<std::expected<std::int64_t, error>> next_producer_id(broker_state& b) {
  if (b.producer_ids_next >= b.producer_ids_end) {
    std::expected<std::int64_t, error> first;
    if (b.cluster_mode()) {
      if (!b.cluster) {
        co_return std::unexpected(error{cluster::errc::zookeeper_unavailable, "not connected to the cluster"});
      }
      auto r = co_await b.cluster->reserve_producer_ids(producer_id_block);
      if (!r) {
        co_return std::unexpected(
            error{cluster::errc::zookeeper_failed, fmt::format("ZooKeeper /producer_ids: {}", r.error().message())});
      }
      first = *r;
    } else {
      first = co_await reserve_local(b);
    }
    if (!first) co_return std::unexpected(first.error());
    // A reservation that raced another on this shard: the newer block wins;
    // the rest of the older one is never used (ids stay unique).
    b.producer_ids_next = *first;
    b.producer_ids_end = *first + producer_id_block;
    logger().info("reserved producer ids {}..{}", b.producer_ids_next, b.producer_ids_end - 1);
  }
  co_return b.producer_ids_next++;
}

}  // namespace

// A fresh producer id with epoch 0 (no transactional ids: an idempotent
// producer bumps its epoch itself, KIP-360).
asio::awaitable<handler_result> init_producer_id(request_context& ctx) {
  auto id = co_await run_on(ctx.broker.controller(), next_producer_id(ctx.broker));
  auto& fbb = ctx.fbb;
  if (!id) {
    // ZooKeeper away: COORDINATOR_NOT_AVAILABLE, as Kafka answers while no
    // coordinator can hand out ids; a full disk: STORAGE_FULL.
    logger().error("InitProducerId: {}", id.error().message);
    auto body = wire::CreateInitProducerIdResponseDirect(fbb, to_wire(id.error().code), id.error().message.c_str());
    co_return handler_result{wire::Response::InitProducerIdResponse, body.Union()};
  }
  auto body = wire::CreateInitProducerIdResponseDirect(fbb, wire::ErrorCode::NONE, nullptr, *id, 0);
  co_return handler_result{wire::Response::InitProducerIdResponse, body.Union()};
}

}  // namespace runnel::net::handlers
