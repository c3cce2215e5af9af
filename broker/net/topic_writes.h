#pragma once
// The standalone broker's topic changes (create, delete, alter configs), on
// shard 0: one at a time, each validated against the state the previous one
// left, its file written through shard 0's io_uring ring (temp file,
// fdatasync, rename, directory fsync: no fsync on the shard thread), and
// made the store's state once durable. The caller publishes the snapshot.

#include <cstdint>
#include <expected>
#include <string>

#include <asio/awaitable.hpp>

#include "broker/meta/errc.h"
#include "broker/meta/types.h"

namespace runnel::net {

struct broker_state;

asio::awaitable<std::expected<void, meta::error>> create_topic_locally(broker_state& b, std::string name,
                                                                       std::int32_t partitions,
                                                                       std::int32_t replication,
                                                                       meta::config_overrides overrides,
                                                                       bool validate_only);
// The partitions the deleted topic had (its logs are the caller's to remove).
asio::awaitable<std::expected<std::int32_t, meta::error>> delete_topic_locally(broker_state& b, std::string name);
asio::awaitable<std::expected<void, meta::error>> alter_topic_locally(broker_state& b, std::string name,
                                                                      meta::config_overrides changes,
                                                                      bool validate_only);

}  // namespace runnel::net
