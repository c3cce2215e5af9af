#pragma once
// Requests to a group's coordinator, shared by the consumer and admin.
// Blocking; never from the pool's I/O thread.
//
// call_coordinator finds the coordinator (FindCoordinator at any broker),
// sends the request there and, while the answer says the coordinator
// moved, is loading or is not available (or the connection dropped),
// finds it again and retries with backoff, within the pool's timeout.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "client/src/address.h"
#include "client/src/connection_pool.h"
#include "client/src/wire_client.h"
#include "runnel/group.h"

namespace runnel::client {

// The broker coordinating `group`.
result<host_port> find_coordinator(connection_pool& pool, const std::string& group);

struct coordinator_node {
  std::int32_t node_id = -1;  // broker id
  host_port address;
};
// find_coordinator with the coordinator's broker id.
result<coordinator_node> find_coordinator_node(connection_pool& pool, const std::string& group);

// Builds the request into `fbb`; returns its body and type.
using request_builder = std::function<std::pair<flatbuffers::Offset<void>, wire::Request>(flatbuffers::FlatBufferBuilder&)>;
// The response's group-level error, if any (retried while it is one of
// the coordinator errors; returned as the response otherwise).
using group_error_of = std::function<std::optional<error>(const response&)>;

result<response> call_coordinator(connection_pool& pool, const std::string& group, const request_builder& build,
                                  const group_error_of& error_of);

// Committed offsets of `group` (all when `partitions` is empty); a
// partition without a commit is left out.
result<std::map<topic_partition_ref, offset_and_metadata>> fetch_committed(connection_pool& pool, const std::string& group,
                                                                           const std::vector<topic_partition_ref>& partitions);

// Commits `offsets` for `group` as member (member_id, epoch), or without a
// member (empty id, epoch -1: only while the group is empty). Per
// partition: nullopt when committed, else why not.
result<std::map<topic_partition_ref, std::optional<error>>> commit_offsets(
    connection_pool& pool, const std::string& group, const std::string& member_id, std::int32_t member_epoch,
    const std::map<topic_partition_ref, offset_and_metadata>& offsets);

// The pieces of commit_offsets, for the committer's pipelined commits:
// the request; the error that means "find the coordinator again"; the
// per-partition outcome.
std::pair<flatbuffers::Offset<void>, wire::Request> build_commit_request(
    flatbuffers::FlatBufferBuilder& fbb, const std::string& group, const std::string& member_id, std::int32_t member_epoch,
    const std::map<topic_partition_ref, offset_and_metadata>& offsets);
std::optional<error> commit_moved_error(const response& resp);
result<std::map<topic_partition_ref, std::optional<error>>> parse_commit_response(const response& resp);

// True for the errors that mean "find the coordinator again".
bool coordinator_moved(std::error_code ec);

}  // namespace runnel::client
