#pragma once
// heartbeat_member: a consumer group member made of raw ConsumerGroupHeartbeat
// requests to a standalone broker (its only coordinator), for tests of what
// admin tools see while a group has members. It heartbeats only when told
// to; the session timeout it asks for keeps it a member meanwhile.

#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/raw_client.h"

namespace runnel::testing {

struct member_partition {
  std::string topic;
  std::int32_t partition = 0;
};

class heartbeat_member {
 public:
  // Joins `group` subscribed to `topics` and heartbeats until the
  // coordinator assigned it at least one partition (asserts within 30 s).
  heartbeat_member(std::uint16_t port, std::string group, std::vector<std::string> topics,
                   std::int32_t session_timeout_ms = 60'000);
  // Leaves the group (member epoch -1).
  ~heartbeat_member();
  heartbeat_member(const heartbeat_member&) = delete;             // owns a connection
  heartbeat_member& operator=(const heartbeat_member&) = delete;  // owns a connection
  heartbeat_member(heartbeat_member&&) = delete;                  // tests keep it on the stack
  heartbeat_member& operator=(heartbeat_member&&) = delete;       // tests keep it on the stack

  [[nodiscard]] const std::string& id() const { return id_; }
  [[nodiscard]] std::int32_t epoch() const { return epoch_; }
  [[nodiscard]] const std::vector<member_partition>& assignment() const { return assignment_; }

 private:
  // One heartbeat: false on an error answer (stored in last_error_).
  bool heartbeat(std::int32_t epoch);

  raw_client conn_;
  std::string group_;
  std::vector<std::string> topics_;
  std::int32_t session_timeout_ms_;
  std::string id_;
  std::int32_t epoch_ = 0;
  std::vector<member_partition> assignment_;
  std::uint32_t correlation_ = 0;
};

}  // namespace runnel::testing
