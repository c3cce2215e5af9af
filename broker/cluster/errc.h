#pragma once
// Cluster (ZooKeeper membership and state) errors. `error` carries the code
// and the text the operator sees; the code may also be ZooKeeper's or the
// system's when that says more (a failed write's own error).

#include <string>
#include <system_error>

namespace runnel::cluster {

enum class errc {
  zookeeper_unavailable = 1,  // no session with ZooKeeper (connect, chroot)
  zookeeper_failed,           // a read or write of the cluster's znodes failed
  wrong_cluster,              // the data directory belongs to another cluster or broker id
  broker_id_in_use,           // another live broker holds this broker id
  malformed_state,            // a znode's data does not decode
  not_enough_brokers,         // fewer live brokers than the replication factor asks
  invalid_replication,        // a replication factor below 1
  stopping,                   // the broker is stopping
};

const std::error_category& error_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

struct error {
  std::error_code code;
  std::string message;
};

}  // namespace runnel::cluster

template <>
struct std::is_error_code_enum<runnel::cluster::errc> : std::true_type {};
