#pragma once
// "host:port", as brokers register themselves and clients bootstrap: one
// parser for the broker's peer connections and the client's.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace runnel::schemas {

// Parses "host:port" (port 1-65535); nullopt when malformed.
std::optional<std::pair<std::string, std::uint16_t>> parse_host_port(std::string_view s);

}  // namespace runnel::schemas
