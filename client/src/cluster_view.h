#pragma once
// cluster_view: which broker leads each partition and where brokers listen,
// as Metadata answers report them. Plain values and pure functions (no I/O,
// no locks): metadata_cache holds one under its mutex, the producer and the
// consumer route requests with it.

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "client/src/address.h"
#include "runnel/errors.h"
#include "runnel/record.h"
#include "schemas/protocol_generated.h"

namespace runnel::client {

// PartitionMetadata.leader while no leader is elected.
inline constexpr std::int32_t no_leader = -1;

struct partition_leader {
  std::int32_t leader = no_leader;
  std::int32_t leader_epoch = -1;
};

struct cluster_view {
  std::map<std::int32_t, host_port> brokers;  // broker id -> advertised address
  std::int32_t controller = -1;
  // Topics the answer described, index = partition id; a topic the broker
  // reported an error for holds that error.
  std::map<std::string, result<std::vector<partition_leader>>, std::less<>> topics;
};

// Reads a Metadata answer. Malformed entries (no name, a partition id out
// of place, a port out of range) are errc::bad_response.
result<cluster_view> parse_metadata(const wire::MetadataResponse& m);

// Folds a newer answer into `into`: its broker list replaces the old one
// (Metadata lists every live broker), its topics replace theirs, and a
// topic it reports as unknown is dropped.
void merge(cluster_view& into, cluster_view&& newer);

// Where to send a request for one partition.
struct leader_route {
  std::int32_t broker = no_leader;
  host_port address;
  std::int32_t leader_epoch = -1;
};

// The partition's leader: errc::unknown_topic_or_partition when `view`
// has no such topic or partition (or the error the broker reported for the
// topic), errc::not_leader while no leader is elected or the leader is not
// in the broker list.
result<leader_route> find_leader(const cluster_view& view, std::string_view topic,
                                 std::int32_t partition);

// Partitions grouped by the broker that leads them; the ones find_leader
// refuses go to `unroutable` with its error.
struct routes {
  std::map<std::int32_t, std::vector<topic_partition_ref>> by_leader;
  std::map<std::int32_t, host_port> addresses;  // of the brokers in by_leader
  std::vector<std::pair<topic_partition_ref, error>> unroutable;
};
routes route_by_leader(const cluster_view& view, std::span<const topic_partition_ref> partitions);

// Errors after which the partition may be served elsewhere now (a leader
// change, or the broker unreachable): refresh metadata and retry there.
bool leader_may_have_moved(std::error_code ec) noexcept;

}  // namespace runnel::client
