// The one mapping from internal error codes to the protocol's
// (broker/net/context.h to_wire): cluster errors, a full disk, the
// metadata store's own codes and share groups'.
#include <doctest/doctest.h>

#include <cerrno>
#include <system_error>

#include "broker/cluster/errc.h"
#include "broker/group/errc.h"
#include "broker/meta/errc.h"
#include "broker/net/context.h"

using namespace runnel;
using wire::ErrorCode;

TEST_CASE("to_wire: ZooKeeper away is retriable COORDINATOR_NOT_AVAILABLE, a stopping broker BROKER_SHUTTING_DOWN") {
  CHECK(net::to_wire(cluster::errc::zookeeper_unavailable) == ErrorCode::COORDINATOR_NOT_AVAILABLE);
  CHECK(net::to_wire(cluster::errc::zookeeper_failed) == ErrorCode::COORDINATOR_NOT_AVAILABLE);
  CHECK(net::to_wire(cluster::errc::stopping) == ErrorCode::BROKER_SHUTTING_DOWN);
  CHECK(net::to_wire(cluster::errc::not_enough_brokers) == ErrorCode::INVALID_REPLICATION_FACTOR);
  CHECK(net::to_wire(cluster::errc::invalid_replication) == ErrorCode::INVALID_REPLICATION_FACTOR);
  CHECK(net::to_wire(cluster::errc::malformed_state) == ErrorCode::STORAGE_ERROR);
}

TEST_CASE("to_wire: ENOSPC from a file write is STORAGE_FULL (retriable), other I/O errors STORAGE_ERROR") {
  CHECK(net::to_wire(std::error_code(ENOSPC, std::system_category())) == ErrorCode::STORAGE_FULL);
  CHECK(net::to_wire(std::make_error_code(std::errc::no_space_on_device)) == ErrorCode::STORAGE_FULL);
  CHECK(net::to_wire(std::error_code(EIO, std::system_category())) == ErrorCode::STORAGE_ERROR);
  CHECK(net::to_wire(meta::errc::malformed_store) == ErrorCode::STORAGE_ERROR);
  CHECK(net::to_wire(std::error_code{}) == ErrorCode::NONE);
}

TEST_CASE("to_wire: share group refusals have their own codes") {
  CHECK(net::to_wire(group::errc::invalid_record_state) == ErrorCode::INVALID_RECORD_STATE);
  CHECK(net::to_wire(group::errc::inconsistent_group_type) == ErrorCode::INCONSISTENT_GROUP_TYPE);
  CHECK(net::to_wire(group::errc::group_not_found) == ErrorCode::GROUP_ID_NOT_FOUND);
}
