#pragma once
// Bootstrap from ZooKeeper: "zk://host:port[,host:port...][/chroot]" names
// the cluster's ZooKeeper; the live brokers are read from
// <chroot>/brokers/ids/<id> ("host:port[ rack]", docs/zookeeper.md).

#include <chrono>
#include <string_view>
#include <vector>

#include "client/src/address.h"
#include "runnel/errors.h"

namespace runnel::client {

inline constexpr std::string_view zk_scheme = "zk://";

// The live brokers' addresses, sorted by broker id. Errors (connection_failed,
// invalid_argument) name the ZooKeeper address and what went wrong.
result<std::vector<host_port>> brokers_from_zookeeper(std::string_view url, std::chrono::milliseconds timeout);

// What producer, consumer and admin accept as `bootstrap`: a zk:// address
// (read from ZooKeeper, waiting at most `timeout`, capped at 10 s) or a
// host:port list (parse_bootstrap).
result<std::vector<host_port>> resolve_bootstrap(std::string_view bootstrap, std::chrono::milliseconds timeout);

}  // namespace runnel::client
