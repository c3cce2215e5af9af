#pragma once
// ZooKeeper return codes as std::error_code (category "runnel.zk"; the
// value is the C client's code, e.g. ZNONODE = -101).

#include <system_error>

namespace runnel::zk {

const std::error_category& error_category() noexcept;
inline std::error_code make_error_code(int zoo_rc) noexcept { return {zoo_rc, error_category()}; }

// The codes callers branch on (values of the C client).
inline constexpr int no_node = -101;
inline constexpr int node_exists = -110;
inline constexpr int bad_version = -103;
inline constexpr int not_empty = -111;
inline constexpr int connection_loss = -4;
inline constexpr int session_expired = -112;
inline constexpr int operation_timeout = -7;
inline constexpr int closing = -116;

}  // namespace runnel::zk
