#pragma once
// Broker addresses: "host:port", and the bootstrap list "host:port,host:port"
// that producer, consumer, admin and runnelctl accept.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runnel/errors.h"
#include "schemas/host_port.h"

namespace runnel::client {

struct host_port {
  std::string host;
  std::uint16_t port = 0;
  [[nodiscard]] std::string str() const { return host + ":" + std::to_string(port); }
  auto operator<=>(const host_port&) const = default;
};

// Parses "host:port"; nullopt when malformed (shared with the broker).
using schemas::parse_host_port;

// Parses "host:port[,host:port...]" (blanks around entries are ignored).
// errc::invalid_argument names the entry that is not host:port.
result<std::vector<host_port>> parse_bootstrap(std::string_view list);

// "a:1, b:2": for error messages.
std::string join(const std::vector<host_port>& addresses);

}  // namespace runnel::client
